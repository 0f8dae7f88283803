/** The Transport contract against the in-process implementation, as @metaloop/shared ships it (dist). */
import { InProcTransport } from '@metaloop/shared';
import { transportContract } from './contract.js';

transportContract({
  name: 'inproc',
  async open(settings) {
    const coordinator = await InProcTransport.create(settings);
    return {
      coordinator,
      worker: coordinator.connect(),
      worker2: coordinator.connect(),
      prefix: 'metaloop',
    };
  },
});

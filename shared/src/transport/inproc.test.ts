import { transportContract } from './contract.js';
import { InProcTransport } from './inproc.js';

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

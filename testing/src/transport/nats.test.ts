/** The Transport contract against NatsTransport, as @metaloop/shared ships it (dist), on a real nats-server. */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { NatsTransport, startNatsServer, type NatsServer } from '@metaloop/shared';
import { transportContract } from './contract.js';

let server: NatsServer | undefined;
let cases = 0;

before(async () => {
  server = await startNatsServer();
});
after(async () => {
  await server?.stop();
});

transportContract({
  name: 'nats',
  async open(settings) {
    assert.ok(server, 'nats-server did not start');
    const prefix = `t${++cases}`;
    const opts = { servers: server.url, prefix, ...settings };
    const coordinator = await NatsTransport.create({ ...opts, name: `${prefix}-coordinator` });
    const [worker, worker2] = await Promise.all([
      NatsTransport.create({ ...opts, name: `${prefix}-worker` }),
      NatsTransport.create({ ...opts, name: `${prefix}-worker2` }),
    ]);
    return { coordinator, worker, worker2, prefix };
  },
});


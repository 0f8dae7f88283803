/** compileWorkerOptions: only what the caller passes counts (environment variables are the CLI's). */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { InProcTransport } from '@metaloop/shared';
import { compileWorkerOptions } from './options.js';

const bus = await InProcTransport.create();
after(() => bus.close());

test('defaults do not come from the environment', () => {
  const saved = { ...process.env };
  Object.assign(process.env, {
    METALOOP_WORKER_ID: 'from-env',
    METALOOP_PREFIX: 'envprefix',
    METALOOP_BACKEND: 'wasm',
    METALOOP_WORKER_SLOW_SHARD_MS: '500',
  });
  try {
    const o = compileWorkerOptions({ transport: bus.connect() });
    assert.notEqual(o.id, 'from-env');
    assert.match(o.id, /-\d+-[0-9a-f]{6}$/);
    assert.equal(o.prefix, 'metaloop');
    assert.equal(o.backend, 'any');
    assert.equal(o.slowShardMs, 0);
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
});

test('explicit options are used and checked', () => {
  const o = compileWorkerOptions({ transport: bus.connect(), id: 'w-9', prefix: 'p', backend: 'cpu', slowShardMs: 40 });
  assert.deepEqual([o.id, o.prefix, o.backend, o.slowShardMs], ['w-9', 'p', 'cpu', 40]);
  assert.throws(() => compileWorkerOptions({ transport: bus.connect(), backend: 'gpu' as never }), /unknown backend "gpu"/);
  assert.throws(() => compileWorkerOptions({ transport: bus.connect(), slowShardMs: -1 }), /slowShardMs/);
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiCallError, InProcTransport, initParams, metaloop, modelLayout, paramLayout, toBundle, validateSpec } from '@metaloop/shared';
import { decodeCheckpoint } from './checkpoint.js';
import { ApiClient } from '@metaloop/client';
import { Coordinator } from './coordinator.js';

/** A small layer graph on sinusoid, Meta-SGD (so θ has algorithm extras after the model's tensors). */
const doc = (weights?: string) => ({
  name: 'init-weights',
  task: { family: 'sinusoid' },
  model: { kind: 'layers', layers: [{ type: 'Dense', name: 'h', units: 3, activation: 'tanh' }, { type: 'Dense', name: 'out' }], ...(weights ? { weights: { sha256: weights } } : {}) },
  algorithm: { kind: 'metasgd', innerLr: 0.05 },
  outer: { metaBatch: 2, shardSize: 1, steps: 5 },
  eval: { every: 0 },
  checkpoint: { every: 0 },
});

describe('submit with uploaded θ₀ (init: weights)', () => {
  it('θ₀ = the upload for the model, initParams for the extras, written as checkpoint 0 before the run starts; a missing or misfit upload is refused, and a text run naming word vectors without its upload', async () => {
    const bus = await InProcTransport.create();
    const coordinator = await Coordinator.create({ transport: bus.connect(), recordIntervalMs: 100 });
    const running = coordinator.run();
    await coordinator.ready();
    const client = new ApiClient({ transport: bus.connect() });
    try {
      const plain = validateSpec(doc());
      const layout = modelLayout(plain);
      const values = Float32Array.from({ length: layout.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0) }, (_, i) => (i % 7) / 7 - 0.4);
      const bundle = metaloop.TensorBundle.encode(toBundle({ layout, data: values })).finish();
      const up = await client.upload(bundle, { kind: 'init-weights' });
      const spec = validateSpec(doc(up.sha256));
      const rec = await client.submit(JSON.stringify(spec));
      const cp = decodeCheckpoint(await bus.getCheckpoint(rec.runId, 0), paramLayout(spec), 'adam');
      assert.deepEqual([...cp.params.subarray(0, values.length)], [...values], 'the model part is the upload, bit for bit');
      assert.deepEqual([...cp.params.subarray(values.length)], [...initParams(spec).data.subarray(values.length)], "Meta-SGD's learned rates as initParams sets them");
      assert.equal(cp.optimizer.t, 0);
      await client.cancel(rec.runId);

      const unknown = validateSpec(doc('f'.repeat(64)));
      await assert.rejects(client.submit(JSON.stringify(unknown)), (e: unknown) => e instanceof ApiCallError && e.code === 'INVALID_SPEC' && e.field === 'model.weights.sha256' && /holds no upload ffffffffffff…/.test(e.message));
      const short = metaloop.TensorBundle.encode(toBundle({ layout: layout.slice(0, 2), data: values.slice(0, 3 * 1 + 3) })).finish();
      const upShort = await client.upload(short, { kind: 'init-weights' });
      await assert.rejects(client.submit(JSON.stringify(validateSpec(doc(upShort.sha256)))), (e: unknown) => e instanceof ApiCallError && e.field === 'model.weights' && /do not fit the model/.test(e.message));

      // Word vectors are θ₀ the CLI builds and uploads (cli/src/text-vectors.ts): a spec naming them without it would start elsewhere.
      const text = validateSpec({
        name: 'vectors',
        task: { family: 'fewshot-text', path: 'texts.jsonl', vocab: { size: 50 }, maxLength: 8, vectors: { path: 'glove.txt' } },
        model: { kind: 'layers', layers: [{ type: 'Embedding', input_dim: 50, output_dim: 4 }, { type: 'GlobalMaxPooling1D' }, { type: 'Dense' }] },
        algorithm: { kind: 'maml' },
      });
      await assert.rejects(
        client.submit(JSON.stringify(text)),
        (e: unknown) => e instanceof ApiCallError && e.code === 'INVALID_SPEC' && e.field === 'task.vectors' && /become θ₀ through model.weights.*metaloop submit/.test(e.message),
      );
    } finally {
      await coordinator.close();
      await running;
      await bus.close();
    }
  });
});

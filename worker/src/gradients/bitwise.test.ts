/**
 * The gradient configs that only remove kernels (arithmetic.ts, relu.ts, max-pool.ts) and the
 * tensorflow backend's plumbing, ReluGrad and max-pool mask kernels leave results bitwise as they
 * were: a Conv4 shard's meta-gradient (max pool and stride, MAML and FOMAML) with them equals the
 * one with tfjs' own gradient configs and tfjs-node's own kernels, bit for bit. The one kernel that
 * changes results, the fused batch norm (tensorflow only), is taken out of both arms here.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, validateSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { computeShard } from '../engine.js';
import { BATCH_NORM } from '../kernels/tensorflow/batch-norm.js';
import { registerTensorflowKernels, restoreTensorflowKernels } from '../kernels/tensorflow/register.js';
import { useTestBackend } from '../testing/backend.js';
import { addGradConfig, divGradConfig, meanGradConfig, multiplyGradConfig, subGradConfig, sumGradConfig } from './arithmetic.js';
import { maxPoolGradConfig } from './max-pool.js';
import { registerSecondOrderGradients, restoreUpstreamGradients } from './register.js';
import { reluGradConfig } from './relu.js';

const OURS = [addGradConfig, subGradConfig, multiplyGradConfig, divGradConfig, sumGradConfig, meanGradConfig, reluGradConfig, maxPoolGradConfig];

/** tfjs' own configs for OURS' kernels (what restoreUpstreamGradients puts back), captured once. */
function upstreamConfigs(): tf.GradConfig[] {
  restoreUpstreamGradients();
  const up = OURS.map((c) => tf.getGradient(c.kernelName));
  registerSecondOrderGradients();
  return up.map((c, i) => {
    assert.ok(c && c !== OURS[i], `tfjs has its own gradient for ${OURS[i]!.kernelName}`);
    return c;
  });
}

describe('kernel-removing gradients and tensorflow kernels are bitwise neutral', () => {
  let backend = '';
  before(async () => {
    backend = await useTestBackend();
    registerSecondOrderGradients();
  });

  for (const pool of ['max', 'stride'] as const) {
    for (const kind of ['maml', 'fomaml'] as const) {
      test(`Conv4 (${pool}) ${kind} shard: same bits with tfjs' gradients and tfjs-node's kernels`, async () => {
        const spec = validateSpec({
          name: 'bitwise',
          seed: 9,
          task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 2, imageSize: 16 },
          model: { kind: 'conv4', filters: 8, pool },
          algorithm: { kind, innerSteps: 1, innerLr: 0.4 },
        });
        const params = initParams(spec).data;
        const shard = { kind: 'train' as const, taskSeeds: [3, 4] };
        const onTf = backend === 'tensorflow';
        // Both arms with the composite batch norm (the fused one is not bitwise the composite).
        if (onTf) tf.unregisterKernel(BATCH_NORM, 'tensorflow');
        const up = upstreamConfigs();
        try {
          const ours = await computeShard(spec, params, shard, { batchTasks: false });
          up.forEach((c) => tf.registerGradient(c));
          if (onTf) restoreTensorflowKernels();
          const theirs = await computeShard(spec, params, shard, { batchTasks: false });
          assert.ok(ours.kind === 'train' && theirs.kind === 'train');
          assert.deepEqual(new Uint32Array(ours.grad.buffer), new Uint32Array(theirs.grad.buffer), 'meta-gradient bits');
          assert.equal(ours.postLossSum, theirs.postLossSum);
        } finally {
          OURS.forEach((c) => tf.registerGradient(c));
          if (onTf) registerTensorflowKernels(); // all of them again, the fused batch norm included
        }
      });
    }
  }
});

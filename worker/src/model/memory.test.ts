/**
 * What a task keeps in memory (issue 24: second-order memory is what MAML users run out of). Each
 * layer of a graph runs in its own tf.tidy scope (shared's graphForward), so a batch norm's
 * moments, a convolution's padded copies and a fold's reshapes are freed as the layer ends: after
 * a forward only the layers' outputs are alive. The algorithms scope the passes whose activations
 * no gradient needs (the pre-adaptation query loss, FOMAML's and Reptile's inner steps), so after
 * a meta-gradient what is alive is its result: the gradients, the losses (and FOMAML's adapted θ).
 * Counted on the engine's tensors (tf.memory), on METALOOP_TEST_BACKEND (cpu in the main run).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, modelGraph, validateSpec } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import '../tfjs-setup.js';
import { compileRun, paramTensors, taskTensors } from '../engine.js';
import { useTestBackend } from '../testing/backend.js';

const resnet = (kind: string) =>
  validateSpec({
    name: 'memory',
    seed: 3,
    task: { family: 'synthetic-glyphs', ways: 3, shots: 2, queries: 2, imageSize: 16 },
    model: { kind: 'resnet12', channels: [2, 3, 2, 2] },
    algorithm: { kind, innerSteps: 2, innerLr: 0.1 },
  });

/** Tensors `f` leaves alive in the current scope (call inside tf.tidy, which then frees them). */
function aliveAfter(f: () => unknown): number {
  const before = tf.memory().numTensors;
  f();
  return tf.memory().numTensors - before;
}

describe('memory of a task: each layer scoped, passes without a gradient freed', () => {
  before(async () => {
    await useTestBackend();
  });

  test('a forward leaves only the layers\' outputs alive (per task and task-batched)', () => {
    const spec = resnet('maml');
    const run = compileRun(spec);
    const layers = modelGraph(spec).nodes.length;
    const task = run.family.sample(11, 'train');
    for (const batched of [false, true]) {
      const theta = paramTensors(run, initParams(spec).data, batched ? 2 : undefined);
      const named = Object.fromEntries(run.layout.map((t, i) => [t.name, theta[i]!]));
      tf.tidy(() => {
        const data = taskTensors(run.family, batched ? [task, task] : task);
        const alive = aliveAfter(() => (batched ? run.batchedInner : run.inner).model.forward(named, data.xs));
        assert.ok(alive <= layers + 1, `${batched ? 'batched' : 'per task'}: ${alive} tensors alive after a forward of ${layers} layers`);
      });
      tf.dispose(theta);
    }
  });

  for (const kind of ['maml', 'fomaml', 'reptile']) {
    test(`${kind}: after a meta-gradient only its result is alive (gradients, losses)`, () => {
      const spec = resnet(kind);
      const run = compileRun(spec);
      const theta = paramTensors(run, initParams(spec).data);
      const P = theta.length;
      tf.tidy(() => {
        const data = taskTensors(run.family, run.family.sample(12, 'train'));
        const alive = aliveAfter(() => run.algorithm.metaGradient(run.inner, theta, data));
        // grads + preLoss + postLoss, and FOMAML's / Reptile's adapted θ (and the inner rate scalar).
        assert.ok(alive <= 2 * P + 4, `${kind}: ${alive} tensors alive after the meta-gradient (θ has ${P} tensors)`);
      });
      tf.dispose(theta);
    });
  }
});

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { registerSecondOrderGradients } from './gradients/register.js';
import { accuracy, logSumExp, mse, softmaxCrossEntropy } from './losses.js';
import { checkFirstDerivative, checkSecondDerivative, randomTensor } from '@metaloop/testing/numerics';
import { useTestBackend } from './testing/backend.js';

const rng = new Rng(7);
const labels = () => tf.oneHot(tf.tensor1d([1, 0, 4, 2], 'int32'), 5).toFloat();

describe('losses', () => {
  before(async () => {
    await useTestBackend();
    registerSecondOrderGradients();
  });

  test('softmax cross-entropy equals tf.losses.softmaxCrossEntropy and a float64 reference', () => {
    tf.tidy(() => {
      const logits = randomTensor(rng, [4, 5], -3, 3);
      const y = labels();
      const ours = softmaxCrossEntropy(logits, y).dataSync()[0]!;
      const theirs = tf.losses.softmaxCrossEntropy(y, logits).dataSync()[0]!;
      const l = logits.arraySync() as number[][];
      const t = y.arraySync() as number[][];
      let ref = 0;
      l.forEach((row, i) => {
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
        ref += row.reduce((s, v, c) => s - t[i]![c]! * (v - lse), 0);
      });
      ref /= l.length;
      assert.ok(Math.abs(ours - ref) < 1e-5, `${ours} vs ${ref}`);
      assert.ok(Math.abs(ours - theirs) < 1e-5, `${ours} vs ${theirs}`);
    });
  });

  test('stable for huge logits', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([[1e4, 0, -1e4]]);
      const y = tf.tensor2d([[0, 1, 0]]);
      assert.ok(Math.abs(softmaxCrossEntropy(logits, y).dataSync()[0]! - 1e4) < 1);
      assert.ok(Number.isFinite(logSumExp(tf.tensor1d([1e30, 1e30])).dataSync()[0]!));
    });
  });

  test('softmax cross-entropy: first and second derivatives match finite differences', () => {
    tf.tidy(() => {
      const y = labels();
      const f = (z: tf.Tensor) => softmaxCrossEntropy(z, y);
      for (let k = 0; k < 3; k++) {
        const x = randomTensor(rng, [4, 5], -2, 2);
        const r1 = checkFirstDerivative(f, x, rng);
        assert.ok(r1.relErr < 1e-2, JSON.stringify(r1));
        // squared so the second derivative is not just the softmax Hessian
        const r2 = checkSecondDerivative((z) => tf.square<tf.Scalar>(f(z)), x, rng);
        assert.ok(r2.relErr < 2e-2, JSON.stringify(r2));
        const r3 = checkSecondDerivative(f, x, rng, 1e-3, 1e-2);
        assert.ok(r3.relErr < 2e-2, JSON.stringify(r3));
      }
    });
  });

  test("tf.losses.softmaxCrossEntropy (customGrad) is first order only, even with our registrations", () => {
    tf.tidy(() => {
      const y = labels();
      // Alone, its gradient is disconnected from the logits: differentiating it again throws.
      assert.throws(
        () => checkSecondDerivative((z) => tf.losses.softmaxCrossEntropy<tf.Tensor, tf.Scalar>(y, z), randomTensor(rng, [4, 5]), rng),
        /Cannot compute gradient of y=f\(x\)/,
      );
      // Inside a larger function, the term through the loss's Hessian is silently missing.
      let worst = 0;
      for (let k = 0; k < 3; k++) {
        const f = (z: tf.Tensor) => tf.mul<tf.Scalar>(tf.sum(tf.square(z)), tf.losses.softmaxCrossEntropy(y, z));
        worst = Math.max(worst, checkSecondDerivative(f, randomTensor(rng, [4, 5], -2, 2), rng).relErr);
      }
      assert.ok(worst > 0.05, `expected the customGrad loss to get the second derivative wrong (worst rel err ${worst})`);
    });
  });

  test('mse and accuracy', () => {
    tf.tidy(() => {
      assert.ok(Math.abs(mse(tf.tensor1d([1, 2]), tf.tensor1d([0, 4])).dataSync()[0]! - 2.5) < 1e-6);
      const r = checkSecondDerivative((z) => tf.square<tf.Scalar>(mse(z, tf.tensor1d([0.5, -1, 2]))), randomTensor(rng, [3]), rng);
      assert.ok(r.relErr < 2e-2, JSON.stringify(r));
      const logits = tf.tensor2d([[2, 1, 0], [0, 3, 1], [1, 0, 5], [9, 0, 0]]);
      const y = tf.oneHot(tf.tensor1d([0, 1, 0, 0], 'int32'), 3).toFloat();
      assert.equal(accuracy(logits, y).dataSync()[0], 0.75);
    });
  });
});

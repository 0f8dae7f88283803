/**
 * Every layer type of the registry, on its own (its file's forward, through the worker's tfjs-core
 * with the registered gradients), on METALOOP_TEST_BACKEND: first AND second directional
 * derivatives with respect to its parameters and inputs against central finite differences.
 *
 * Objective: L(z) = Σ R⊙y + ½ Σ (S⊙y)², y = layer(z), z = every parameter and input packed into
 * one vector, R and S fixed random: quadratic in y, so even a linear layer has a non-zero second
 * derivative, and the second derivative runs through the layer's gradient (what second-order MAML
 * differentiates). Checked: ∇L·v against (L(z + hv) − L(z − hv)) / 2h, and ∇(∇L·u)·v against the
 * same difference of ∇L·u. float32 limits h; piecewise-linear layers (ReLU, max-pool, leaky ReLU)
 * switch inside some stencils: a direction whose differences at h and h/2 disagree has a switch in
 * it and is skipped (counted; at least 3 of at most 8 must be clean).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { layerDef, LAYER_TYPES, Rng, type LayerContext } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { randomTensor, relErr } from '@metaloop/testing/numerics';
import { useTestBackend } from '../testing/backend.js';
import { LAYER_CASES as CASES, N, type LayerCase as Case } from '../testing/layer-cases.js';
import '../tfjs-setup.js';

const CTX: LayerContext = { name: 'layer', outputs: 3, lastDense: false };

/** A layer instance with random parameters and inputs, and its objective over the packed vector z. */
function instance(c: Case, rng: Rng) {
  const def = layerDef(c.type)!;
  const config = def.schema.parse(c.options ?? {});
  const out = def.shape(config, c.inputs, CTX);
  const params = def.params?.(config, c.inputs, CTX) ?? [];
  // What z holds, in order: parameters, then the inputs (token ids are constants).
  const parts = [
    ...params.map((p) => ({ name: p.param, shape: [...p.shape], lo: p.param === 'scale' ? 0.5 : -0.8, hi: p.param === 'scale' ? 1.5 : 0.8 })),
    ...(c.vocab ? [] : c.inputs.map((s, i) => ({ name: `x${i}`, shape: [N, ...s], lo: -1, hi: 1 }))),
  ];
  const ids = c.vocab ? tf.tensor(Array.from({ length: N * c.inputs[0]!.reduce((a, b) => a * b, 1) }, () => rng.int(c.vocab!)), [N, ...c.inputs[0]!]) : undefined;
  const z0 = tf.tidy(() => tf.concat(parts.map((p) => tf.reshape(randomTensor(rng, p.shape, p.lo, p.hi), [-1]))));
  const R = randomTensor(rng, [N, ...out]);
  const S = randomTensor(rng, [N, ...out]);
  const loss = (z: tf.Tensor): tf.Scalar => {
    let off = 0;
    const v: Record<string, tf.Tensor> = {};
    for (const p of parts) {
      const n = p.shape.reduce((a, b) => a * b, 1);
      v[p.name] = tf.reshape(tf.slice(z, [off], [n]), p.shape);
      off += n;
    }
    const inputs = ids ? [ids] : c.inputs.map((_, i) => v[`x${i}`]!);
    const y = def.forward(tf, config, inputs, v);
    assert.deepEqual(y.shape, [N, ...out], `${c.type}: forward shape vs shape rule`);
    return tf.add(tf.sum(tf.mul(R, y)), tf.mul(0.5, tf.sum(tf.square(tf.mul(S, y)))));
  };
  const dispose = () => tf.dispose([z0, R, S, ...(ids ? [ids] : [])]);
  return { z0, loss, dispose, size: z0.size };
}

/** Directional derivative checks along random unit directions; returns the worst error of clean ones. */
function check(c: Case, order: 1 | 2, rng: Rng): { worst: number; clean: number; skipped: number } {
  const { z0, loss, dispose, size } = instance(c, rng);
  const h = c.kinks ? 2e-3 : 1e-2;
  let worst = 0;
  let clean = 0;
  let skipped = 0;
  const scalar = (t: tf.Tensor) => t.dataSync()[0]!;
  try {
    for (let k = 0; clean < 3 && k < 8; k++) {
      tf.tidy(() => {
        const unit = () => {
          const d = randomTensor(rng, [size]);
          return tf.div(d, tf.norm(d));
        };
        const v = unit();
        // order 1: f = L; order 2: f = ∇L·u.
        const u = unit();
        const f = order === 1 ? loss : (z: tf.Tensor) => tf.sum(tf.mul(tf.grad(loss)(z), u));
        const analytic = scalar(tf.sum(tf.mul(tf.grad(f)(z0), v)));
        const fd = (s: number) => (scalar(f(tf.add(z0, tf.mul(v, s)))) - scalar(f(tf.sub(z0, tf.mul(v, s))))) / (2 * s);
        const numeric = fd(h);
        const floor = 1e-2 * Math.max(1, Math.abs(analytic));
        if (relErr(numeric, fd(h / 2), floor) > 3e-3) {
          skipped++;
          return;
        }
        clean++;
        worst = Math.max(worst, relErr(analytic, numeric, floor));
      });
    }
  } finally {
    dispose();
  }
  return { worst, clean, skipped };
}

describe('layers: first and second derivatives against central finite differences', () => {
  let backend = '';
  before(async () => {
    backend = await useTestBackend();
  });

  test('every registered layer type has a case here', () => {
    const tested = new Set(CASES.map((c) => c.type));
    assert.deepEqual(LAYER_TYPES.filter((t) => !tested.has(t)), []);
  });

  CASES.forEach((c, i) => {
    test(`${c.type}${c.label ? ` (${c.label})` : ''}`, (t) => {
      const before = tf.memory().numTensors;
      for (const order of [1, 2] as const) {
        const r = check(c, order, new Rng(100 + i * 2 + order));
        t.diagnostic(`${backend} order ${order}: worst rel err ${r.worst.toExponential(2)} over ${r.clean} directions (${r.skipped} skipped)`);
        assert.ok(r.clean >= 3, `${backend}: order ${order}: only ${r.clean} of ${r.clean + r.skipped} directions had a smooth stencil`);
        assert.ok(r.worst < 1e-2, `${backend}: order ${order}: relative error ${r.worst}`);
      }
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
    });
  });
});

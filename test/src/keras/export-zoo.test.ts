/**
 * Issue 24, models out, on every layer type the export writes: a layer graph of them (joins, two
 * convolutions at one depth, activations TF.js spells otherwise, batch norm without β) and the
 * Conv4 preset, θ off its initial values, exported by the CLI's library; Keras 3 in Python loads
 * model.keras and predicts what Metaloop's forward predicts (≤ 1e-5 relative): training=True =
 * the transductive forward, predict = the forward at the exported moving statistics.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { graphForward, initParams, modelGraph, Rng, sizeOf, validateSpec, type RunSpec } from '@metaloop/shared';
import { KERAS_FILE, saveKerasExports } from '@metaloop/cli';
import { estimateBatchNormStatistics, forwardWithStatistics } from '@metaloop/worker';
import { childPids } from '@metaloop/testing';
import { EXPORT_ZOO_LAYERS, kerasPredict, kerasPython, relDiff } from '@metaloop/testing/keras';

const children = childPids();
const dir = mkdtempSync(join(tmpdir(), 'metaloop-keras-zoo-'));

function spec(name: string, model: unknown, imageSize: number): RunSpec {
  return validateSpec({ name, task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 4, imageSize }, model, algorithm: { kind: 'maml' }, outer: { metaBatch: 1, shardSize: 1 } });
}

const SPECS = [
  spec('zoo', { kind: 'layers', layers: EXPORT_ZOO_LAYERS }, 12),
  spec('conv4', { kind: 'conv4', filters: 3 }, 16),
  spec('resnet12', { kind: 'resnet12', channels: [2, 3, 4, 5] }, 16),
];

describe('export: Keras 3 loads every exported layer type and predicts what Metaloop predicts', { timeout: 300_000 }, () => {
  before(async () => {
    kerasPython(); // fails loudly, naming the install command
    await tf.setBackend('cpu');
  });

  for (const s of SPECS) {
    it(s.name, async () => {
      const graph = modelGraph(s);
      const p = initParams(s);
      const rng = new Rng(9);
      let off = 0;
      for (const t of p.layout) {
        const n = sizeOf(t.shape);
        if (t.name.endsWith('.scale') || t.name.endsWith('.offset') || t.name.endsWith('.b')) for (let i = 0; i < n; i++) p.data[off + i] = rng.uniform(-1, 2);
        off += n;
      }
      const stats = estimateBatchNormStatistics(s, p.data, 4);
      const out = join(dir, s.name);
      await saveKerasExports(out, s, p.data, stats, 'test');
      const x = tf.randomUniform([6, ...graph.input], 0, 1, 'float32', 4);
      const weights: Record<string, tf.Tensor> = {};
      off = 0;
      for (const t of graph.layout) {
        weights[t.name] = tf.tensor(p.data.subarray(off, off + sizeOf(t.shape)), [...t.shape]);
        off += sizeOf(t.shape);
      }
      const transductive = tf.tidy(() => graphForward(tf, graph, weights, x, false).dataSync());
      const fixed = tf.tidy(() => forwardWithStatistics(s, weights, x, stats).dataSync());
      const k = await kerasPredict(children, join(out, KERAS_FILE), { shape: x.shape, data: x.dataSync() as Float32Array }, ['predict', 'training']);
      const d = { training: relDiff(k.training!.data, transductive), predict: relDiff(k.predict!.data, fixed) };
      console.log(`# ${s.name}: Keras training=True vs transductive ${d.training.toExponential(2)}, predict vs fixed statistics ${d.predict.toExponential(2)}`);
      assert.ok(d.training <= 1e-5, `training=True: ${d.training}`);
      assert.ok(d.predict <= 1e-5, `predict: ${d.predict}`);
      assert.ok(relDiff(fixed, transductive) > 1e-3, 'the two batch-norm modes differ on this batch');
      tf.dispose([x, ...Object.values(weights)]);
    });
  }
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { graphForward, initParams, LAYER_TYPES, modelGraph, Rng, sizeOf, validateSpec, type RunSpec } from '@metaloop/shared';
import { estimateBatchNormStatistics, forwardWithStatistics } from '@metaloop/worker';
import { EXPORT_ZOO_LAYERS, relDiff } from '@metaloop/testing/keras';
import { saveKerasExports, TFJS_DIR } from './export.js';
import { fromKeras, kerasWeights } from './from-keras.js';
import { readModelFile } from './read.js';

const dir = mkdtempSync(join(tmpdir(), 'metaloop-keras-export-'));

function spec(name: string, model: unknown, imageSize = 12): RunSpec {
  return validateSpec({ name, task: { family: 'synthetic-glyphs', ways: 3, shots: 1, queries: 4, imageSize }, model, algorithm: { kind: 'maml' }, outer: { metaBatch: 1, shardSize: 1 } });
}

/** Every layer type the export writes, in one graph (@metaloop/testing/keras). */
const ZOO = spec('zoo', { kind: 'layers', layers: EXPORT_ZOO_LAYERS });
const CONV4 = spec('conv4', { kind: 'conv4', filters: 3 }, 16);

/** θ₀ with every scale and offset moved off 1 and 0 (so batch norm's affine part counts). */
function theta(s: RunSpec): Float32Array {
  const p = initParams(s);
  const rng = new Rng(5);
  let off = 0;
  for (const t of p.layout) {
    const n = sizeOf(t.shape);
    if (t.name.endsWith('.scale') || t.name.endsWith('.offset')) for (let i = 0; i < n; i++) p.data[off + i] = rng.uniform(-1, 2);
    off += n;
  }
  return p.data;
}

function tensors(s: RunSpec, params: Float32Array): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  let off = 0;
  for (const t of modelGraph(s).layout) {
    out[t.name] = tf.tensor(params.subarray(off, off + sizeOf(t.shape)), [...t.shape]);
    off += sizeOf(t.shape);
  }
  return out;
}

async function loadTfjs(d: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(join(d, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
  const bytes = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(d, p)))));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }));
}

describe('export: Keras and TF.js files of a layer graph', () => {
  before(async () => {
    await tf.setBackend('cpu');
  });

  for (const s of [ZOO, CONV4]) {
    it(`${s.name}: tf.loadLayersModel predicts Metaloop's forward (training: batch statistics; predict: the exported moving statistics)`, async () => {
      const params = theta(s);
      const stats = estimateBatchNormStatistics(s, params, 3);
      const out = join(dir, s.name);
      await saveKerasExports(out, s, params, stats, 'test');
      const model = await loadTfjs(join(out, TFJS_DIR));
      const size = modelGraph(s).input;
      const x = tf.randomUniform([5, ...size], 0, 1, 'float32', 3);
      const w = tensors(s, params);
      const transductive = tf.tidy(() => graphForward(tf, modelGraph(s), w, x, false).dataSync());
      const fixed = tf.tidy(() => forwardWithStatistics(s, w, x, stats).dataSync());
      // predict first: a training call updates TF.js' moving statistics.
      const predict = tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
      const train = tf.tidy(() => (model.apply(x, { training: true }) as tf.Tensor).dataSync());
      assert.ok(relDiff(train, transductive) <= 1e-5, `training=true vs transductive: ${relDiff(train, transductive)}`);
      assert.ok(relDiff(predict, fixed) <= 1e-5, `predict vs fixed statistics: ${relDiff(predict, fixed)}`);
      assert.ok(relDiff(fixed, transductive) > 1e-3, 'the two batch-norm modes differ on this batch');
      tf.dispose([x, ...Object.values(w)]);
      model.dispose();
    });
  }

  it('the .keras file reads back into the same graph and θ, bit for bit', async () => {
    const params = theta(ZOO);
    const out = join(dir, 'zoo-back');
    await saveKerasExports(out, ZOO, params, estimateBatchNormStatistics(ZOO, params, 0), 'test');
    const file = await readModelFile(join(out, 'model.keras'));
    const doc = fromKeras(join(out, 'model.keras'), file.topology, LAYER_TYPES);
    const back = spec('zoo', doc);
    assert.deepEqual(modelGraph(back).nodes.map((n) => [n.name, n.type, n.inputs, n.shape]), modelGraph(ZOO).nodes.map((n) => [n.name, n.type, n.inputs, n.shape]));
    const w = kerasWeights('x', file.topology, modelGraph(back).nodes, file.variables);
    assert.deepEqual(Buffer.from(Float32Array.from(w.tensors.flatMap((t) => [...t.data])).buffer), Buffer.from(params.buffer));
    // --bn-tasks 0: identity statistics.
    const bn = file.variables(file.topology.layers.find((l) => l.name === 'bn1')!, [])!;
    assert.deepEqual([...bn[1]!.data, ...bn[2]!.data], [0, 0, 0, 0, 1, 1, 1, 1], 'gamma, then moving_mean 0 and moving_variance 1 (center: false: no beta)');
  });
});

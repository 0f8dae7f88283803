import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initParams, parseSpec } from '@metaloop/shared';
import { selectBackend } from './backend.js';
import { loadExportedModel, saveExportedModel } from './export.js';
import { createModel } from './model/model.js';

const dir = mkdtempSync(join(tmpdir(), 'metaloop-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await selectBackend({ require: 'cpu' });
});

const MLP = parseSpec('name: e\nseed: 5\ntask: { family: sinusoid }\nmodel: { kind: mlp, hidden: [8, 8] }\nalgorithm: { kind: metasgd }\n', 'e.yaml');
const CONV = parseSpec(
  'name: c\nseed: 5\ntask: { family: synthetic-glyphs, ways: 3, shots: 1, queries: 2, imageSize: 16 }\nmodel: { kind: conv4, filters: 4 }\nalgorithm: { kind: maml }\n',
  'c.yaml',
);

describe('exported models', () => {
  it('round-trip θ bit for bit (algorithm extras included); tfjs reads the weights manifest; forward = the model', async () => {
    const params = initParams(MLP).data;
    const out = join(dir, 'mlp');
    await saveExportedModel(out, MLP, params, { runId: 'e-1', step: 7, source: 'checkpoint' });
    const m = await loadExportedModel(out);
    try {
      assert.deepEqual([...m.params], [...params]);
      assert.equal(m.metadata.runId, 'e-1');
      assert.equal(m.metadata.step, 7);
      assert.deepEqual(m.spec, MLP);
      // the standard tfjs decoder reads model.json's manifest and the .bin
      const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[] };
      const bin = readFileSync(join(out, json.weightsManifest[0]!.paths[0]!));
      const decoded = tf.io.decodeWeights(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength), json.weightsManifest[0]!.weights);
      assert.deepEqual([...(decoded['l0.w']!.dataSync() as Float32Array)], [...m.params.subarray(0, 8)]);
      tf.dispose(Object.values(decoded));
      const x = [-1, 0, 2.5];
      const want = tf.tidy(() => createModel(MLP).forward(m.weights, tf.tensor2d(x, [3, 1])).dataSync());
      assert.deepEqual([...m.predict(x, 3)], [...want]);
    } finally {
      m.dispose();
    }
  });

  it('Conv4 on images: predict takes flattened images', async () => {
    const out = join(dir, 'conv');
    await saveExportedModel(out, CONV, initParams(CONV).data);
    const m = await loadExportedModel(out);
    try {
      const y = m.predict(new Float32Array(2 * 16 * 16).fill(0.5), 2);
      assert.equal(y.length, 2 * 3);
      assert.ok([...y].every(Number.isFinite));
    } finally {
      m.dispose();
    }
  });

  it('refuses a directory that is not an export, a truncated .bin and a tampered one, naming the file', async () => {
    await assert.rejects(loadExportedModel(join(dir, 'absent')), /model\.json: ENOENT/);
    const out = join(dir, 'bad');
    await saveExportedModel(out, MLP, initParams(MLP).data);
    const bin = join(out, 'group1-shard1of1.bin');
    const bytes = readFileSync(bin);
    writeFileSync(bin, bytes.subarray(0, 100));
    await assert.rejects(loadExportedModel(out), /weights hold 100 bytes/);
    bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(bin, bytes);
    await assert.rejects(loadExportedModel(out), /sha256/);
  });
});

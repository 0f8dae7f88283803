import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { modelLayout, SpecError } from '@metaloop/shared';
import { EXPORT_INPUT } from './keras/export-model.js';
import { readModelFile } from './keras/read.js';
import { kerasFile } from './keras/to-keras.js';
import { loadRunSpec } from './spec-file.js';

const RESIDUAL = fileURLToPath(new URL('../src/keras/testdata/residual.keras', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'metaloop-spec-file-'));
copyFileSync(RESIDUAL, join(dir, 'residual.keras'));

function spec(name: string, model: string, task = '{ family: synthetic-glyphs, ways: 3, shots: 1, queries: 2, imageSize: 8 }'): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\ntask: ${task}\nmodel: ${model}\nalgorithm: { kind: maml }\nouter: { metaBatch: 2, shardSize: 1, steps: 1 }\n`);
  return file;
}

async function refused(file: string, path: string, pattern: RegExp) {
  await assert.rejects(loadRunSpec(file), (e: unknown) => {
    assert.ok(e instanceof SpecError, String(e));
    const issue = e.issues.find((i) => pattern.test(i.message));
    assert.ok(issue, `no issue matching ${pattern} in:\n${e.message}`);
    assert.equal(issue.path, path, e.message);
    return true;
  });
}

describe('loadRunSpec: model.kind keras', () => {
  it('init: weights: the file becomes a kind: layers graph, its weights θ₀ in the layout, named by their sha256', async () => {
    const loaded = await loadRunSpec(spec('w', '{ kind: keras, path: residual.keras, init: weights }'));
    const model = loaded.spec.model;
    assert.equal(model.kind, 'layers');
    assert.deepEqual((JSON.parse(loaded.submitText) as { model: unknown }).model, JSON.parse(JSON.stringify(model)), 'the validated spec is what is submitted');
    const w = loaded.weights!;
    assert.equal(createHash('sha256').update(w.bytes).digest('hex'), w.sha256);
    assert.deepEqual((model as { weights?: unknown }).weights, { sha256: w.sha256 });
    assert.deepEqual(w.tensors.map((t) => t.name), modelLayout(loaded.spec).map((t) => t.name));
    const file = await readModelFile(RESIDUAL);
    const bn1 = file.variables(file.topology.layers.find((l) => l.name === 'bn1')!, [])!;
    assert.deepEqual([...w.tensors.find((t) => t.name === 'bn1.offset')!.data], [...bn1[1]!.data]);
    assert.equal(w.notes.length, 3, 'bn0, bn1, bn2: moving statistics not used');
  });

  it('init: random: the graph only, nothing to upload', async () => {
    const loaded = await loadRunSpec(spec('r', '{ kind: keras, path: residual.keras, init: random }'));
    assert.equal(loaded.weights, undefined);
    assert.equal((loaded.spec.model as { weights?: unknown }).weights, undefined);
    assert.equal(loaded.spec.model.kind, 'layers');
  });

  it('refuses a missing init, unknown fields, a task the file does not fit, and options the graph cannot honour, naming the layer and class', async () => {
    await refused(spec('a', '{ kind: keras, path: residual.keras }'), 'model.init', /required: weights .* or random/);
    await refused(spec('b', '{ kind: keras, path: residual.keras, init: weights, filters: 3 }'), 'model.filters', /unknown field for kind: keras/);
    await refused(spec('c', '{ kind: keras, init: weights }'), 'model.path', /required: the \.keras file/);
    await refused(spec('d', '{ kind: keras, path: residual.keras, init: weights }', '{ family: synthetic-glyphs, ways: 4, shots: 1, queries: 2, imageSize: 8 }'), 'model.path', /residual\.keras: .*head.*\[3\].*\[4\]/);
    const bad = join(dir, 'dilated.keras');
    const v = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    writeFileSync(
      bad,
      await kerasFile(
        {
          name: 'd',
          input: [8, 8, 1],
          layers: [
            { type: 'Conv2D', name: 'c', inputs: [EXPORT_INPUT], options: { filters: 2, kernel_size: 3, dilation_rate: [2, 2] }, inputShapes: [[8, 8, 1]], shape: [4, 4, 2], variables: [{ keras: 'kernel', ...v([3, 3, 1, 2]) }, { keras: 'bias', ...v([2]) }] },
            { type: 'Flatten', name: 'f', inputs: ['c'], options: {}, inputShapes: [[4, 4, 2]], shape: [32], variables: [] },
            { type: 'Dense', name: 'head', inputs: ['f'], options: { units: 3 }, inputShapes: [[32]], shape: [3], variables: [{ keras: 'kernel', ...v([32, 3]) }, { keras: 'bias', ...v([3]) }] },
          ],
        },
        'test',
      ),
    );
    await refused(spec('e', '{ kind: keras, path: dilated.keras, init: weights }'), 'model.path', /dilated\.keras: layer "c" \(Conv2D\): option dilation_rate/);
  });
});

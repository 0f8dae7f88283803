/**
 * Word vectors as θ₀ of a fewshot-text run (text-vectors.ts, through withRunData as submit and
 * local call it): the Embedding's rows of the vocabulary's words are the file's vectors, every other
 * value is the seeded θ₀ bit for bit, the spec names the bundle by its sha256; a dimension that does
 * not fit, vectors not readable here and a second θ₀ are refused; `metaloop local` trains from it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fromBundle, initParams, metaloop as proto, modelLayout } from '@metaloop/shared';
import { childPids, runMetaloop } from '@metaloop/testing';
import { fixtureDir, removeFixtures, writeJsonlFixture } from '@metaloop/testing/datasets';
import { textDataset } from '@metaloop/worker/data';
import { withRunData } from './data.js';
import { loadRunSpec } from './spec-file.js';

const children = childPids();
after(removeFixtures);

/** A JSONL dataset, GloVe vectors for two of its words (and one it lacks), a spec file naming both. */
function fixture(o: { outputDim?: number; vectors?: string; model?: Record<string, unknown> } = {}) {
  const dir = fixtureDir();
  const data = writeJsonlFixture(6, 4, dir);
  const glove = join(dir, 'glove.txt');
  writeFileSync(glove, 'common 0.5 -0.25 1 2\nnotaword 9 9 9 9\nword0 0.125 3 -1.5 0.1\n');
  const spec = {
    name: 'vectors',
    seed: 3,
    task: { family: 'fewshot-text', path: data, ways: 2, shots: 1, queries: 1, maxLength: 8, vocab: { size: 50 }, classes: { train: 2, val: 2 }, vectors: { path: o.vectors ?? glove } },
    model: o.model ?? {
      kind: 'layers',
      layers: [
        { type: 'Embedding', name: 'embed', input_dim: 50, output_dim: o.outputDim ?? 4 },
        { type: 'Conv1D', name: 'conv', filters: 3, kernel_size: 3, padding: 'same', activation: 'relu' },
        { type: 'GlobalMaxPooling1D' },
        { type: 'Dense', name: 'head' },
      ],
    },
    algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.1 },
    outer: { metaBatch: 2, shardSize: 1, steps: 2 },
    eval: { every: 0 },
    checkpoint: { every: 0 },
  };
  const file = join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  return { file, data, glove };
}

describe('task.vectors as θ₀ of the Embedding', () => {
  it("rows of the vocabulary's words are the vectors, every other value the seeded θ₀; named by sha256, the same every time", async () => {
    const { file } = fixture();
    const said: string[] = [];
    const loaded = await withRunData(await loadRunSpec(file), { say: (l) => said.push(l) });
    const w = loaded.weights!;
    assert.ok(w, 'θ₀ to upload');
    assert.equal(w.sha256, createHash('sha256').update(w.bytes).digest('hex'));
    assert.deepEqual((loaded.spec.model as { weights?: unknown }).weights, { sha256: w.sha256 });
    assert.deepEqual((JSON.parse(loaded.submitText) as { model: { weights?: unknown } }).model.weights, { sha256: w.sha256 }, 'the submitted spec names it');
    assert.match(said.join('\n'), /task\.vectors: 2 of the vocabulary's \d+ words have a vector in .*glove\.txt \(4 dimensions\): θ₀ of embed\.embeddings/);

    const layout = modelLayout(loaded.spec);
    const theta = fromBundle(proto.TensorBundle.decode(w.bytes), layout).data;
    const seeded = initParams(loaded.spec).data.subarray(0, theta.length);
    const t = loaded.spec.task;
    assert.ok(t.family === 'fewshot-text');
    const vocab = textDataset(t).vocabulary;
    const rows = new Map([
      [vocab.ids.get('common')!, [0.5, -0.25, 1, 2]],
      [vocab.ids.get('word0')!, [0.125, 3, -1.5, 0.1]],
    ]);
    assert.equal(rows.size, 2, 'both words are in the vocabulary');
    const expected = Float32Array.from(seeded);
    for (const [id, v] of rows) expected.set(v, id * 4);
    assert.deepEqual([...theta], [...expected], 'embed rows of common and word0 from the file; all else (other rows, conv, head) the seeded θ₀ bit for bit');
    assert.ok(!theta.subarray(0, 50 * 4).includes(9), 'a word outside the vocabulary is not taken');

    const again = await withRunData(await loadRunSpec(file));
    assert.equal(again.weights!.sha256, w.sha256, 'deterministic');
  });

  it('refuses vectors of another dimension, vectors not readable here, and a second θ₀ in the spec, saying what to do', async () => {
    await assert.rejects(
      withRunData(await loadRunSpec(fixture({ outputDim: 5 }).file)),
      /holds 4-dimensional vectors, but the Embedding embed has output_dim 5: set its output_dim to 4, or use vectors of 5 dimensions/,
    );
    await assert.rejects(withRunData(await loadRunSpec(fixture({ vectors: '/nonexistent/glove.txt' }).file)), /cannot hash task\.vectors\.path \/nonexistent\/glove\.txt/);
    await assert.rejects(
      withRunData(await loadRunSpec(fixture({ vectors: '/nonexistent/glove.txt' }).file), { skipUnreadable: true }),
      /task\.vectors become θ₀ at submit, so the CLI must read the dataset \(for its vocabulary\) and the vectors here: cannot read word vectors \/nonexistent\/glove\.txt/,
    );
    const model = {
      kind: 'layers',
      layers: [{ type: 'Embedding', input_dim: 50, output_dim: 4 }, { type: 'GlobalMaxPooling1D' }, { type: 'Dense' }],
      weights: { sha256: 'c'.repeat(64) },
    };
    await assert.rejects(withRunData(await loadRunSpec(fixture({ model }).file)), /task\.vectors make θ₀, and the spec names another θ₀ in model\.weights: drop one of them/);
  });

  it('metaloop local trains a text CNN from that θ₀ (uploaded, then named by the spec)', async () => {
    const { file } = fixture();
    const r = await runMetaloop(children, ['local', file, '--workers', '1', '--json'], { PATH: `${process.env.PATH}:/usr/sbin` }, 180_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /task\.vectors: 2 of the vocabulary's/);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { status: string; steps: number };
    assert.deepEqual([summary.status, summary.steps], ['succeeded', 2], r.stdout);
  });
});

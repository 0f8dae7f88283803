/**
 * DataGuard: a worker's copy of a run's dataset checked against the run's hash — the same copy
 * passes, a different or missing one is refused naming the path and both hashes, a file is hashed
 * again only when it changed, word vectors (carried in θ₀) are not the workers' to hold, and held()
 * lists what was checked.
 */
import assert from 'node:assert/strict';
import { copyFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { validateSpec } from '@metaloop/shared';
import { fixtureDir, removeFixtures, writeImageFixture, writeJsonlFixture } from '@metaloop/testing/datasets';
import { DataGuard } from './data-guard.js';
import { describeDataset } from './data/describe.js';
import { packImages } from './data/pack.js';
import { DataRefusedError } from './errors.js';

after(removeFixtures);

const imageSpec = (path: string, sha256?: string) =>
  validateSpec({ name: 'g', task: { family: 'fewshot-images', path, imageSize: 8, ways: 2, ...(sha256 ? { sha256 } : {}) }, model: { kind: 'mlp' }, algorithm: { kind: 'maml' } });

describe('DataGuard', () => {
  test('the same packed copy passes; a different one and a missing one are refused by path and both hashes', async () => {
    const a = await writeImageFixture({ layout: 'classes', classes: 4, perClass: 2 });
    const b = await writeImageFixture({ layout: 'classes', classes: 4, perClass: 2, salt: 9 });
    const dir = fixtureDir();
    const good = (await packImages({ source: a, imageSize: 8, channels: 1, out: join(dir, 'a.mlpack') })).header.sha256;
    const other = (await packImages({ source: b, imageSize: 8, channels: 1, out: join(dir, 'b.mlpack') })).header.sha256;
    const guard = new DataGuard();
    guard.check(imageSpec(join(dir, 'a.mlpack'), good));
    guard.check(imageSpec(join(dir, 'a.mlpack'))); // no hash in the spec: nothing to check
    assert.throws(
      () => guard.check(imageSpec(join(dir, 'b.mlpack'), good)),
      (e: unknown) => e instanceof DataRefusedError && e.expected === good && e.actual === other && e.message.includes(join(dir, 'b.mlpack')) && e.message.includes(`hashes to ${other}`) && e.message.includes(`expects sha256 ${good}`),
    );
    assert.throws(() => guard.check(imageSpec(join(dir, 'none.mlpack'), good)), /task\.path .*none\.mlpack is missing on this worker, the run expects sha256/);
    const held = guard.held();
    assert.deepEqual(held.map((h) => [h.sha256, h.error]), [[good, ''], [other, ''], ['', 'missing']]);
  });

  test('a file is hashed again when it changes, and a folder by its manifest', async () => {
    const dir = fixtureDir();
    const path = writeJsonlFixture(3, 2, dir);
    const before = describeDataset(path).sha256;
    const guard = new DataGuard();
    const spec = (sha: string) => validateSpec({ name: 't', task: { family: 'fewshot-text', path, sha256: sha, classes: { train: 2, val: 0 } }, model: { kind: 'mlp' }, algorithm: { kind: 'maml' } });
    guard.check(spec(before));
    // Word vectors travel in θ₀ (model.weights, built by the CLI): a worker never reads them, so need not hold them.
    const withVectors = validateSpec({
      name: 't',
      task: { family: 'fewshot-text', path, sha256: before, classes: { train: 2, val: 0 }, vocab: { size: 50 }, maxLength: 8, vectors: { path: join(dir, 'absent-glove.txt'), sha256: 'b'.repeat(64) } },
      model: { kind: 'layers', layers: [{ type: 'Embedding', input_dim: 50, output_dim: 4 }, { type: 'GlobalMaxPooling1D' }, { type: 'Dense' }] },
      algorithm: { kind: 'maml' },
    });
    guard.check(withVectors);
    assert.ok(!guard.held().some((h) => (h.path ?? '').endsWith('absent-glove.txt')), 'the vectors are not looked at');
    writeFileSync(path, '{"label":"x","text":"changed"}\n');
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    assert.throws(() => guard.check(spec(before)), DataRefusedError, 'the changed file is re-hashed');
    const folder = await writeImageFixture({ layout: 'classes', classes: 4, perClass: 2 });
    const sha = describeDataset(folder).sha256;
    guard.check(imageSpec(folder, sha));
    copyFileSync(join(folder, 'class00', '000.jpg'), join(folder, 'class00', '009.jpg'));
    assert.throws(() => guard.check(imageSpec(folder, sha)), DataRefusedError, 'an image added to a class changes the folder hash');
    rmSync(join(folder, 'class00', '009.jpg'));
    guard.check(imageSpec(folder, sha));
  });
});

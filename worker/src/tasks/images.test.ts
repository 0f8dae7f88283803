/**
 * fewshot-images on fixtures this test writes itself (JPEG and PNG images encoded with sharp, in
 * every layout), from folders and from packed files, and every bad input refused with its message.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { validateSpec, type RunSpecInput } from '@metaloop/shared';
import { fixtureDir, removeFixtures, writeImageFixture } from '@metaloop/testing/datasets';
import { packImages } from '../data/pack.js';
import { DatasetError } from '../errors.js';
import { createFewshotImages } from './images.js';

after(removeFixtures);

type ImagesInput = Extract<RunSpecInput['task'], { family: 'fewshot-images' }>;
const spec = (task: Partial<ImagesInput> & { path: string }) =>
  validateSpec({ name: 'img', task: { family: 'fewshot-images', ...task }, model: { kind: 'conv4', pool: 'stride' }, algorithm: { kind: 'maml' } });

/** A task's bytes, to compare draws bit for bit. */
const bytesOf = (t: { support: { x: Float32Array; y: Float32Array }; query: { x: Float32Array; y: Float32Array } }) =>
  Buffer.concat([t.support.x, t.support.y, t.query.x, t.query.y].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));

async function draw(fam: ReturnType<typeof createFewshotImages>, seed: number, split: 'train' | 'val' | 'test' = 'train') {
  await fam.prepare([seed], split);
  return fam.sample(seed, split);
}

function refused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof DatasetError && pattern.test(err.message), `expected a DatasetError matching ${pattern}`);
}

async function refusedAsync(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof DatasetError && pattern.test(err.message));
}

describe('fewshot-images: layouts and formats', () => {
  test('classes layout of JPEGs: sorted classes, 70/10/20 split, N-way K-shot tasks with one-hot labels, deterministic', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 10, perClass: 4 });
    const fam = createFewshotImages(spec({ path: root, ways: 3, shots: 1, queries: 2, imageSize: 8, channels: 3 }));
    assert.equal(fam.source.layout, 'classes');
    assert.deepEqual(fam.source.splits.train.map((c) => c.name), ['class00', 'class01', 'class02', 'class03', 'class04', 'class05', 'class06']);
    assert.equal(fam.source.splits.val.length, 1);
    assert.equal(fam.source.splits.test.length, 2);
    assert.deepEqual(fam.inputShape, [8, 8, 3]);
    const t = await draw(fam, 7);
    assert.equal(t.support.n, 3);
    assert.equal(t.query.n, 6);
    assert.equal(t.support.x.length, 3 * 8 * 8 * 3);
    for (let i = 0; i < 6; i++) assert.equal(t.query.y[i * 3 + Math.floor(i / 2)], 1, `query ${i} is labelled with its class`);
    assert.ok(t.support.x.every((v) => v >= 0 && v <= 1));
    assert.deepEqual(bytesOf(await draw(fam, 7)), bytesOf(t), 'the same seed draws the same task');
    assert.notDeepEqual(bytesOf(await draw(fam, 8)), bytesOf(t));
    const fresh = createFewshotImages(spec({ path: root, ways: 3, shots: 1, queries: 2, imageSize: 8, channels: 3 }));
    assert.throws(() => fresh.sample(7), /not prepared/, 'a folder task is drawn only after prepare()');
  });

  test('omniglot layout of PNGs, grey, inverted, rotations as new classes', async () => {
    const root = await writeImageFixture({ layout: 'omniglot', classes: 3, perClass: 3, format: 'png' });
    const fam = createFewshotImages(spec({ path: root, ways: 5, shots: 1, queries: 1, imageSize: 6, invert: true, rotations: true, classes: { train: 4, val: 1 } }));
    assert.equal(fam.source.layout, 'omniglot');
    assert.deepEqual(fam.source.splits.val.map((c) => c.name), ['alphabet1/character1']);
    const t = await draw(fam, 3);
    assert.ok(t.classes.some((c) => c.includes('@')), `rotated classes are drawn: ${t.classes.join(', ')}`);
    assert.equal(t.support.x.length, 5 * 36);
  });

  test('split folders (root/{train,val,test}/class/*): the dataset splits are used, eval draws from test', async () => {
    const root = await writeImageFixture({ layout: 'splits', classes: 3, perClass: 3 });
    const fam = createFewshotImages(spec({ path: root, ways: 3, shots: 1, queries: 1, imageSize: 8, channels: 3 }));
    assert.equal(fam.source.layout, 'splits');
    assert.deepEqual(fam.source.splits.test.map((c) => c.name), ['n00000006', 'n00000007', 'n00000008']);
    const t = await draw(fam, 1, 'test');
    assert.deepEqual([...t.classes].sort(), ['n00000006', 'n00000007', 'n00000008']);
    refused(() => createFewshotImages(spec({ path: root, imageSize: 8, channels: 3, classes: { train: 2 } })), /brings its own train\/val\/test splits: remove task\.classes/);
  });

  test("mini-ImageNet split CSVs (Ravi & Larochelle's filename,label; images in root/images/)", async () => {
    const root = await writeImageFixture({ layout: 'csv', classes: 3, perClass: 4 });
    const fam = createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 2, imageSize: 8, channels: 3 }));
    assert.equal(fam.source.layout, 'csv');
    assert.deepEqual(fam.source.splits.val.map((c) => [c.name, c.count]), [['n00000003', 4], ['n00000004', 4], ['n00000005', 4]]);
    const t = await draw(fam, 5, 'val');
    assert.equal(t.query.n, 4);
  });

  test('resizing is antialiased: a 1-pixel checkerboard shrinks to mid grey, not to black or white', async () => {
    const dir = fixtureDir();
    const w = 64;
    const raw = Buffer.alloc(w * w * 3);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) raw.fill((x + y) % 2 ? 255 : 0, 3 * (y * w + x), 3 * (y * w + x) + 3);
    for (const c of ['a', 'b']) {
      mkdirSync(join(dir, c));
      for (const i of [0, 1]) writeFileSync(join(dir, c, `${i}.png`), await sharp(raw, { raw: { width: w, height: w, channels: 3 } }).png().toBuffer());
    }
    const fam = createFewshotImages(spec({ path: dir, ways: 2, shots: 1, queries: 1, imageSize: 8, classes: { train: 2, val: 0 } }));
    const t = await draw(fam, 0);
    for (const v of t.support.x) assert.ok(Math.abs(v - 0.5) < 0.08, `pixel ${v} is near 0.5`);
  });

  test('per-channel mean/std normalisation: (x/255 − mean) / std, the same image as unnormalised', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 4, perClass: 2 });
    const base = { path: root, ways: 2, shots: 1, queries: 1, imageSize: 8, channels: 3 as const, classes: { train: 4, val: 0 } };
    const plain = await draw(createFewshotImages(spec(base)), 2);
    const mean = [0.5, 0.4, 0.3];
    const std = [0.2, 0.25, 0.3];
    const norm = await draw(createFewshotImages(spec({ ...base, normalize: { mean, std } })), 2);
    for (let i = 0; i < plain.support.x.length; i++) {
      const c = i % 3;
      const v = Math.round(plain.support.x[i]! * 255);
      assert.equal(norm.support.x[i], Math.fround((v / 255 - mean[c]!) / std[c]!));
    }
    refused(() => createFewshotImages(spec({ ...base, normalize: { mean: [0.5, 0.5], std: [1, 1] } })), /2 values per list, the images have 3 channel/);
  });
});

describe('fewshot-images: packed files', () => {
  for (const layout of ['classes', 'csv'] as const) {
    test(`a packed ${layout} dataset draws bitwise the tasks of its folder, and decodes nothing`, async () => {
      const root = await writeImageFixture({ layout, classes: layout === 'csv' ? 3 : 10, perClass: 3 });
      const out = join(fixtureDir(), 'ds.mlpack');
      let last = 0;
      const packed = await packImages({ source: root, imageSize: 8, channels: 3, out, onProgress: (d) => (last = d) });
      assert.equal(last, layout === 'csv' ? 27 : 30, 'progress reaches every image');
      assert.match(packed.header.sha256, /^[0-9a-f]{64}$/);
      const task = { ways: 2, shots: 1, queries: 2, imageSize: 8, channels: 3 as const };
      const folder = createFewshotImages(spec({ path: root, ...task }));
      const fromPack = createFewshotImages(spec({ path: out, ...task }));
      assert.equal(fromPack.source.kind, 'packed');
      let spare: ReturnType<typeof fromPack.sample> | undefined;
      for (const split of ['train', 'test'] as const) {
        for (const seed of [1, 2, 3]) {
          const fresh = fromPack.sample(seed, split);
          assert.deepEqual(bytesOf(fresh), bytesOf(await draw(folder, seed, split)), `${split} seed ${seed}`);
          if (spare) {
            const reused = fromPack.sample(seed, split, spare);
            assert.equal(reused.support.x, spare.support.x, 'drawn into the spare task\'s arrays');
            assert.deepEqual(bytesOf(reused), bytesOf(fresh), 'a task drawn into a spare one is the same task');
          }
          spare = fromPack.sample(seed + 100, split);
        }
      }
      const again = await packImages({ source: root, imageSize: 8, channels: 3, out: join(fixtureDir(), 'again.mlpack') });
      assert.equal(again.header.sha256, packed.header.sha256, 'packing the same data twice gives the same content hash');
    });
  }

  test('a packed file of another format version, a corrupt one and one of another image size are refused', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 4, perClass: 2 });
    const out = join(fixtureDir(), 'ds.mlpack');
    await packImages({ source: root, imageSize: 8, channels: 1, out });
    const task = { ways: 2, shots: 1, queries: 1, imageSize: 8, classes: { train: 4, val: 0 } };
    const good = readFileSync(out);
    const v2 = Buffer.from(good);
    v2.writeUInt32LE(2, 8);
    const old = join(fixtureDir(), 'v2.mlpack');
    writeFileSync(old, v2);
    refused(() => createFewshotImages(spec({ path: old, ...task })), /format version 2, but this Metaloop reads version 1: re-pack it/);
    const bad = Buffer.from(good);
    bad[bad.length - 5] = bad[bad.length - 5]! ^ 0xff;
    const corrupt = join(fixtureDir(), 'corrupt.mlpack');
    writeFileSync(corrupt, bad);
    refused(() => createFewshotImages(spec({ path: corrupt, ...task })), /is corrupt: its content hashes to [0-9a-f]{64}, but its header says [0-9a-f]{64}/);
    refused(() => createFewshotImages(spec({ path: out, ...task, imageSize: 16 })), /holds 8×8×1 images, the spec asks for 16×16×1/);
    writeFileSync(corrupt, good.subarray(0, good.length - 100));
    refused(() => createFewshotImages(spec({ path: corrupt, ...task })), /is truncated/);
  });
});

describe('fewshot-images: bad data gets a clear error before anything is computed', () => {
  test('a missing split (split folders, split CSVs)', async () => {
    const root = await writeImageFixture({ layout: 'splits', classes: 2, perClass: 2 });
    rmSync(join(root, 'val'), { recursive: true });
    refused(() => createFewshotImages(spec({ path: root, ways: 2, imageSize: 8 })), /has no val split: .*val is missing/);
    const csv = await writeImageFixture({ layout: 'csv', classes: 2, perClass: 2 });
    rmSync(join(csv, 'test.csv'));
    refused(() => createFewshotImages(spec({ path: csv, ways: 2, imageSize: 8 })), /has no test split: .*test\.csv is missing/);
  });

  test('a class with fewer images than shots + queries, named', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 5, perClass: 3 });
    rmSync(join(root, 'class02', '002.jpg'));
    refused(() => createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 2, imageSize: 8, classes: { train: 5, val: 0 } })), /fewer than shots \+ queries = 3 images: class02 \(2\)/);
  });

  test('a corrupt image, named, when its task is prepared (and when packing)', async () => {
    const root = await writeImageFixture({ layout: 'classes', classes: 2, perClass: 2 });
    writeFileSync(join(root, 'class01', '001.jpg'), Buffer.from('not a jpeg at all'));
    const fam = createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 1, imageSize: 8, classes: { train: 2, val: 0 } }));
    await refusedAsync(fam.prepare([0]), /cannot decode image .*class01\/001\.jpg: .*corrupt or truncated/);
    await refusedAsync(packImages({ source: root, imageSize: 8, channels: 1, out: join(fixtureDir(), 'x.mlpack') }), /cannot decode image .*class01\/001\.jpg/);
  });

  test('a CSV naming a missing file, a folder that does not exist', async () => {
    const root = await writeImageFixture({ layout: 'csv', classes: 2, perClass: 2 });
    rmSync(join(root, 'images', 'n0000000000000001.jpg'));
    refused(() => createFewshotImages(spec({ path: root, ways: 2, imageSize: 8 })), /train\.csv line 3 names n0000000000000001\.jpg, but .* does not exist/);
    refused(() => createFewshotImages(spec({ path: join(root, 'nope'), imageSize: 8 })), /does not exist \(check task\.path/);
  });
});

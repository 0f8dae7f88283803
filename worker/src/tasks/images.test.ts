/** fewshot-images on fixture folders this test writes itself (tiny PNGs made with pngjs). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { validateSpec, type RunSpecInput } from '@metaloop/shared';
import { PNG } from 'pngjs';
import { DatasetError } from '../errors.js';
import { createFewshotImages, datasetIndex, imagesConfig, loadImage, resizeArea, rotateQuarter, scanDataset } from './images.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A w×h PNG whose pixel (x, y) is f(x, y) ∈ [0, 255] on all channels (or rgb(x, y)). */
function png(w: number, h: number, f: (x: number, y: number) => number | [number, number, number]): Buffer {
  const img = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = f(x, y);
      const [r, g, b] = typeof v === 'number' ? [v, v, v] : v;
      img.data.set([r, g, b, 255], 4 * (y * w + x));
    }
  }
  return PNG.sync.write(img);
}

/** root/alphabet/character/NN.png: `alphabets` × `chars` classes of `n` images each. */
function omniglotFixture(alphabets: number, chars: number, n: number): string {
  const root = mkdtempSync(join(tmpdir(), 'metaloop-omniglot-'));
  roots.push(root);
  for (let a = 0; a < alphabets; a++) {
    for (let c = 0; c < chars; c++) {
      const dir = join(root, `alphabet${a}`, `character${c}`);
      mkdirSync(dir, { recursive: true });
      // class-specific stroke: a dark row at y = 2c + a, the rest white
      for (let i = 0; i < n; i++) writeFileSync(join(dir, `${String(i).padStart(2, '0')}.png`), png(12, 12, (x, y) => (y === 2 * c + a && x > i % 3 ? 0 : 255)));
    }
  }
  return root;
}

const spec = (task: Partial<Extract<RunSpecInput['task'], { family: 'fewshot-images' }>> & { path: string }) =>
  validateSpec({ name: 'img', task: { family: 'fewshot-images', ...task }, model: { kind: 'conv4', pool: 'stride' }, algorithm: { kind: 'maml' } });

describe('fewshot-images', () => {
  test('Omniglot layout: classes found, fixed splits, N-way K-shot tasks, rotations as new classes', () => {
    const root = omniglotFixture(2, 3, 4);
    const s = spec({ path: root, ways: 3, shots: 1, queries: 2, imageSize: 6, invert: true, rotations: true, classes: { train: 3, val: 1 } });
    const fam = createFewshotImages(s);
    assert.equal(fam.index.layout, 'omniglot');
    assert.deepEqual(
      fam.index.classes.map((c) => c.name),
      ['alphabet0/character0', 'alphabet0/character1', 'alphabet0/character2', 'alphabet1/character0', 'alphabet1/character1', 'alphabet1/character2'],
    );
    assert.deepEqual(fam.index.splits.val.map((c) => c.name), ['alphabet1/character0']);
    assert.equal(fam.index.splits.test.length, 2);
    assert.deepEqual(fam.inputShape, [6, 6, 1]);
    const t = fam.sample(5) as ReturnType<typeof fam.sample> & { classes: string[] };
    assert.equal(t.support.n, 3);
    assert.equal(t.query.n, 6);
    assert.equal(t.support.x.length, 3 * 36);
    assert.ok(t.classes.every((c) => /^alphabet0\//.test(c)), 'train tasks use train classes only');
    assert.deepEqual(fam.sample(5).query.x, t.query.x, 'pure function of the seed');
    // inverted: strokes bright, paper dark
    assert.ok(t.support.x.every((v) => v >= 0 && v <= 1) && t.support.x.some((v) => v > 0.2));
    // rotations make 4 classes per base class: over many tasks, all 12 train classes appear
    const seen = new Set<string>();
    for (let seed = 0; seed < 60; seed++) for (const c of (fam.sample(seed) as typeof t).classes) seen.add(c);
    assert.equal(seen.size, 12);
    assert.ok(seen.has('alphabet0/character1@270'));
    const test = fam.sample(1, 'test') as typeof t;
    assert.ok(test.classes.every((c) => c.startsWith('alphabet1/character1') || c.startsWith('alphabet1/character2')));
  });

  test('one folder per class (mini-ImageNet style), RGB', () => {
    const root = mkdtempSync(join(tmpdir(), 'metaloop-flat-'));
    roots.push(root);
    for (const [k, name] of ['cat', 'dog', 'emu', 'fox'].entries()) {
      mkdirSync(join(root, name));
      for (let i = 0; i < 3; i++) writeFileSync(join(root, name, `${i}.png`), png(8, 8, () => [60 * k, 255 - 60 * k, 10 * i]));
    }
    writeFileSync(join(root, 'README.txt'), 'not a class');
    const fam = createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 1, imageSize: 4, channels: 3, classes: { train: 3, val: 0 } }));
    assert.equal(fam.index.layout, 'flat');
    assert.deepEqual(fam.index.splits.train.map((c) => c.name), ['cat', 'dog', 'emu']);
    assert.deepEqual(fam.index.splits.test.map((c) => c.name), ['fox']);
    const t = fam.sample(3);
    assert.equal(t.support.x.length, 2 * 4 * 4 * 3);
    // a uniform colour stays uniform through resizing; red of class k is 60k/255
    const r = t.support.x[0]!;
    assert.ok([0, 60, 120].some((v) => Math.abs(r - v / 255) < 1e-6));
  });

  test('the index is built once and cached', () => {
    const root = omniglotFixture(1, 3, 3);
    const config = imagesConfig(spec({ path: root, ways: 2, shots: 1, queries: 1, classes: { train: 2, val: 0 } }));
    assert.equal(datasetIndex(config), datasetIndex(config));
  });

  test('a class with fewer than K + Q images is rejected by name', () => {
    const root = omniglotFixture(1, 3, 4);
    rmSync(join(root, 'alphabet0', 'character1', '03.png'));
    rmSync(join(root, 'alphabet0', 'character1', '02.png'));
    assert.throws(
      () => createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 2, classes: { train: 2, val: 0 } })),
      (err: unknown) => err instanceof DatasetError && /alphabet0\/character1 \(2\)/.test(err.message) && /shots \+ queries = 3/.test(err.message),
    );
  });

  test('a corrupt image gives an error naming the file', () => {
    const root = omniglotFixture(1, 2, 2);
    const bad = join(root, 'alphabet0', 'character1', '01.png');
    writeFileSync(bad, Buffer.from('this is not a png'));
    const fam = createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 1, classes: { train: 2, val: 0 } }));
    assert.throws(() => fam.sample(1), (err: unknown) => err instanceof DatasetError && err.path === bad && err.message.includes(bad));
    assert.throws(() => loadImage(bad, { imageSize: 4, channels: 1, invert: false }), /cannot decode image/);
  });

  test('layout errors: no sub-folders, non-PNG images, split larger than the folder', () => {
    const empty = mkdtempSync(join(tmpdir(), 'metaloop-empty-'));
    roots.push(empty);
    assert.throws(() => scanDataset(empty), /has no sub-folders/);
    mkdirSync(join(empty, 'c'));
    writeFileSync(join(empty, 'c', 'x.jpg'), 'jpeg');
    assert.throws(() => scanDataset(empty), /class c has images but no PNG/);
    const root = omniglotFixture(1, 3, 2);
    assert.throws(() => createFewshotImages(spec({ path: root, ways: 2, shots: 1, queries: 1, classes: { train: 5 } })), /only 3/);
  });

  test('area resize and quarter rotations', () => {
    const src = Float32Array.from({ length: 16 }, (_, i) => i); // 4×4, one channel
    assert.deepEqual(Array.from(resizeArea(src, 4, 4, 1, 2)), [2.5, 4.5, 10.5, 12.5]);
    const img = Float32Array.from([1, 2, 3, 4]); // [[1, 2], [3, 4]]
    assert.deepEqual(Array.from(rotateQuarter(img, 2, 1, 1)), [2, 4, 1, 3]);
    assert.deepEqual(rotateQuarter(rotateQuarter(rotateQuarter(rotateQuarter(img, 2, 1, 1), 2, 1, 1), 2, 1, 1), 2, 1, 1), img);
  });
});

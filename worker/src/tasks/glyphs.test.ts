import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Rng, validateSpec, type RunSpecInput } from '@metaloop/shared';
import { createGlyphs, distToSegment, glyphsConfig, rasterizeSegments, sampleGlyphTask, splitRange } from './glyphs.js';

const spec = (task: Partial<Extract<RunSpecInput['task'], { family: 'synthetic-glyphs' }>> = {}) =>
  validateSpec({ name: 'g', task: { family: 'synthetic-glyphs', ...task }, model: { kind: 'conv4' }, algorithm: { kind: 'maml' } });

/** The renderer's pixel loop as it was before issue 27: every pixel scans every segment (with a bounding-box reject). */
function referenceRaster(segs: readonly number[], halfWidths: readonly number[], size: number): Float32Array {
  const out = new Float32Array(size * size);
  for (let row = 0; row < size; row++) {
    const py = row + 0.5;
    for (let col = 0; col < size; col++) {
      const px = col + 0.5;
      let best = 0;
      for (let k = 0; k < halfWidths.length; k++) {
        const r = halfWidths[k]!;
        const [ax, ay, bx, by] = segs.slice(4 * k, 4 * k + 4) as [number, number, number, number];
        if (px < Math.min(ax, bx) - r - 1 || px > Math.max(ax, bx) + r + 1) continue;
        if (py < Math.min(ay, by) - r - 1 || py > Math.max(ay, by) + r + 1) continue;
        const cover = r + 0.5 - distToSegment(px, py, ax, ay, bx, by);
        if (cover > best) best = cover >= 1 ? 1 : cover;
        if (best >= 1) break;
      }
      out[row * size + col] = best;
    }
  }
  return out;
}

/** Nearest-centroid (1-shot: nearest support image) accuracy on raw pixels. */
function pixelNearestNeighbour(task: ReturnType<typeof sampleGlyphTask>, ways: number, pix: number): number {
  let right = 0;
  for (let q = 0; q < task.query.n; q++) {
    let best = -1;
    let bestD = Infinity;
    for (let s = 0; s < task.support.n; s++) {
      let d = 0;
      for (let p = 0; p < pix; p++) {
        const e = task.query.x[q * pix + p]! - task.support.x[s * pix + p]!;
        d += e * e;
      }
      if (d < bestD) {
        bestD = d;
        best = s;
      }
    }
    const label = (i: number, y: Float32Array) => y.subarray(i * ways, (i + 1) * ways).indexOf(1);
    if (label(best, task.support.y) === label(q, task.query.y)) right++;
  }
  return right / task.query.n;
}

describe('synthetic-glyphs', () => {
  test('a task is a pure function of its seed; different seeds differ', () => {
    const fam = createGlyphs(spec());
    const a = fam.sample(42);
    const b = fam.sample(42);
    assert.deepEqual(a.support.x, b.support.x);
    assert.deepEqual(a.query.y, b.query.y);
    const c = fam.sample(43);
    assert.notDeepEqual(a.support.x, c.support.x);
    assert.equal(fam.loss, 'xent');
    assert.deepEqual(fam.inputShape, [28, 28, 1]);
    assert.equal(fam.outputs, 5);
  });

  test('N-way K-shot Q-query shapes, one-hot labels, class-major, pixels in [0, 1]', () => {
    const config = glyphsConfig(spec({ ways: 4, shots: 2, queries: 3, imageSize: 20 }));
    const t = sampleGlyphTask(config, 7);
    assert.equal(t.support.n, 8);
    assert.equal(t.query.n, 12);
    assert.equal(t.support.x.length, 8 * 400);
    assert.equal(t.support.y.length, 8 * 4);
    assert.equal(new Set(t.classes).size, 4);
    for (let i = 0; i < t.query.n; i++) {
      const row = Array.from(t.query.y.subarray(i * 4, i * 4 + 4));
      assert.deepEqual(row, [0, 1, 2, 3].map((c) => (c === Math.floor(i / 3) ? 1 : 0)));
    }
    assert.ok(t.support.x.every((v) => v >= 0 && v <= 1));
    for (let i = 0; i < t.support.n; i++) {
      const img = t.support.x.subarray(i * 400, (i + 1) * 400);
      const ink = img.reduce((s, v) => s + v, 0);
      assert.ok(ink > 10 && ink < 250, `sample ${i} has ${ink} ink`);
      assert.ok(img.some((v) => v > 0 && v < 1), 'anti-aliased edges');
    }
  });

  test('splits use disjoint class index ranges', () => {
    const config = glyphsConfig(spec({ classes: { train: 30, val: 10, test: 12 } }));
    assert.deepEqual(splitRange(config, 'val'), { first: 30, count: 10 });
    const seen = { train: new Set<number>(), val: new Set<number>(), test: new Set<number>() };
    for (const split of ['train', 'val', 'test'] as const) {
      for (let s = 0; s < 40; s++) for (const c of sampleGlyphTask(config, s, split).classes) seen[split].add(c);
    }
    assert.ok([...seen.train].every((c) => c >= 0 && c < 30));
    assert.ok([...seen.val].every((c) => c >= 30 && c < 40));
    assert.ok([...seen.test].every((c) => c >= 40 && c < 52));
    assert.equal(seen.val.size, 10, 'every val class gets used');
    assert.throws(() => sampleGlyphTask(glyphsConfig(spec({ classes: { train: 30, val: 0, test: 12 } })), 1, 'val'), /val split has 0/);
  });

  test('same-class samples look alike: 1-NN on pixels is well above chance, but not trivial', () => {
    const config = glyphsConfig(spec({ ways: 5, shots: 1, queries: 5 }));
    let acc = 0;
    const tasks = 30;
    for (let s = 0; s < tasks; s++) acc += pixelNearestNeighbour(sampleGlyphTask(config, 1000 + s), 5, 784);
    acc /= tasks;
    assert.ok(acc > 0.4, `1-NN accuracy ${acc} should be well above chance (0.2)`);
    assert.ok(acc < 0.98, `1-NN accuracy ${acc}: jitter should make the task non-trivial`);
  });

  test('the segment-major rasteriser equals the per-pixel scan bit for bit (segments inside, across and off the image; points, whole-pixel ends)', () => {
    const rng = new Rng(27);
    for (const size of [28, 16, 9]) {
      for (let trial = 0; trial < 60; trial++) {
        const n = 1 + rng.int(40);
        const segs: number[] = [];
        const halfWidths: number[] = [];
        for (let k = 0; k < n; k++) {
          const a = [rng.uniform(-4, size + 4), rng.uniform(-4, size + 4)];
          // some zero-length segments, some ends on pixel centres or edges, some long strokes
          const b = k % 7 === 0 ? a : k % 5 === 0 ? [Math.round(a[0]!) + 0.5, Math.round(a[1]!)] : [a[0]! + rng.uniform(-8, 8), a[1]! + rng.uniform(-8, 8)];
          segs.push(a[0]!, a[1]!, b[0]!, b[1]!);
          halfWidths.push(k % 3 === 0 ? rng.uniform(0, 0.3) : rng.uniform(0.5, 3));
        }
        const out = new Float32Array(size * size + 10).fill(7);
        rasterizeSegments(segs, halfWidths, size, out, 5);
        assert.deepEqual(out.subarray(5, 5 + size * size), referenceRaster(segs, halfWidths, size), `size ${size}, trial ${trial}`);
        assert.deepEqual([...out.subarray(0, 5), ...out.subarray(5 + size * size)], new Array(10).fill(7), 'nothing written outside the image');
      }
    }
  });

  test('jitter 0 renders every sample of a class alike', () => {
    const config = glyphsConfig(spec({ ways: 3, shots: 2, queries: 1, jitter: 0 }));
    const t = sampleGlyphTask(config, 5);
    assert.deepEqual(t.support.x.subarray(0, 784), t.support.x.subarray(784, 1568));
  });
});

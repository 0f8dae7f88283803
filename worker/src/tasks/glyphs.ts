/**
 * `synthetic-glyphs`: a procedural family of glyph classes, so few-shot classification runs and is
 * tested with no download. A class is 2–4 random strokes (quadratic Bézier curves) drawn from the
 * class seed; a sample renders them anti-aliased at imageSize² with per-sample jitter from the sample
 * seed (small rotation, scale, shear, offset, thickness and control-point noise). Classes are split
 * into meta-train / meta-val / meta-test by index ranges. The class definitions do not depend on the
 * run seed (the "dataset" is the same for every run); tasks are drawn from the task seed only.
 * Pixels are in [0, 1], strokes bright on black, shape [imageSize, imageSize, 1].
 */
import { hashWords, Rng, type RunSpec } from '@metaloop/shared';
import { UnsupportedError } from '../errors.js';
import type { Split, TaskData, TaskFamily } from './types.js';

export type { Split } from './types.js';

export interface GlyphsConfig {
  readonly ways: number;
  readonly shots: number;
  readonly queries: number;
  readonly imageSize: number;
  readonly classes: { readonly train: number; readonly val: number; readonly test: number };
  readonly strokes: readonly [number, number];
  readonly jitter: number;
}

type Point = readonly [number, number];
/** A stroke: quadratic Bézier p0 → p1 with control point c, and a relative width. */
interface Stroke {
  readonly p0: Point;
  readonly c: Point;
  readonly p1: Point;
  readonly width: number;
}

const GLYPH_DOMAIN = 0x67_6c_79_70; // "glyp"
const SEGMENTS = 8;

/** The strokes of global class `index` (independent of run seed and split). */
export function glyphStrokes(index: number, strokes: readonly [number, number]): Stroke[] {
  const rng = new Rng(hashWords(GLYPH_DOMAIN, index));
  const lo = Math.max(1, Math.round(strokes[0]));
  const hi = Math.max(lo, Math.round(strokes[1]));
  const n = lo + rng.int(hi - lo + 1);
  const pt = (): Point => [rng.uniform(0.18, 0.82), rng.uniform(0.18, 0.82)];
  const out: Stroke[] = [];
  let last: Point | null = null;
  for (let s = 0; s < n; s++) {
    // half the strokes start where the previous one ended, so glyphs look connected
    const p0 = last !== null && rng.next() < 0.5 ? last : pt();
    const p1 = pt();
    const mid: Point = [(p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2];
    const c: Point = [mid[0] + rng.uniform(-0.3, 0.3), mid[1] + rng.uniform(-0.3, 0.3)];
    out.push({ p0, c, p1, width: rng.uniform(0.8, 1.2) });
    last = p1;
  }
  return out;
}

/** Euclidean distance from (px, py) to the segment a–b. */
export function distToSegment(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const ex = ax + t * dx - px;
  const ey = ay + t * dy - py;
  return Math.sqrt(ex * ex + ey * ey);
}

/**
 * Render one sample of a class into `out` (imageSize² floats at `offset`): jittered strokes,
 * anti-aliased by pixel coverage of the stroke's distance field.
 */
export function renderGlyph(strokes: readonly Stroke[], size: number, jitter: number, rng: Rng, out: Float32Array, offset = 0): void {
  const j = jitter;
  const angle = rng.uniform(-0.2, 0.2) * j;
  const scale = 1 + rng.uniform(-0.1, 0.1) * j;
  const shear = rng.uniform(-0.15, 0.15) * j;
  const tx = rng.uniform(-0.06, 0.06) * j;
  const ty = rng.uniform(-0.06, 0.06) * j;
  const thick = (1.25 + rng.uniform(-0.3, 0.3) * j) / 28; // stroke half-width, in image units (~1.25 px at 28²)
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const warp = ([x, y]: Point): Point => {
    const u = (x - 0.5) * scale;
    const v = (y - 0.5) * scale;
    const us = u + shear * v;
    return [0.5 + cos * us - sin * v + tx, 0.5 + sin * us + cos * v + ty];
  };
  // Flatten every stroke to segments in pixel units, with a little control-point noise.
  const segs: number[] = [];
  const halfWidths: number[] = [];
  for (const s of strokes) {
    const noise = (p: Point): Point => [p[0] + rng.uniform(-0.025, 0.025) * j, p[1] + rng.uniform(-0.025, 0.025) * j];
    const p0 = warp(noise(s.p0));
    const c = warp(noise(s.c));
    const p1 = warp(noise(s.p1));
    let prev = p0;
    for (let k = 1; k <= SEGMENTS; k++) {
      const t = k / SEGMENTS;
      const a = (1 - t) * (1 - t);
      const b = 2 * (1 - t) * t;
      const d = t * t;
      const cur: Point = [a * p0[0] + b * c[0] + d * p1[0], a * p0[1] + b * c[1] + d * p1[1]];
      segs.push(prev[0] * size, prev[1] * size, cur[0] * size, cur[1] * size);
      halfWidths.push(thick * s.width * size);
      prev = cur;
    }
  }
  rasterizeSegments(segs, halfWidths, size, out, offset);
}

/**
 * Anti-aliased coverage of line segments (pixel units: segment k from (segs[4k], segs[4k+1]) to
 * (segs[4k+2], segs[4k+3]), half-width halfWidths[k]) into size² floats of `out` at `offset`: each
 * pixel the largest coverage r + 0.5 − distance over the segments, clamped to [0, 1].
 * Each segment raises the pixels of its bounding box (grown by r + 1, beyond which its coverage
 * is negative); the maximum does not depend on the order, so this equals a per-pixel scan over all
 * segments bit for bit (float32 rounding is monotone) at a fraction of the distance evaluations.
 */
export function rasterizeSegments(segs: readonly number[], halfWidths: readonly number[], size: number, out: Float32Array, offset = 0): void {
  out.fill(0, offset, offset + size * size);
  const nSeg = halfWidths.length;
  for (let k = 0; k < nSeg; k++) {
    const r = halfWidths[k]!;
    const ax = segs[4 * k]!;
    const ay = segs[4 * k + 1]!;
    const bx = segs[4 * k + 2]!;
    const by = segs[4 * k + 3]!;
    // pixel centres col + 0.5 within [min − r − 1, max + r + 1]
    const c0 = Math.max(0, Math.ceil(Math.min(ax, bx) - r - 1.5));
    const c1 = Math.min(size - 1, Math.floor(Math.max(ax, bx) + r + 0.5));
    const r0 = Math.max(0, Math.ceil(Math.min(ay, by) - r - 1.5));
    const r1 = Math.min(size - 1, Math.floor(Math.max(ay, by) + r + 0.5));
    for (let row = r0; row <= r1; row++) {
      const py = row + 0.5;
      const base = offset + row * size;
      for (let col = c0; col <= c1; col++) {
        const cover = r + 0.5 - distToSegment(col + 0.5, py, ax, ay, bx, by);
        if (cover > out[base + col]!) out[base + col] = cover >= 1 ? 1 : cover;
      }
    }
  }
}

/** First global class index and class count of a split. */
export function splitRange(config: GlyphsConfig, split: Split): { first: number; count: number } {
  const { train, val, test } = config.classes;
  if (split === 'train') return { first: 0, count: train };
  if (split === 'val') return { first: train, count: val };
  return { first: train + val, count: test };
}

/**
 * One N-way K-shot Q-query task from `seed`: `ways` distinct classes of the split (their order is
 * the label order), then for each class K support and Q query samples. Examples are class-major.
 */
export function sampleGlyphTask(config: GlyphsConfig, seed: number, split: Split = 'train'): TaskData & { classes: number[] } {
  const { first, count } = splitRange(config, split);
  if (count < config.ways) throw new RangeError(`the ${split} split has ${count} glyph classes, fewer than ways = ${config.ways}`);
  const rng = new Rng(seed);
  // partial Fisher–Yates over the split's class indices (only the first `ways` positions move)
  const picked = new Map<number, number>();
  const classes: number[] = [];
  for (let i = 0; i < config.ways; i++) {
    const r = i + rng.int(count - i);
    const a = picked.get(i) ?? i;
    const b = picked.get(r) ?? r;
    picked.set(r, a);
    classes.push(first + b);
  }
  const s = config.imageSize;
  const pix = s * s;
  const make = (per: number): { x: Float32Array; y: Float32Array; n: number } => {
    const n = per * config.ways;
    return { x: new Float32Array(n * pix), y: new Float32Array(n * config.ways), n };
  };
  const support = make(config.shots);
  const query = make(config.queries);
  classes.forEach((cls, label) => {
    const strokes = glyphStrokes(cls, config.strokes);
    const sampleRng = new Rng(hashWords(seed, cls, label));
    for (let k = 0; k < config.shots + config.queries; k++) {
      const isSupport = k < config.shots;
      const set = isSupport ? support : query;
      const i = label * (isSupport ? config.shots : config.queries) + (isSupport ? k : k - config.shots);
      renderGlyph(strokes, s, config.jitter, sampleRng, set.x, i * pix);
      set.y[i * config.ways + label] = 1;
    }
  });
  return { support: support, query: query, classes };
}

export function glyphsConfig(spec: RunSpec): GlyphsConfig {
  const t = spec.task;
  if (t.family !== 'synthetic-glyphs') throw new UnsupportedError('task family', t.family, ['synthetic-glyphs']);
  return {
    ways: t.ways,
    shots: t.shots,
    queries: t.queries,
    imageSize: t.imageSize,
    classes: { ...t.classes },
    strokes: [t.strokes[0], t.strokes[1]],
    jitter: t.jitter,
  };
}

export function createGlyphs(spec: RunSpec): TaskFamily & { sample(seed: number, split?: Split): TaskData } {
  const config = glyphsConfig(spec);
  return {
    family: 'synthetic-glyphs',
    loss: 'xent',
    inputShape: [config.imageSize, config.imageSize, 1],
    outputs: config.ways,
    sample: (seed: number, split: Split = 'train') => sampleGlyphTask(config, seed, split),
  };
}

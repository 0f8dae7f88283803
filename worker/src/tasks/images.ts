/**
 * `fewshot-images`: N-way K-shot Q-query tasks from images on disk — a folder in any of the four
 * layouts of data/image-layouts.ts (decoded through sharp as tasks need them) or a packed file
 * (data/pack-format.ts: decoded once by `metaloop data pack`, so drawing a task decodes nothing).
 * Classes are sorted by name; layouts without their own splits are cut by count into meta-train /
 * meta-val / meta-test (fixed: independent of the run seed). With `rotations`, each class of a
 * split gives four (0°, 90°, 180°, 270°), Omniglot's augmentation. A pixel is scaled to [0, 1],
 * optionally inverted, then normalised per channel ((x − mean) / std). Tasks are drawn from the
 * task seed only; the same image gives the same floats from a folder or from its packed file.
 */
import { resolve } from 'node:path';
import { hashWords, Rng, type RunSpec } from '@metaloop/shared';
import { isPackedFile } from '../data/pack-format.js';
import { openImageSource, type ImageSource } from '../data/image-source.js';
import { DatasetError } from '../errors.js';
import { resolveDataPath } from '../data/data-dir.js';
import type { Split, TaskData, TaskFamily } from './types.js';

export type ImagesConfig = Extract<RunSpec['task'], { family: 'fewshot-images' }>;

/** Decoded folder images kept per family (packed files hold every image anyway). */
export const IMAGE_CACHE_BYTES = 512 * 1024 * 1024;

/** Draw `k` distinct integers of [0, n) (partial Fisher–Yates). */
function pick(rng: Rng, n: number, k: number): number[] {
  const moved = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const r = i + rng.int(n - i);
    const a = moved.get(i) ?? i;
    const b = moved.get(r) ?? r;
    moved.set(r, a);
    out.push(b);
  }
  return out;
}

/** One image of a task: which class (of the split) and image, its rotation, label and slot. */
interface Draw {
  readonly cls: number;
  readonly j: number;
  readonly quarters: number;
  readonly label: number;
  readonly support: boolean;
  readonly slot: number;
}

/** Float value of each uint8 per channel: /255, invert, normalise, rounded once to float32. */
function pixelTables(c: ImagesConfig): Float32Array[] {
  return Array.from({ length: c.channels }, (_, ch) => {
    const mean = c.normalize ? (c.normalize.mean[ch] ?? c.normalize.mean[0]!) : 0;
    const std = c.normalize ? (c.normalize.std[ch] ?? c.normalize.std[0]!) : 1;
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      const x = c.invert ? 1 - v / 255 : v / 255;
      t[v] = (x - mean) / std;
    }
    return t;
  });
}

export interface FewshotImagesFamily extends TaskFamily {
  readonly source: ImageSource;
  /** Decode (folder) what the tasks of these seeds need, before sample() draws them. */
  prepare(seeds: readonly number[], split?: Split): Promise<void>;
  sample(seed: number, split?: Split, into?: TaskData): TaskData & { classes: string[] };
}

export interface FewshotImagesOptions {
  /** Folder sources: the decoded-image budget in bytes (default IMAGE_CACHE_BYTES; 0 decodes every draw). */
  readonly cacheBytes?: number;
  /** Only check the spec against the dataset (a packed file's header is read, not its pixels): no task can be drawn. */
  readonly checkOnly?: boolean;
}

export function createFewshotImages(spec: RunSpec, options: FewshotImagesOptions = {}): FewshotImagesFamily {
  const t = spec.task;
  if (t.family !== 'fewshot-images') throw new DatasetError(`createFewshotImages needs task.family fewshot-images, got ${t.family}`, '');
  const config: ImagesConfig = t;
  const path = resolveDataPath(config.path);
  if (config.normalize && config.normalize.mean.length !== 1 && config.normalize.mean.length !== config.channels) {
    throw new DatasetError(`task.normalize has ${config.normalize.mean.length} values per list, the images have ${config.channels} channel(s): give 1 or ${config.channels}`, path);
  }
  const source = openImageSource({ ...config, path }, isPackedFile(path), options.cacheBytes ?? IMAGE_CACHE_BYTES, options.checkOnly === true);
  const need = config.shots + config.queries;
  const mult = config.rotations ? 4 : 1;
  for (const split of ['train', 'val', 'test'] as const) {
    const short = source.splits[split].filter((c) => c.count < need);
    if (short.length > 0) {
      const list = short.slice(0, 5).map((c) => `${c.name} (${c.count})`).join(', ');
      throw new DatasetError(
        `${short.length} class(es) of the ${split} split of ${source.path} have fewer than shots + queries = ${need} images: ${list}${short.length > 5 ? ', …' : ''}; add images, remove those classes, or lower task.shots/queries`,
        resolve(source.path, short[0]!.name),
      );
    }
  }
  if (source.splits.train.length * mult < config.ways) {
    throw new DatasetError(`the train split of ${source.path} has ${source.splits.train.length * mult} classes, fewer than ways = ${config.ways}`, source.path);
  }
  const s = config.imageSize;
  const C = config.channels;
  const pix = s * s * C;
  const tables = pixelTables(config);

  const plan = (seed: number, split: Split): { draws: Draw[]; names: string[] } => {
    const base = source.splits[split];
    const n = base.length * mult;
    if (n < config.ways) throw new DatasetError(`the ${split} split of ${source.path} has ${n} classes, fewer than ways = ${config.ways}`, source.path);
    const chosen = pick(new Rng(seed), n, config.ways);
    const draws: Draw[] = [];
    const names: string[] = [];
    chosen.forEach((id, label) => {
      const cls = Math.floor(id / mult);
      const quarters = id % mult;
      const name = base[cls]!.name;
      names.push(quarters ? `${name}@${quarters * 90}` : name);
      const images = pick(new Rng(hashWords(seed, id, label)), base[cls]!.count, need);
      images.forEach((j, k) => {
        const support = k < config.shots;
        draws.push({ cls, j, quarters, label, support, slot: label * (support ? config.shots : config.queries) + (support ? k : k - config.shots) });
      });
    });
    return { draws, names };
  };

  /**
   * Write image `px` (uint8 HWC) rotated by `quarters` counter-clockwise into `out` at `off`, each
   * byte through its channel's table. The unrotated case (every layout but Omniglot's) is one
   * sequential pass; it is what drawing a task from a packed file costs.
   */
  const t0 = tables[0]!;
  const t1 = tables[1] ?? t0;
  const t2 = tables[2] ?? t0;
  const put = (px: Uint8Array, quarters: number, out: Float32Array, off: number) => {
    if (quarters === 0) {
      // Locals, not closure slots: V8 keeps them in registers (about 4× faster here).
      const a = t0;
      const b = t1;
      const c = t2;
      const n = pix;
      if (C === 1) for (let i = 0; i < n; i++) out[off + i] = a[px[i]!]!;
      else {
        for (let i = 0; i < n; i += 3) {
          out[off + i] = a[px[i]!]!;
          out[off + i + 1] = b[px[i + 1]!]!;
          out[off + i + 2] = c[px[i + 2]!]!;
        }
      }
      return;
    }
    const last = s - 1;
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const t = quarters === 1 ? (last - x) * s + y : quarters === 2 ? (last - y) * s + (last - x) : x * s + (last - y);
        const src = (y * s + x) * C;
        const dst = off + t * C;
        for (let k = 0; k < C; k++) out[dst + k] = tables[k]![px[src + k]!]!;
      }
    }
  };

  return {
    family: 'fewshot-images',
    loss: 'xent',
    inputShape: [s, s, C],
    outputs: config.ways,
    source,
    prepare: (seeds, split = 'train') => source.prepare(seeds.flatMap((seed) => plan(seed, split).draws.map((d) => ({ split, cls: d.cls, j: d.j })))),
    sample(seed: number, split: Split = 'train', into?: TaskData) {
      const { draws, names } = plan(seed, split);
      const make = (per: number, old: TaskData['support'] | undefined) => {
        const m = per * config.ways;
        // Every x value is written below; y is zeroed, then one-hot.
        if (old && old.n === m && old.x.length === m * pix && old.y.length === m * config.ways) return { x: old.x, y: old.y.fill(0), n: m };
        return { x: new Float32Array(m * pix), y: new Float32Array(m * config.ways), n: m };
      };
      const support = make(config.shots, into?.support);
      const query = make(config.queries, into?.query);
      for (const d of draws) {
        const set = d.support ? support : query;
        put(source.pixels(split, d.cls, d.j), d.quarters, set.x, d.slot * pix);
        set.y[d.slot * config.ways + d.label] = 1;
      }
      return { support, query, classes: names };
    },
  };
}

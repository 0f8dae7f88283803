/**
 * `fewshot-images`: N-way K-shot Q-query tasks from an image folder, in either layout
 *   Omniglot:          root/alphabet/character/*.png   (a class is alphabet/character)
 *   one folder/class:  root/class/*.png                (mini-ImageNet style)
 * Classes are sorted by name and split by count into meta-train / meta-val / meta-test (fixed:
 * independent of the run seed). With `rotations`, each of a split's classes gives four classes (0°,
 * 90°, 180°, 270°), Omniglot's augmentation. Images are decoded with pngjs (PNG only), converted to
 * the task's channels, area-resampled to imageSize², scaled to [0, 1] (optionally inverted).
 * The folder index is built once per (root, config) and cached; decoded images are cached up to a
 * memory budget. Tasks are drawn from the task seed only.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { hashWords, Rng, type RunSpec } from '@metaloop/shared';
import { PNG } from 'pngjs';
import { DatasetError } from '../errors.js';
import type { Split, TaskData, TaskFamily } from './types.js';

export interface ImagesConfig {
  readonly path: string;
  readonly ways: number;
  readonly shots: number;
  readonly queries: number;
  readonly imageSize: number;
  readonly channels: 1 | 3;
  readonly rotations: boolean;
  readonly invert: boolean;
  readonly classes: { readonly train?: number | undefined; readonly val?: number | undefined };
}

export interface ImageClass {
  /** Relative class name: `alphabet/character` or `class`. */
  readonly name: string;
  /** Absolute paths of its PNG files, sorted. */
  readonly files: readonly string[];
}

export interface DatasetIndex {
  readonly root: string;
  readonly layout: 'omniglot' | 'flat';
  /** Every base class, sorted by name. */
  readonly classes: readonly ImageClass[];
  readonly splits: Readonly<Record<Split, readonly ImageClass[]>>;
}

const isPng = (f: string) => f.toLowerCase().endsWith('.png');
const isImage = (f: string) => /\.(png|jpe?g|bmp|gif|webp)$/i.test(f);

function listDir(dir: string): { dirs: string[]; files: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch (err) {
    throw new DatasetError(`cannot read dataset folder ${dir}: ${(err as Error).message}`, dir, { cause: err });
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const n of names.sort()) (statSync(join(dir, n)).isDirectory() ? dirs : files).push(n);
  return { dirs, files };
}

function classFrom(dir: string, name: string, files: string[]): ImageClass {
  const pngs = files.filter(isPng);
  if (pngs.length === 0 && files.some(isImage)) {
    throw new DatasetError(`class ${name} has images but no PNG files: only PNG is supported (convert them, e.g. with ImageMagick)`, dir);
  }
  return { name, files: pngs.map((f) => join(dir, f)) };
}

/** Scan a dataset folder: detect its layout and list its classes (no image is decoded). */
export function scanDataset(root: string): Pick<DatasetIndex, 'root' | 'layout' | 'classes'> {
  const abs = resolve(root);
  const top = listDir(abs);
  if (top.dirs.length === 0) throw new DatasetError(`dataset folder ${abs} has no sub-folders: expected root/class/*.png or root/alphabet/character/*.png`, abs);
  const first = listDir(join(abs, top.dirs[0]!));
  const layout = first.dirs.length > 0 ? 'omniglot' : 'flat';
  const classes: ImageClass[] = [];
  for (const d of top.dirs) {
    const dir = join(abs, d);
    const inner = listDir(dir);
    if (layout === 'flat') {
      if (inner.dirs.length > 0) throw new DatasetError(`mixed layouts: ${d} has sub-folders but ${top.dirs[0]} has none`, dir);
      classes.push(classFrom(dir, d, inner.files));
    } else {
      if (inner.dirs.length === 0) throw new DatasetError(`mixed layouts: ${d} has no character sub-folders but ${top.dirs[0]} has`, dir);
      for (const c of inner.dirs) {
        const cdir = join(dir, c);
        classes.push(classFrom(cdir, `${d}/${c}`, listDir(cdir).files));
      }
    }
  }
  return { root: abs, layout, classes };
}

/** Split counts: the config's, or 70% / 10% / rest. */
export function splitCounts(total: number, classes: ImagesConfig['classes']): Record<Split, number> {
  const train = classes.train ?? Math.round(total * 0.7);
  const val = classes.val ?? Math.round(total * 0.1);
  if (train + val > total) {
    throw new RangeError(`task.classes asks for ${train} train + ${val} val classes, but the folder has only ${total}`);
  }
  return { train, val, test: total - train - val };
}

const indexCache = new Map<string, DatasetIndex>();

/**
 * The dataset index for a config, built once and cached. Rejects, by name, every class with fewer
 * than shots + queries images, and splits too small for `ways` classes.
 */
export function datasetIndex(config: ImagesConfig): DatasetIndex {
  const key = JSON.stringify([resolve(config.path), config.shots + config.queries, config.classes, config.ways, config.rotations]);
  const hit = indexCache.get(key);
  if (hit) return hit;
  const scan = scanDataset(config.path);
  const need = config.shots + config.queries;
  const short = scan.classes.filter((c) => c.files.length < need);
  if (short.length > 0) {
    const list = short.slice(0, 5).map((c) => `${c.name} (${c.files.length})`).join(', ');
    throw new DatasetError(
      `${short.length} class(es) have fewer than shots + queries = ${need} images: ${list}${short.length > 5 ? ', …' : ''}`,
      join(scan.root, short[0]!.name),
    );
  }
  const counts = splitCounts(scan.classes.length, config.classes);
  const splits = {
    train: scan.classes.slice(0, counts.train),
    val: scan.classes.slice(counts.train, counts.train + counts.val),
    test: scan.classes.slice(counts.train + counts.val),
  };
  const mult = config.rotations ? 4 : 1;
  if (splits.train.length * mult < config.ways) {
    throw new DatasetError(`the train split has ${splits.train.length * mult} classes, fewer than ways = ${config.ways}`, scan.root);
  }
  const index: DatasetIndex = { ...scan, splits };
  indexCache.set(key, index);
  return index;
}

/** Area resampling of a [h, w, c] float image to [size, size, c]. */
export function resizeArea(src: Float32Array, h: number, w: number, c: number, size: number): Float32Array {
  if (h === size && w === size) return src;
  const out = new Float32Array(size * size * c);
  const sy = h / size;
  const sx = w / size;
  for (let oy = 0; oy < size; oy++) {
    const y0 = oy * sy;
    const y1 = y0 + sy;
    for (let ox = 0; ox < size; ox++) {
      const x0 = ox * sx;
      const x1 = x0 + sx;
      let wsum = 0;
      const acc = new Float64Array(c);
      for (let y = Math.floor(y0); y < Math.min(h, Math.ceil(y1)); y++) {
        const wy = Math.min(y + 1, y1) - Math.max(y, y0);
        for (let x = Math.floor(x0); x < Math.min(w, Math.ceil(x1)); x++) {
          const wgt = wy * (Math.min(x + 1, x1) - Math.max(x, x0));
          if (wgt <= 0) continue;
          wsum += wgt;
          for (let k = 0; k < c; k++) acc[k]! += wgt * src[(y * w + x) * c + k]!;
        }
      }
      for (let k = 0; k < c; k++) out[(oy * size + ox) * c + k] = acc[k]! / wsum;
    }
  }
  return out;
}

/** Rotate a [size, size, c] image by quarter turns (counter-clockwise). */
export function rotateQuarter(src: Float32Array, size: number, c: number, quarters: number): Float32Array {
  const q = ((quarters % 4) + 4) % 4;
  if (q === 0) return src;
  const out = new Float32Array(src.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const [ty, tx] = q === 1 ? [size - 1 - x, y] : q === 2 ? [size - 1 - y, size - 1 - x] : [x, size - 1 - y];
      for (let k = 0; k < c; k++) out[(ty * size + tx) * c + k] = src[(y * size + x) * c + k]!;
    }
  }
  return out;
}

/** Decode a PNG file to [imageSize, imageSize, channels] floats in [0, 1]; errors name the file. */
export function loadImage(file: string, config: Pick<ImagesConfig, 'imageSize' | 'channels' | 'invert'>): Float32Array {
  let png: PNG;
  try {
    png = PNG.sync.read(readFileSync(file));
  } catch (err) {
    throw new DatasetError(`cannot decode image ${file}: ${(err as Error).message}`, file, { cause: err });
  }
  const { width, height, data } = png;
  const c = config.channels;
  const px = new Float32Array(width * height * c);
  for (let i = 0; i < width * height; i++) {
    const a = data[4 * i + 3]! / 255;
    // composite over white (transparent background = paper)
    const ch = (k: number) => (a * data[4 * i + k]!) / 255 + (1 - a);
    if (c === 1) px[i] = 0.299 * ch(0) + 0.587 * ch(1) + 0.114 * ch(2);
    else for (let k = 0; k < 3; k++) px[3 * i + k] = ch(k);
  }
  const out = resizeArea(px, height, width, c, config.imageSize);
  if (config.invert) for (let i = 0; i < out.length; i++) out[i] = 1 - out[i]!;
  return out;
}

/** Decoded images by file, up to a byte budget (oldest first out). */
class ImageCache {
  private readonly map = new Map<string, Float32Array>();
  private bytes = 0;
  constructor(private readonly budget: number) {}
  get(file: string, load: () => Float32Array): Float32Array {
    const hit = this.map.get(file);
    if (hit) return hit;
    const img = load();
    this.map.set(file, img);
    this.bytes += img.byteLength;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(k);
      this.bytes -= v.byteLength;
    }
    return img;
  }
}

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

/**
 * One task from `seed`: `ways` distinct (class, rotation) pairs of the split (their order is the
 * label order), then K + Q distinct images of each; examples class-major.
 */
export function sampleImageTask(
  config: ImagesConfig,
  index: DatasetIndex,
  cache: ImageCache,
  seed: number,
  split: Split = 'train',
): TaskData & { classes: string[] } {
  const base = index.splits[split];
  const mult = config.rotations ? 4 : 1;
  const n = base.length * mult;
  if (n < config.ways) throw new DatasetError(`the ${split} split has ${n} classes, fewer than ways = ${config.ways}`, index.root);
  const rng = new Rng(seed);
  const chosen = pick(rng, n, config.ways);
  const s = config.imageSize;
  const pix = s * s * config.channels;
  const make = (per: number) => {
    const m = per * config.ways;
    return { x: new Float32Array(m * pix), y: new Float32Array(m * config.ways), n: m };
  };
  const support = make(config.shots);
  const query = make(config.queries);
  const names: string[] = [];
  chosen.forEach((id, label) => {
    const cls = base[Math.floor(id / mult)]!;
    const quarters = id % mult;
    names.push(quarters ? `${cls.name}@${quarters * 90}` : cls.name);
    const files = pick(new Rng(hashWords(seed, id, label)), cls.files.length, config.shots + config.queries);
    files.forEach((f, k) => {
      const file = cls.files[f]!;
      const img = rotateQuarter(cache.get(file, () => loadImage(file, config)), s, config.channels, quarters);
      const isSupport = k < config.shots;
      const set = isSupport ? support : query;
      const i = label * (isSupport ? config.shots : config.queries) + (isSupport ? k : k - config.shots);
      set.x.set(img, i * pix);
      set.y[i * config.ways + label] = 1;
    });
  });
  return { support: support, query: query, classes: names };
}

export function imagesConfig(spec: RunSpec): ImagesConfig {
  const t = spec.task;
  if (t.family !== 'fewshot-images') throw new Error(`createFewshotImages needs task.family fewshot-images, got ${t.family}`);
  return { ...t, classes: { ...t.classes } };
}

export function createFewshotImages(spec: RunSpec): TaskFamily & { sample(seed: number, split?: Split): TaskData; readonly index: DatasetIndex } {
  const config = imagesConfig(spec);
  const index = datasetIndex(config);
  const cache = new ImageCache(IMAGE_CACHE_BYTES);
  return {
    family: 'fewshot-images',
    loss: 'xent',
    inputShape: [config.imageSize, config.imageSize, config.channels],
    outputs: config.ways,
    index,
    sample: (seed: number, split: Split = 'train') => sampleImageTask(config, index, cache, seed, split),
  };
}

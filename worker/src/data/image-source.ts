/**
 * Where a fewshot-images family gets its pixels: an image folder (decoded on demand through
 * sharp, kept in a byte-budgeted cache) or a packed file (every image already decoded, in memory).
 * Both give each split's classes and, per image, its uint8 HWC pixels at the task's size: the
 * same bytes for the same image, so a task drawn from a folder equals the task drawn from its
 * packed file. A folder source decodes asynchronously: `prepare` decodes what a shard's tasks need
 * before they are drawn (synchronously) from the cache.
 */
import { readFileSync } from 'node:fs';
import type { ImageLayout } from '@metaloop/shared';
import { DatasetError } from '../errors.js';
import { bytesSha256 } from './content-hash.js';
import { decodeImage } from './decode.js';
import { scanImageFolder, type ImageClass, type ScannedImages, type Split } from './image-layouts.js';
import { readPackHeader, type PackSplitName } from './pack-format.js';
import { loadPacked, type PackedDataset, type PackedSplit } from './packed.js';

export interface SourceClass {
  readonly name: string;
  readonly count: number;
}

export interface ImageSource {
  readonly kind: 'folder' | 'packed';
  /** The folder or file, absolute. */
  readonly path: string;
  readonly layout: string;
  /** Classes of each split (layouts without their own splits: cut by the config's counts). */
  readonly splits: Readonly<Record<Split, readonly SourceClass[]>>;
  /** Pixels of image `j` of class `cls` of `split` (ready: packed, or after prepare). */
  pixels(split: Split, cls: number, j: number): Uint8Array;
  /** Make the listed images ready (folder: decode those not cached). */
  prepare(needs: readonly { split: Split; cls: number; j: number }[]): Promise<void>;
  /** Folder: check every image decoded from now on against these sha256 (the dataset's manifest). */
  verifyAgainst?(files: ReadonlyMap<string, string>, datasetSha: string): void;
}

export interface SourceConfig {
  readonly path: string;
  readonly layout: ImageLayout;
  readonly imageSize: number;
  readonly channels: 1 | 3;
  readonly classes: { readonly train?: number | undefined; readonly val?: number | undefined };
}

/** Split counts: the config's, or 70% / 10% / rest. */
export function splitCounts(total: number, classes: SourceConfig['classes'], where: string): Record<Split, number> {
  const train = classes.train ?? Math.round(total * 0.7);
  const val = classes.val ?? Math.round(total * 0.1);
  if (train + val > total) {
    throw new DatasetError(`task.classes asks for ${train} train + ${val} val classes, but ${where} has only ${total}: lower task.classes`, where);
  }
  return { train, val, test: total - train - val };
}

/**
 * The splits tasks are drawn from — train, and the one evaluation uses (`eval.split`) — must each
 * hold at least `ways` classes (`classes` already multiplied by rotations); refused before anything
 * is computed, naming the split and what to change.
 */
export function checkSplitWays(classes: Readonly<Record<Split, number>>, ways: number, evalSplit: 'val' | 'test', where: string, ownSplits: boolean): void {
  for (const split of ['train', evalSplit] as const) {
    const n = classes[split];
    if (n >= ways) continue;
    const use = split === 'train' ? 'meta-training' : `evaluation (eval.split: ${split})`;
    const fix = ownSplits
      ? `add classes to its ${split} split${split === 'train' ? '' : ', or evaluate on the other one'}`
      : `give it more with task.classes${split === 'train' ? '' : ', or evaluate on the other split'}`;
    throw new DatasetError(`the ${split} split of ${where} has ${n} classes, fewer than ways = ${ways}, and ${use} draws ${ways}-way tasks from it: ${fix}, or lower task.ways`, where);
  }
}

function cut<T>(all: readonly T[], c: SourceConfig, where: string): Record<Split, readonly T[]> {
  const n = splitCounts(all.length, c.classes, where);
  return { train: all.slice(0, n.train), val: all.slice(n.train, n.train + n.val), test: all.slice(n.train + n.val) };
}

function ownSplits<T>(s: Partial<Record<Split | 'all', readonly T[]>>, c: SourceConfig, where: string, layout: string): Record<Split, readonly T[]> {
  if (s.all) return cut(s.all, c, where);
  if (c.classes.train !== undefined || c.classes.val !== undefined) {
    throw new DatasetError(`${where} (layout ${layout}) brings its own train/val/test splits: remove task.classes from the spec`, where);
  }
  return { train: s.train ?? [], val: s.val ?? [], test: s.test ?? [] };
}

/** Decoded folder images by file, up to a byte budget (oldest out first, never those just prepared). */
class FolderSource implements ImageSource {
  readonly kind = 'folder' as const;
  readonly path: string;
  readonly layout: string;
  readonly splits: Record<Split, readonly (ImageClass & SourceClass)[]>;
  private readonly cache = new Map<string, Uint8Array>();
  private bytes = 0;
  private manifest: { files: ReadonlyMap<string, string>; sha: string } | undefined;

  constructor(
    scan: ScannedImages,
    private readonly c: SourceConfig,
    private readonly budget: number,
  ) {
    this.path = scan.root;
    this.layout = scan.layout;
    const counted: Partial<Record<Split | 'all', readonly (ImageClass & SourceClass)[]>> = {};
    for (const [k, v] of Object.entries(scan.splits)) counted[k as Split] = v.map((cls) => ({ ...cls, count: cls.files.length }));
    this.splits = ownSplits(counted, c, scan.root, scan.layout);
  }

  private file(split: Split, cls: number, j: number): string {
    const f = this.splits[split][cls]?.files[j];
    if (f === undefined) throw new DatasetError(`internal: no image ${j} of class ${cls} in the ${split} split`, this.path);
    return f;
  }

  pixels(split: Split, cls: number, j: number): Uint8Array {
    const f = this.file(split, cls, j);
    const px = this.cache.get(f);
    if (!px) throw new DatasetError(`internal: image ${f} was not prepared before the task was drawn`, f);
    return px;
  }

  verifyAgainst(files: ReadonlyMap<string, string>, sha: string): void {
    this.manifest = { files, sha };
  }

  async prepare(needs: readonly { split: Split; cls: number; j: number }[]): Promise<void> {
    const want = new Set(needs.map((n) => this.file(n.split, n.cls, n.j)));
    // Evict first (never what this shard needs), so nothing prepared is dropped before it is drawn.
    for (const [k, v] of this.cache) {
      if (this.bytes <= this.budget) break;
      if (want.has(k)) continue;
      this.cache.delete(k);
      this.bytes -= v.byteLength;
    }
    const missing = [...want].filter((f) => !this.cache.has(f));
    const CONC = 8;
    for (let i = 0; i < missing.length; i += CONC) {
      await Promise.all(missing.slice(i, i + CONC).map((f) => this.decode(f)));
    }
  }

  private async decode(file: string): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new DatasetError(`cannot read image ${file}: ${(err as Error).message}`, file, { cause: err });
    }
    if (this.manifest) {
      const want = this.manifest.files.get(file);
      const got = bytesSha256(bytes);
      if (want !== got) {
        throw new DatasetError(`image ${file} changed since the dataset was hashed (${this.manifest.sha}): its bytes hash to ${got}, the manifest says ${want ?? 'nothing'}`, file);
      }
    }
    const px = await decodeImage(bytes, file, { size: this.c.imageSize, channels: this.c.channels });
    if (!this.cache.has(file)) {
      this.cache.set(file, px);
      this.bytes += px.byteLength;
    }
  }
}

class PackedSource implements ImageSource {
  readonly kind = 'packed' as const;
  readonly path: string;
  readonly layout: string;
  readonly splits: Record<Split, readonly { name: string; count: number; first: number; pixels: Uint8Array }[]>;
  private readonly imageBytes: number;

  constructor(data: PackedDataset, c: SourceConfig) {
    const h = data.header;
    this.path = data.path;
    this.layout = `packed (${h.provenance.layout})`;
    if (h.image.size !== c.imageSize || h.image.channels !== c.channels) {
      throw new DatasetError(
        `packed file ${data.path} holds ${h.image.size}×${h.image.size}×${h.image.channels} images, the spec asks for ${c.imageSize}×${c.imageSize}×${c.channels}: set task.imageSize: ${h.image.size} and task.channels: ${h.image.channels}, or re-pack with --image-size ${c.imageSize} --channels ${c.channels}`,
        data.path,
      );
    }
    this.imageBytes = data.imageBytes;
    const withPixels = (s: keyof typeof data.splits) => {
      const sp = data.splits[s];
      return sp?.classes.map((k) => ({ ...k, pixels: sp.pixels })) ?? undefined;
    };
    const all = withPixels('all');
    const parts = all ? { all } : { train: withPixels('train') ?? [], val: withPixels('val') ?? [], test: withPixels('test') ?? [] };
    this.splits = ownSplits(parts, c, data.path, h.provenance.layout);
  }

  pixels(split: Split, cls: number, j: number): Uint8Array {
    const k = this.splits[split][cls]!;
    const at = (k.first + j) * this.imageBytes;
    return k.pixels.subarray(at, at + this.imageBytes);
  }

  prepare(): Promise<void> {
    return Promise.resolve();
  }
}

/** A packed file's header as a dataset without pixels (checking a spec against it reads no block). */
function headerView(path: string): PackedDataset {
  const header = readPackHeader(path);
  const splits: Partial<Record<PackSplitName, PackedSplit>> = {};
  for (const [name, sp] of Object.entries(header.splits)) {
    let first = 0;
    const classes = sp.classes.map((k) => ({ name: k.name, count: k.count, first: (first += k.count) - k.count }));
    splits[name as PackSplitName] = { classes, pixels: new Uint8Array(0) };
  }
  return { path, header, imageBytes: header.image.size ** 2 * header.image.channels, splits };
}

/**
 * The image source of a config: a packed file or a folder (`cacheBytes`: the folder's decoded-image
 * budget). `headerOnly`: a packed file's classes without its pixels, to check a spec (the CLI at submit).
 */
export function openImageSource(c: SourceConfig, packed: boolean, cacheBytes: number, headerOnly = false): ImageSource {
  if (packed) return new PackedSource(headerOnly ? headerView(c.path) : loadPacked(c.path), c);
  return new FolderSource(scanImageFolder(c.path, c.layout), c, cacheBytes);
}

export type { ImageClass };

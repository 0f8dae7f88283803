/**
 * The four folder layouts of an image dataset, scanned into classes of files (no image is read):
 *   omniglot  root/alphabet/character/*       a class is `alphabet/character`
 *   classes   root/class/*                    one folder per class
 *   splits    root/{train,val,test}/class/*   the dataset's own splits
 *   csv       root/{train,val,test}.csv (`filename,label`) + root/images/*   (Ravi & Larochelle)
 * `auto` picks csv when root/train.csv exists, splits when root/train/ exists, else omniglot or
 * classes by whether the first class folder has sub-folders. Classes are sorted by name, a
 * class's files by file name. Errors name the folder or file and what to do.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ImageLayout } from '@metaloop/shared';
import { DatasetError } from '../errors.js';

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export interface ImageClass {
  /** `class`, or `alphabet/character` in the omniglot layout. */
  readonly name: string;
  /** Absolute paths of its image files, sorted. */
  readonly files: readonly string[];
}

export type ScannedLayout = Exclude<ImageLayout, 'auto'>;

export interface ScannedImages {
  readonly root: string;
  readonly layout: ScannedLayout;
  /** Layouts with their own splits (splits, csv): each split's classes. Else every class in `all`. */
  readonly splits: Readonly<Partial<Record<Split | 'all', readonly ImageClass[]>>>;
}

const IMAGE_EXT = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|heif|bmp|ppm|pgm|pbm|jp2|jxl)$/i;
export const isImageFile = (f: string): boolean => IMAGE_EXT.test(f);

function listDir(dir: string): { dirs: string[]; files: string[] } {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such folder' : code === 'ENOTDIR' ? 'not a folder' : (err as Error).message;
    throw new DatasetError(`cannot read dataset folder ${dir}: ${why}`, dir, { cause: err });
  }
  const dirs: string[] = [];
  const files: string[] = [];
  for (const n of names.sort()) (statSync(join(dir, n)).isDirectory() ? dirs : files).push(n);
  return { dirs, files };
}

function classFrom(dir: string, name: string, files: readonly string[]): ImageClass {
  return { name, files: files.filter(isImageFile).map((f) => join(dir, f)) };
}

function scanClassFolders(root: string, layout: 'omniglot' | 'classes'): ImageClass[] {
  const top = listDir(root);
  const classes: ImageClass[] = [];
  for (const d of top.dirs) {
    const dir = join(root, d);
    const inner = listDir(dir);
    if (layout === 'classes') {
      if (inner.dirs.length > 0) throw new DatasetError(`mixed layouts: ${dir} has sub-folders but the classes layout has one folder of images per class (use layout: omniglot for root/alphabet/character/*)`, dir);
      classes.push(classFrom(dir, d, inner.files));
    } else {
      if (inner.dirs.length === 0) throw new DatasetError(`mixed layouts: ${dir} has no character sub-folders, but the omniglot layout is root/alphabet/character/*`, dir);
      for (const c of inner.dirs) {
        const cdir = join(dir, c);
        classes.push(classFrom(cdir, `${d}/${c}`, listDir(cdir).files));
      }
    }
  }
  return classes;
}

function requireSplit(root: string, split: Split, what: string): void {
  if (!existsSync(join(root, what))) {
    throw new DatasetError(`the dataset at ${root} has no ${split} split: ${join(root, what)} is missing (the ${what.endsWith('.csv') ? 'csv' : 'splits'} layout needs train, val and test)`, join(root, what));
  }
}

/** Parse one of Ravi & Larochelle's split files: a `filename,label` header, then one image per line. */
export function readSplitCsv(file: string, imagesDir: string): ImageClass[] {
  const text = readFileSync(file, 'utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const head = lines[0]?.split(',').map((s) => s.trim().toLowerCase());
  if (!head || head[0] !== 'filename' || head[1] !== 'label') {
    throw new DatasetError(`${file}: expected a header line "filename,label" (Ravi & Larochelle's split files), got ${JSON.stringify(lines[0] ?? '')}`, file);
  }
  const byLabel = new Map<string, string[]>();
  for (let i = 1; i < lines.length; i++) {
    const parts = lines[i]!.split(',').map((s) => s.trim());
    const [name, label] = parts;
    if (parts.length !== 2 || !name || !label) throw new DatasetError(`${file} line ${i + 1}: expected "filename,label", got ${JSON.stringify(lines[i])}`, file);
    const path = join(imagesDir, name);
    if (!existsSync(path)) {
      throw new DatasetError(`${file} line ${i + 1} names ${name}, but ${path} does not exist (an incomplete download? the images belong in ${imagesDir})`, path);
    }
    let list = byLabel.get(label);
    if (!list) byLabel.set(label, (list = []));
    list.push(path);
  }
  return [...byLabel.keys()].sort().map((label) => ({ name: label, files: byLabel.get(label)!.sort() }));
}

function detect(root: string): ScannedLayout {
  if (existsSync(join(root, 'train.csv'))) return 'csv';
  if (existsSync(join(root, 'train')) && statSync(join(root, 'train')).isDirectory()) return 'splits';
  const top = listDir(root);
  if (top.dirs.length === 0) {
    throw new DatasetError(
      `dataset folder ${root} has no sub-folders: expected root/class/*, root/alphabet/character/*, root/{train,val,test}/class/* or root/{train,val,test}.csv with root/images/`,
      root,
    );
  }
  return listDir(join(root, top.dirs[0]!)).dirs.length > 0 ? 'omniglot' : 'classes';
}

/** Scan an image dataset folder in `layout` (or the one detected). */
export function scanImageFolder(path: string, layout: ImageLayout = 'auto'): ScannedImages {
  const root = resolve(path);
  if (!existsSync(root)) throw new DatasetError(`dataset ${root} does not exist (check task.path, and the data directory relative paths are resolved against)`, root);
  const chosen = layout === 'auto' ? detect(root) : layout;
  if (chosen === 'csv') {
    const images = join(root, 'images');
    const splits: Partial<Record<Split, ImageClass[]>> = {};
    for (const s of SPLITS) {
      requireSplit(root, s, `${s}.csv`);
      splits[s] = readSplitCsv(join(root, `${s}.csv`), images);
    }
    return { root, layout: chosen, splits };
  }
  if (chosen === 'splits') {
    const splits: Partial<Record<Split, ImageClass[]>> = {};
    for (const s of SPLITS) {
      requireSplit(root, s, s);
      splits[s] = scanClassFolders(join(root, s), 'classes');
    }
    return { root, layout: chosen, splits };
  }
  return { root, layout: chosen, splits: { all: scanClassFolders(root, chosen) } };
}

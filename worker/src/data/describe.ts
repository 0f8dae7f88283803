/**
 * What a dataset path holds and its content hash (content-hash.ts), for `metaloop data info`, for
 * the CLI's hash at submit and for the worker's check: a packed file (its header), an image folder
 * (its layout's splits and classes, and the manifest hash), or another file (sha256 of its bytes).
 */
import { statSync } from 'node:fs';
import type { ImageLayout } from '@metaloop/shared';
import { DatasetError } from '../errors.js';
import { fileSha256, folderManifest, scanSplits, type FolderManifest } from './content-hash.js';
import { scanImageFolder } from './image-layouts.js';
import { isPackedFile, PACK_SPLIT_ORDER, readPackHeader, type PackHeader } from './pack-format.js';

export interface DatasetSplitInfo {
  readonly name: string;
  readonly classes: readonly { readonly name: string; readonly count: number }[];
}

export interface DatasetInfo {
  readonly kind: 'packed' | 'folder' | 'file';
  readonly path: string;
  readonly sha256: string;
  /** packed files and folders: the splits, classes and images per class. */
  readonly splits: readonly DatasetSplitInfo[];
  readonly layout?: string;
  /** packed files: the header. */
  readonly header?: PackHeader;
  /** folders: the manifest (each image's sha256). */
  readonly manifest?: FolderManifest;
}

/** Describe (and hash) the dataset at `path`; folders are scanned in `layout`. */
export function describeDataset(path: string, layout: ImageLayout = 'auto'): DatasetInfo {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(`dataset ${path} ${code === 'ENOENT' ? 'does not exist' : `cannot be read: ${(err as Error).message}`}`, path, { cause: err });
  }
  if (st.isDirectory()) {
    const scan = scanImageFolder(path, layout);
    const m = folderManifest(scan);
    return {
      kind: 'folder',
      path: scan.root,
      sha256: m.sha256,
      manifest: m,
      layout: scan.layout,
      splits: scanSplits(scan).map(([name, classes]) => ({ name, classes: classes.map((c) => ({ name: c.name, count: c.files.length })) })),
    };
  }
  if (isPackedFile(path)) {
    const header = readPackHeader(path);
    const splits = PACK_SPLIT_ORDER.flatMap((name) => {
      const sp = header.splits[name];
      return sp ? [{ name, classes: sp.classes }] : [];
    });
    return { kind: 'packed', path, sha256: header.sha256, layout: header.provenance.layout, header, splits };
  }
  return { kind: 'file', path, sha256: fileSha256(path), splits: [] };
}

/**
 * Content hashes of datasets, the identity every worker's copy is checked against (docs/data.md):
 *   a file (JSONL, FewRel JSON, GloVe vectors)  sha256 of its bytes
 *   a packed file (.mlpack)                      the sha256 in its header (of its content; checked
 *                                                against the bytes when the file is loaded)
 *   an image folder                              sha256 of its manifest: one line per image,
 *                                                `split \t class \t relative path \t sha256(bytes)`,
 *                                                in split, class and file order, after a line naming
 *                                                the layout
 * Hashes of files are cached per (path, size, mtime, inode), so a file is read again only when it
 * changed: checking a dataset per shard costs a stat.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { relative } from 'node:path';
import { DatasetError } from '../errors.js';
import type { ImageClass, ScannedImages } from './image-layouts.js';

const CHUNK = 8 << 20;

interface Cached {
  readonly key: string;
  readonly sha256: string;
}

const fileHashes = new Map<string, Cached>();

export const statKey = (st: Stats): string => `${st.size}:${st.mtimeMs}:${st.ino}`;

function statOf(path: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(`${path}: ${code === 'ENOENT' ? 'no such file or folder' : (err as Error).message}`, path, { cause: err });
  }
}

/** sha256 (hex) of a file's bytes, recomputed only when its size, mtime or inode changed. */
export function fileSha256(path: string): string {
  const st = statOf(path);
  const key = statKey(st);
  const hit = fileHashes.get(path);
  if (hit && hit.key === key) return hit.sha256;
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(1, st.size)));
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  const sha256 = hash.digest('hex');
  fileHashes.set(path, { key, sha256 });
  return sha256;
}

/** sha256 of bytes already in memory (a file read once, checked against its manifest entry). */
export const bytesSha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

export interface FolderManifest {
  readonly sha256: string;
  /** sha256 of each image file, by absolute path. */
  readonly files: ReadonlyMap<string, string>;
}

/** The manifest hash, built line by line (the same bytes whoever builds it: hash check or pack). */
export function manifestHasher(scan: Pick<ScannedImages, 'root' | 'layout'>): { add(split: string, cls: string, file: string, sha256: string): void; digest(): string } {
  const hash = createHash('sha256');
  hash.update(`metaloop-folder-v1\nlayout ${scan.layout}\n`);
  return {
    add: (split, cls, file, sha) => hash.update(`${split}\t${cls}\t${relative(scan.root, file)}\t${sha}\n`),
    digest: () => hash.digest('hex'),
  };
}

/** The splits of a scan in manifest order. */
export function scanSplits(scan: ScannedImages): [string, readonly ImageClass[]][] {
  return (['all', 'train', 'val', 'test'] as const).flatMap((s) => (scan.splits[s] ? [[s, scan.splits[s]] as [string, readonly ImageClass[]]] : []));
}

/** The manifest hash of a scanned image folder (each file hashed once, then cached by stat). */
export function folderManifest(scan: ScannedImages): FolderManifest {
  const m = manifestHasher(scan);
  const files = new Map<string, string>();
  for (const [split, classes] of scanSplits(scan)) {
    for (const cls of classes) {
      for (const f of cls.files) {
        const sha = fileSha256(f);
        files.set(f, sha);
        m.add(split, cls.name, f, sha);
      }
    }
  }
  return { sha256: m.digest(), files };
}

/**
 * Reading a packed dataset (pack-format.ts): the header, then every split's block read once into
 * memory, the content hash recomputed over the bytes as they are read (a file whose bytes do not
 * match its header's hash is refused, naming both). Loaded files are cached per (path, size,
 * mtime, inode): runs on the same file share one copy, and a replaced file is read again.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { DatasetError } from '../errors.js';
import { statKey } from './content-hash.js';
import { contentDescriptor, PACK_SPLIT_ORDER, readPackBytes, readPackHeader, type PackHeader, type PackSplitName } from './pack-format.js';

export interface PackedSplit {
  readonly classes: readonly { readonly name: string; readonly count: number; readonly first: number }[];
  /** Every image of the split, back to back (uint8 HWC). */
  readonly pixels: Uint8Array;
}

export interface PackedDataset {
  readonly path: string;
  readonly header: PackHeader;
  /** Bytes of one image. */
  readonly imageBytes: number;
  readonly splits: Readonly<Partial<Record<PackSplitName, PackedSplit>>>;
}

const READ_CHUNK = 64 << 20;
const loaded = new Map<string, { key: string; data: PackedDataset }>();

function load(path: string, fd: number): PackedDataset {
  const header = readPackHeader(path, fd);
  const hash = createHash('sha256');
  hash.update(`metaloop-pack-v1\n${contentDescriptor(header)}\n`);
  const imageBytes = header.image.size * header.image.size * header.image.channels;
  const splits: Partial<Record<PackSplitName, PackedSplit>> = {};
  for (const name of PACK_SPLIT_ORDER) {
    const sp = header.splits[name];
    if (!sp) continue;
    const pixels = new Uint8Array(sp.bytes);
    for (let at = 0; at < sp.bytes; at += READ_CHUNK) {
      const part = readPackBytes(fd, Math.min(READ_CHUNK, sp.bytes - at), sp.offset + at, path, `${name} block`);
      pixels.set(part, at);
      hash.update(part);
    }
    let first = 0;
    const classes = sp.classes.map((c) => {
      const out = { name: c.name, count: c.count, first };
      first += c.count;
      return out;
    });
    splits[name] = { classes, pixels };
  }
  const sha = hash.digest('hex');
  if (sha !== header.sha256) {
    throw new DatasetError(
      `packed file ${path} is corrupt: its content hashes to ${sha}, but its header says ${header.sha256} (copy it again, or re-pack it)`,
      path,
    );
  }
  return { path, header, imageBytes, splits };
}

/** The packed dataset at `path`, loaded (and its content hash checked) once per file version. */
export function loadPacked(path: string): PackedDataset {
  const abs = resolve(path);
  let fd: number;
  try {
    fd = openSync(abs, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(`cannot open packed file ${abs}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, abs, { cause: err });
  }
  try {
    const key = statKey(fstatSync(fd));
    const hit = loaded.get(abs);
    if (hit && hit.key === key) return hit.data;
    const data = load(abs, fd);
    loaded.set(abs, { key, data });
    return data;
  } finally {
    closeSync(fd);
  }
}

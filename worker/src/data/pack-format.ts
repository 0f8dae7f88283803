/**
 * The packed dataset file (`.mlpack`, format version 1; docs/data.md is the reference):
 *
 *   offset 0   8 bytes   magic "MLPACK\0\0"
 *          8   uint32 LE format version (1)
 *         12   uint32 LE header length H
 *         16   H bytes   header: UTF-8 JSON (PackHeader)
 *          …   zero padding to the first block
 *   block k    at header.splits[s].offset (a multiple of 4096), header.splits[s].bytes long:
 *              the split's images, uint8 HWC (size × size × channels each), class after class in
 *              header order, each class's images in file-name order
 *
 * `sha256` (in the header) is the content hash: sha256 of "metaloop-pack-v1\n", the canonical
 * JSON of the content descriptor (kind, image shape, preprocessing, splits with their classes,
 * counts, offsets and sizes — not the provenance, so two packs of the same data agree), "\n", then
 * every block in file order. Readers recompute it over the bytes they load.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { DatasetError } from '../errors.js';

export const PACK_MAGIC = Buffer.from('MLPACK\0\0', 'latin1');
export const PACK_VERSION = 1;
export const PACK_PREAMBLE_BYTES = 16;
export const PACK_BLOCK_ALIGN = 4096;
export const PACK_EXTENSION = '.mlpack';
export const PLACEHOLDER_SHA = '0'.repeat(64);

export type PackSplitName = 'all' | 'train' | 'val' | 'test';
export const PACK_SPLIT_ORDER: readonly PackSplitName[] = ['all', 'train', 'val', 'test'];

export interface PackClass {
  readonly name: string;
  readonly count: number;
}

export interface PackSplit {
  /** Byte offset of the split's block (a multiple of PACK_BLOCK_ALIGN). */
  readonly offset: number;
  readonly bytes: number;
  readonly images: number;
  readonly classes: readonly PackClass[];
}

export interface PackImage {
  readonly size: number;
  readonly channels: 1 | 3;
  readonly dtype: 'uint8';
  readonly order: 'HWC';
}

export interface PackHeader {
  readonly format: 'metaloop-pack';
  readonly version: number;
  readonly kind: 'images';
  readonly image: PackImage;
  /** What was applied to every image before it was stored. */
  readonly preprocessing: { readonly pipeline: string; readonly fit: 'fill'; readonly kernel: 'lanczos3'; readonly colour: 'b-w' | 'srgb' };
  /** `all` (layouts without their own splits: the spec's task.classes splits it) or train/val/test. */
  readonly splits: Readonly<Partial<Record<PackSplitName, PackSplit>>>;
  /** Where it came from: not part of the content hash. */
  readonly provenance: { readonly source: string; readonly layout: string; readonly sourceSha256: string; readonly packedAt: string; readonly sharp: string; readonly vips: string };
  readonly sha256: string;
}

/** The part of the header the content hash covers, as canonical JSON (fixed key order). */
export function contentDescriptor(h: Omit<PackHeader, 'sha256' | 'provenance'>): string {
  const splits: Record<string, unknown> = {};
  for (const s of PACK_SPLIT_ORDER) {
    const sp = h.splits[s];
    if (sp) splits[s] = { offset: sp.offset, bytes: sp.bytes, images: sp.images, classes: sp.classes.map((c) => [c.name, c.count]) };
  }
  return JSON.stringify({
    format: h.format,
    version: h.version,
    kind: h.kind,
    image: { size: h.image.size, channels: h.image.channels, dtype: h.image.dtype, order: h.image.order },
    preprocessing: { pipeline: h.preprocessing.pipeline, fit: h.preprocessing.fit, kernel: h.preprocessing.kernel, colour: h.preprocessing.colour },
    splits,
  });
}

export const alignUp = (n: number, a = PACK_BLOCK_ALIGN): number => Math.ceil(n / a) * a;

/** The preamble + header bytes of `h` (its length does not depend on the sha256's value). */
export function encodePreamble(h: PackHeader): Buffer {
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const out = Buffer.alloc(PACK_PREAMBLE_BYTES + json.length);
  PACK_MAGIC.copy(out, 0);
  out.writeUInt32LE(h.version, 8);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, PACK_PREAMBLE_BYTES);
  return out;
}

function readExactly(fd: number, length: number, position: number, path: string, what: string): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new DatasetError(`packed file ${path} is truncated: its ${what} ends at byte ${position + got} of ${position + length} (copy it again)`, path);
    got += n;
  }
  return buf;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkHeader(v: unknown, path: string): PackHeader {
  const bad = (what: string): never => {
    throw new DatasetError(`packed file ${path} has a malformed header (${what}): re-pack it with \`metaloop data pack\``, path);
  };
  if (!isObj(v) || v.format !== 'metaloop-pack') return bad('not a metaloop-pack header');
  if (v.kind !== 'images') return bad(`kind ${JSON.stringify(v.kind)}`);
  const img = v.image;
  if (!isObj(img) || !Number.isInteger(img.size) || (img.channels !== 1 && img.channels !== 3) || img.dtype !== 'uint8') return bad('image');
  if (typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) return bad('sha256');
  if (!isObj(v.splits) || !isObj(v.preprocessing) || !isObj(v.provenance)) return bad('splits, preprocessing or provenance');
  const per = (img.size as number) ** 2 * (img.channels as number);
  for (const [name, sp] of Object.entries(v.splits)) {
    if (!PACK_SPLIT_ORDER.includes(name as PackSplitName)) return bad(`split ${name}`);
    if (!isObj(sp) || !Array.isArray(sp.classes) || !Number.isInteger(sp.offset) || (sp.offset as number) % PACK_BLOCK_ALIGN !== 0) return bad(`split ${name}`);
    let images = 0;
    for (const c of sp.classes as unknown[]) {
      if (!isObj(c) || typeof c.name !== 'string' || !Number.isInteger(c.count) || (c.count as number) < 0) return bad(`a class of split ${name}`);
      images += c.count as number;
    }
    if (images !== sp.images || images * per !== sp.bytes) return bad(`split ${name}: counts and size disagree`);
  }
  return v as unknown as PackHeader;
}

/** Whether the file at `path` starts with the packed-file magic (false for folders and other files). */
export function isPackedFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(PACK_MAGIC.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(PACK_MAGIC);
  } catch {
    return false; // a folder (EISDIR)
  } finally {
    closeSync(fd);
  }
}

/** Read and check a packed file's header (no block is read). Refuses other format versions. */
export function readPackHeader(path: string, fd?: number): PackHeader {
  const own = fd === undefined;
  let handle: number;
  try {
    handle = fd ?? openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(`cannot open packed file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, path, { cause: err });
  }
  try {
    const pre = readExactly(handle, PACK_PREAMBLE_BYTES, 0, path, 'preamble');
    if (!pre.subarray(0, 8).equals(PACK_MAGIC)) throw new DatasetError(`${path} is not a packed dataset (no MLPACK magic): make one with \`metaloop data pack\``, path);
    const version = pre.readUInt32LE(8);
    if (version !== PACK_VERSION) {
      throw new DatasetError(`packed file ${path} has format version ${version}, but this Metaloop reads version ${PACK_VERSION}: re-pack it with \`metaloop data pack\` of this version`, path);
    }
    const length = pre.readUInt32LE(12);
    let json: unknown;
    try {
      json = JSON.parse(readExactly(handle, length, PACK_PREAMBLE_BYTES, path, 'header').toString('utf8'));
    } catch (err) {
      if (err instanceof DatasetError) throw err;
      throw new DatasetError(`packed file ${path} has a header that is not JSON: re-pack it`, path, { cause: err });
    }
    const header = checkHeader(json, path);
    if (header.version !== version) throw new DatasetError(`packed file ${path}: header version ${header.version} differs from the preamble's ${version}: re-pack it`, path);
    return header;
  } finally {
    if (own) closeSync(handle);
  }
}

export { readExactly as readPackBytes };

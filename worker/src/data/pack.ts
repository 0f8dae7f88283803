/**
 * Packing an image dataset: every image of a folder (any layout) decoded and resized once
 * (decode.ts) and written into one packed file (pack-format.ts), so drawing a task later decodes
 * nothing. Writes to `<out>.tmp-<pid>` and renames when complete: a failed pack leaves no file.
 * Classes too small to be used are refused before anything is decoded.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ImageLayout } from '@metaloop/shared';
import { DatasetError } from '../errors.js';
import { bytesSha256, manifestHasher, scanSplits } from './content-hash.js';
import { DECODE_PIPELINE, decodeImage, decoderVersions } from './decode.js';
import { scanImageFolder } from './image-layouts.js';
import {
  alignUp,
  contentDescriptor,
  encodePreamble,
  PACK_PREAMBLE_BYTES,
  PACK_VERSION,
  PLACEHOLDER_SHA,
  type PackHeader,
  type PackSplit,
  type PackSplitName,
} from './pack-format.js';

export interface PackOptions {
  /** The dataset folder. */
  readonly source: string;
  readonly layout?: ImageLayout;
  readonly imageSize: number;
  readonly channels: 1 | 3;
  readonly out: string;
  /** Refuse classes with fewer images than this (e.g. shots + queries); default 1. */
  readonly minImages?: number;
  /** Images decoded at once (libvips threads work within each); default 4. */
  readonly concurrency?: number;
  /** Called after each image with (done, total). */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface PackResult {
  readonly header: PackHeader;
  readonly path: string;
  readonly bytes: number;
}

/** Decode, resize and write every image of `o.source` into the packed file `o.out`. */
export async function packImages(o: PackOptions): Promise<PackResult> {
  const scan = scanImageFolder(o.source, o.layout ?? 'auto');
  const need = o.minImages ?? 1;
  const splitList = scanSplits(scan);
  for (const [split, classes] of splitList) {
    if (classes.length === 0) throw new DatasetError(`the ${split === 'all' ? '' : `${split} split of the `}dataset at ${scan.root} has no classes`, scan.root);
    const short = classes.find((c) => c.files.length < need);
    if (short) throw new DatasetError(`class ${short.name}${split === 'all' ? '' : ` (${split})`} has ${short.files.length} image(s), fewer than ${need}: add images or remove the class`, scan.root);
  }
  const per = o.imageSize * o.imageSize * o.channels;
  let offset = alignUp(PACK_PREAMBLE_BYTES + 16_384); // room for the header; grown below if needed
  const splits: Partial<Record<PackSplitName, PackSplit>> = {};
  const place = (start: number) => {
    let at = start;
    for (const [name, classes] of splitList) {
      const images = classes.reduce((a, c) => a + c.files.length, 0);
      splits[name as PackSplitName] = { offset: at, bytes: images * per, images, classes: classes.map((c) => ({ name: c.name, count: c.files.length })) };
      at = alignUp(at + images * per);
    }
  };
  const versions = decoderVersions();
  const header = (sha256: string, sourceSha256: string): PackHeader => ({
    format: 'metaloop-pack',
    version: PACK_VERSION,
    kind: 'images',
    image: { size: o.imageSize, channels: o.channels, dtype: 'uint8', order: 'HWC' },
    preprocessing: { pipeline: DECODE_PIPELINE, fit: 'fill', kernel: 'lanczos3', colour: o.channels === 1 ? 'b-w' : 'srgb' },
    splits,
    provenance: { source: scan.root, layout: scan.layout, sourceSha256, packedAt: new Date().toISOString(), sharp: versions.sharp, vips: versions.vips },
    sha256,
  });
  place(offset);
  // The header's size depends on the offsets only through their digits: place until it fits.
  for (;;) {
    const need = encodePreamble(header(PLACEHOLDER_SHA, PLACEHOLDER_SHA)).length + 64; // + packedAt's length drift
    if (need <= offset) break;
    offset = alignUp(need);
    place(offset);
  }
  const out = resolve(o.out);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    const draft = header(PLACEHOLDER_SHA, PLACEHOLDER_SHA);
    const content = createHash('sha256');
    content.update(`metaloop-pack-v1\n${contentDescriptor(draft)}\n`);
    const manifest = manifestHasher(scan);
    const total = splitList.reduce((a, [, cs]) => a + cs.reduce((b, c) => b + c.files.length, 0), 0);
    const conc = Math.max(1, o.concurrency ?? 4);
    let done = 0;
    for (const [name, classes] of splitList) {
      const jobs = classes.flatMap((c) => c.files.map((f) => ({ cls: c.name, file: f })));
      let at = splits[name as PackSplitName]!.offset;
      for (let i = 0; i < jobs.length; i += conc) {
        const batch = jobs.slice(i, i + conc);
        const decoded = await Promise.all(
          batch.map(async (j) => {
            let bytes: Buffer;
            try {
              bytes = readFileSync(j.file);
            } catch (err) {
              throw new DatasetError(`cannot read image ${j.file}: ${(err as Error).message}`, j.file, { cause: err });
            }
            return { sha: bytesSha256(bytes), pixels: await decodeImage(bytes, j.file, { size: o.imageSize, channels: o.channels }) };
          }),
        );
        decoded.forEach((d, k) => {
          manifest.add(name, batch[k]!.cls, batch[k]!.file, d.sha);
          content.update(d.pixels);
          writeSync(fd, d.pixels, 0, d.pixels.length, at);
          at += d.pixels.length;
        });
        done += batch.length;
        o.onProgress?.(done, total);
      }
    }
    const final = header(content.digest('hex'), manifest.digest());
    const pre = encodePreamble(final);
    if (pre.length > Object.values(splits)[0]!.offset) throw new DatasetError(`internal: the packed header (${pre.length} bytes) outgrew its room`, out);
    writeSync(fd, pre, 0, pre.length, 0);
    closeSync(fd);
    renameSync(tmp, out);
    const last = Object.values(splits).at(-1)!;
    return { header: final, path: out, bytes: last.offset + last.bytes };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}

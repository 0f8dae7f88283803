/**
 * Image decoding through sharp (libvips): JPEG, PNG, WebP, TIFF, GIF, AVIF… whatever the prebuilt
 * libvips reads. Transparent pixels are composited over white (paper), the image is resized to
 * size × size with antialiasing (libvips' Lanczos-3 reduce; aspect ratio not kept, as the
 * few-shot loaders do), converted to grey (1 channel) or sRGB (3), and returned as uint8 HWC.
 * These bytes are what a packed file stores and what tasks are made of, folder or packed.
 */
import sharp from 'sharp';
import { DatasetError } from '../errors.js';

// Every file is decoded once per draw or pack: libvips' operation cache would only hold memory.
sharp.cache(false);

export interface DecodeOptions {
  readonly size: number;
  readonly channels: 1 | 3;
}

/** What packed files record as the preprocessing applied (decoder versions are recorded apart). */
export const DECODE_PIPELINE = 'flatten over white, resize fill lanczos3, then grey (b-w) or sRGB; uint8 HWC';

/** libvips and sharp versions, for packed files' provenance. */
export function decoderVersions(): { sharp: string; vips: string } {
  const v = sharp.versions as { sharp?: string; vips: string };
  return { sharp: v.sharp ?? 'unknown', vips: v.vips };
}

/** Decode `bytes` (the content of `file`, named in errors) to [size, size, channels] uint8. */
export async function decodeImage(bytes: Uint8Array, file: string, o: DecodeOptions): Promise<Uint8Array> {
  let out: { data: Buffer; info: sharp.OutputInfo };
  try {
    let img = sharp(bytes, { failOn: 'error', limitInputPixels: 1 << 28 })
      .flatten({ background: '#ffffff' })
      .resize(o.size, o.size, { fit: 'fill', kernel: 'lanczos3' });
    img = o.channels === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
    out = await img.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new DatasetError(
      `cannot decode image ${file}: ${(err as Error).message.split('\n')[0]} (a corrupt or truncated file? re-download it or remove it from the dataset)`,
      file,
      { cause: err },
    );
  }
  const { width, height, channels } = out.info;
  if (width !== o.size || height !== o.size || channels !== o.channels) {
    throw new DatasetError(`decoding ${file} gave ${width}×${height}×${channels}, expected ${o.size}×${o.size}×${o.channels}`, file);
  }
  return new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
}

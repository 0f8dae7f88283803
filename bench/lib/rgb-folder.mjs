/**
 * A throwaway image folder for `fewshot-images` at mini-ImageNet's shape (one folder per class of
 * RGB PNGs), so the compute suite can time 84×84×3 tasks without a download: each class a fixed
 * colour pattern plus per-image noise, from a fixed seed (the same bytes every run). Written with
 * pngjs, the worker's own PNG library; the caller removes the folder.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './machine.mjs';

/** Writes `classes` × `images` PNGs of size² pixels; returns the folder. */
export function writeRgbFolder({ classes, images, size }) {
  const { PNG } = createRequire(join(ROOT, 'worker', 'package.json'))('pngjs');
  const root = mkdtempSync(join(tmpdir(), 'metaloop-bench-rgb-'));
  let s = 0x2545f491;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let c = 0; c < classes; c++) {
    const dir = join(root, `class${String(c).padStart(3, '0')}`);
    mkdirSync(dir);
    const [fr, fg, fb] = [1 + (c % 5), 1 + ((c * 3) % 7), 1 + ((c * 7) % 11)];
    for (let i = 0; i < images; i++) {
      const png = new PNG({ width: size, height: size });
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const o = (y * size + x) * 4;
          const noise = () => 64 * rand();
          png.data[o] = Math.min(255, 96 + 80 * Math.sin((fr * x) / size) + noise());
          png.data[o + 1] = Math.min(255, 96 + 80 * Math.cos((fg * y) / size) + noise());
          png.data[o + 2] = Math.min(255, 96 + 80 * Math.sin((fb * (x + y)) / size) + noise());
          png.data[o + 3] = 255;
        }
      }
      writeFileSync(join(dir, `${String(i).padStart(3, '0')}.png`), PNG.sync.write(png));
    }
  }
  return root;
}

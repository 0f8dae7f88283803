/**
 * Dataset fixtures the data tests write themselves, in a temp folder: JPEG/PNG images (encoded by
 * sharp from class-specific patterns) in each folder layout, a FewRel-format JSON and a JSONL of
 * labelled texts. Images differ by class (hue, stripes) and by index (offset), so a task's pixels
 * say which class and image they came from.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';

export type FixtureLayout = 'omniglot' | 'classes' | 'splits' | 'csv';

export interface ImageFixtureOptions {
  readonly layout: FixtureLayout;
  /** Classes (per split for splits/csv; per alphabet × 2 alphabets for omniglot). */
  readonly classes: number;
  readonly perClass: number;
  readonly format?: 'jpeg' | 'png';
  /** Width × height of the written images (default 40 × 30: not square, so resizing matters). */
  readonly width?: number;
  readonly height?: number;
  /** Salt mixed into every pixel: two fixtures with different salts differ in content. */
  readonly salt?: number;
}

/** A temp folder, removed by removeFixtures(). */
const made: string[] = [];
export function fixtureDir(prefix = 'metaloop-data-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}
export function removeFixtures(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The bytes of one fixture image of class `c`, image `i`. */
export async function fixtureImage(c: number, i: number, o: Pick<ImageFixtureOptions, 'format' | 'width' | 'height' | 'salt'> = {}): Promise<Buffer> {
  const w = o.width ?? 40;
  const h = o.height ?? 30;
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const stripe = Math.floor((x + i) / (2 + (c % 4))) % 2;
      const at = 3 * (y * w + x);
      raw[at] = (40 * c + 90 * stripe + (o.salt ?? 0)) % 256;
      raw[at + 1] = (7 * y + 13 * i) % 256;
      raw[at + 2] = (200 - 30 * c + 3 * x) % 256;
    }
  }
  const img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  return (o.format ?? 'jpeg') === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

/** Writes an image dataset in `o.layout` under a new temp folder; returns its root. */
export async function writeImageFixture(o: ImageFixtureOptions, root = fixtureDir()): Promise<string> {
  const ext = (o.format ?? 'jpeg') === 'png' ? 'png' : 'jpg';
  const write = async (dir: string, c: number, i: number, name = `${String(i).padStart(3, '0')}.${ext}`) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, name), await fixtureImage(c, i, o));
  };
  if (o.layout === 'classes' || o.layout === 'omniglot') {
    for (let c = 0; c < o.classes * (o.layout === 'omniglot' ? 2 : 1); c++) {
      const dir = o.layout === 'omniglot' ? join(root, `alphabet${Math.floor(c / o.classes)}`, `character${c % o.classes}`) : join(root, `class${String(c).padStart(2, '0')}`);
      for (let i = 0; i < o.perClass; i++) await write(dir, c, i);
    }
    return root;
  }
  const splits = ['train', 'val', 'test'];
  for (const [s, split] of splits.entries()) {
    const lines = ['filename,label'];
    for (let k = 0; k < o.classes; k++) {
      const c = s * o.classes + k;
      const label = `n${String(c).padStart(8, '0')}`;
      for (let i = 0; i < o.perClass; i++) {
        if (o.layout === 'splits') await write(join(root, split, label), c, i);
        else {
          const name = `${label}${String(i).padStart(8, '0')}.${ext}`;
          await write(join(root, 'images'), c, i, name);
          lines.push(`${name},${label}`);
        }
      }
    }
    if (o.layout === 'csv') writeFileSync(join(root, `${split}.csv`), lines.join('\n') + '\n');
  }
  return root;
}

/** A FewRel-format JSON (relation → instances of tokens with head/tail spans). */
export function writeFewRelFixture(relations: number, perRelation: number, dir = fixtureDir()): string {
  const data: Record<string, unknown[]> = {};
  for (let r = 0; r < relations; r++) {
    data[`P${100 + r}`] = Array.from({ length: perRelation }, (_, i) => ({
      tokens: ['The', `thing${i}`, `verb${r}`, 'the', `other${i}`, 'in', `place${r % 3}`, '.'],
      h: [`thing${i}`, `Q${i}`, [[1]]],
      t: [`other${i}`, `Q${1000 + i}`, [[4]]],
    }));
  }
  const path = join(dir, 'fewrel.json');
  writeFileSync(path, JSON.stringify(data));
  return path;
}

/** A JSONL of {label, text}: `labels` classes of `perLabel` texts, words specific to each class. */
export function writeJsonlFixture(labels: number, perLabel: number, dir = fixtureDir(), lines?: readonly string[]): string {
  const path = join(dir, 'texts.jsonl');
  const out = lines ?? Array.from({ length: labels * perLabel }, (_, n) => {
    const l = n % labels;
    const i = Math.floor(n / labels);
    return JSON.stringify({ label: `topic${l}`, text: `Word${l} common text number ${i} about word${l} and more${i % 3}` });
  });
  writeFileSync(path, out.join('\n') + '\n');
  return path;
}

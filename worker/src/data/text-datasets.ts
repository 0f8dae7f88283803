/**
 * Few-shot text datasets as classes of tokenised texts:
 *   jsonl   one `{"label": …, "text": …}` object per line; a class per label
 *   fewrel  FewRel's JSON: relation → [{ tokens, h: [name, id, [[positions…]]], t: […] }]; the
 *           head and tail entities are wrapped in marker tokens [E1] … [/E1], [E2] … [/E2]
 * (`auto`: fewrel when the file is one JSON object of arrays, else jsonl). Word-level tokens:
 * runs of letters/digits (with an inner apostrophe) and single punctuation marks, lower-cased
 * unless `lowercase: false` (markers stay as they are). Classes are sorted by label. Errors name
 * the file, the line or relation, and what to do.
 */
import { readFileSync } from 'node:fs';
import { DatasetError } from '../errors.js';

export const ENTITY_MARKERS = ['[E1]', '[/E1]', '[E2]', '[/E2]'] as const;

export interface TextClass {
  readonly name: string;
  /** Each text as its tokens. */
  readonly texts: readonly (readonly string[])[];
}

export interface TextDataset {
  readonly path: string;
  readonly format: 'jsonl' | 'fewrel';
  readonly classes: readonly TextClass[];
}

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu;

/** Word-level tokens of `text`. */
export function tokenize(text: string, lowercase = true): string[] {
  return (lowercase ? text.toLowerCase() : text).match(WORD) ?? [];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function readJsonl(path: string, text: string, lowercase: boolean): TextClass[] {
  const byLabel = new Map<string, string[][]>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new DatasetError(`${path} line ${i + 1} is not JSON (${(err as Error).message}): each line must be {"label": …, "text": …}`, path, { cause: err });
    }
    if (!isObj(v) || (typeof v.label !== 'string' && typeof v.label !== 'number') || typeof v.text !== 'string') {
      throw new DatasetError(`${path} line ${i + 1}: expected {"label": <string or number>, "text": <string>}, got ${line.slice(0, 80)}`, path);
    }
    const tokens = tokenize(v.text, lowercase);
    if (tokens.length === 0) throw new DatasetError(`${path} line ${i + 1}: empty text (no word in ${JSON.stringify(v.text)}): remove the line or give it words`, path);
    const label = String(v.label);
    let list = byLabel.get(label);
    if (!list) byLabel.set(label, (list = []));
    list.push(tokens);
  });
  return [...byLabel.keys()].sort().map((name) => ({ name, texts: byLabel.get(name)! }));
}

/** The first occurrence's token positions of a FewRel entity `[name, id, [[p, …], …]]`. */
function span(e: unknown, where: string, path: string, n: number): [number, number] {
  const pos = Array.isArray(e) && Array.isArray(e[2]) && Array.isArray(e[2][0]) ? (e[2][0] as unknown[]) : undefined;
  if (!pos || pos.length === 0 || !pos.every((p) => Number.isInteger(p) && (p as number) >= 0 && (p as number) < n)) {
    throw new DatasetError(`${path}: ${where} has no valid entity span (expected [name, id, [[token positions]]] within its ${n} tokens)`, path);
  }
  const ps = pos as number[];
  return [Math.min(...ps), Math.max(...ps)];
}

function readFewRel(path: string, data: Record<string, unknown>, lowercase: boolean): TextClass[] {
  return Object.keys(data)
    .sort()
    .map((rel) => {
      const list = data[rel];
      if (!Array.isArray(list)) throw new DatasetError(`${path}: relation ${rel} is not a list of instances`, path);
      const texts = list.map((inst, i) => {
        const where = `relation ${rel} instance ${i}`;
        if (!isObj(inst) || !Array.isArray(inst.tokens) || !inst.tokens.every((t) => typeof t === 'string')) {
          throw new DatasetError(`${path}: ${where} has no "tokens" list of strings`, path);
        }
        const tokens = inst.tokens;
        if (tokens.length === 0) throw new DatasetError(`${path}: ${where} is an empty text (no tokens): remove it`, path);
        const [h0, h1] = span(inst.h, `${where} (head "h")`, path, tokens.length);
        const [t0, t1] = span(inst.t, `${where} (tail "t")`, path, tokens.length);
        const out: string[] = [];
        tokens.forEach((tok, k) => {
          if (k === h0) out.push('[E1]');
          if (k === t0) out.push('[E2]');
          out.push(lowercase ? tok.toLowerCase() : tok);
          if (k === t1) out.push('[/E2]');
          if (k === h1) out.push('[/E1]');
        });
        return out;
      });
      return { name: rel, texts };
    });
}

/** Read a JSONL or FewRel file into classes of token lists. */
export function readTextDataset(path: string, format: 'auto' | 'jsonl' | 'fewrel' = 'auto', lowercase = true): TextDataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DatasetError(`cannot read text dataset ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, path, { cause: err });
  }
  let whole: unknown;
  if (format !== 'jsonl') {
    try {
      whole = JSON.parse(text);
    } catch {
      if (format === 'fewrel') throw new DatasetError(`${path} is not a FewRel JSON file (not one JSON object): use format: jsonl for {"label","text"} lines`, path);
    }
  }
  const fewrel = isObj(whole) && Object.values(whole).every(Array.isArray) ? whole : undefined;
  if (format === 'fewrel' && !fewrel) throw new DatasetError(`${path} is not FewRel JSON (expected an object of relation → list of instances)`, path);
  const classes = fewrel && format !== 'jsonl' ? readFewRel(path, fewrel, lowercase) : readJsonl(path, text, lowercase);
  if (classes.length === 0) throw new DatasetError(`text dataset ${path} has no classes (an empty file?)`, path);
  return { path, format: fewrel && format !== 'jsonl' ? 'fewrel' : 'jsonl', classes };
}

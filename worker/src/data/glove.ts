/**
 * Pretrained word vectors in GloVe's text format (`word v1 v2 … vd` per line, space-separated),
 * read for one vocabulary: the rows of its words, in id order, as the Embedding's [size, d] matrix.
 * The file is streamed (GloVe files are GBs); only the vocabulary's words are kept. Rows of words
 * the file lacks (and <pad>, <unk>, the markers) are zero and reported in `missing`.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { DatasetError } from '../errors.js';
import type { Vocabulary } from './vocab.js';

export interface EmbeddingMatrix {
  readonly dim: number;
  /** [vocab.size, dim], row-major. */
  readonly data: Float32Array;
  /** Ids (< vocab.words.length) with no vector in the file. */
  readonly missing: readonly number[];
}

export function readGlove(path: string, vocab: Vocabulary): EmbeddingMatrix {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new DatasetError(`cannot read word vectors ${path}: ${(err as Error).message}`, path, { cause: err });
  }
  let dim = 0;
  let data = new Float32Array(0);
  const seen = new Set<number>();
  let lineNo = 0;
  const take = (line: string) => {
    lineNo++;
    if (line.trim() === '') return;
    const parts = line.trimEnd().split(' ');
    const word = parts[0]!;
    if (dim === 0) {
      dim = parts.length - 1;
      if (dim < 1) throw new DatasetError(`${path} line ${lineNo}: expected "word v1 v2 …" (GloVe's text format)`, path);
      data = new Float32Array(vocab.size * dim);
    }
    if (parts.length - 1 !== dim) throw new DatasetError(`${path} line ${lineNo}: ${parts.length - 1} values, the file's first line has ${dim}`, path);
    const id = vocab.ids.get(word);
    if (id === undefined || seen.has(id)) return;
    for (let k = 0; k < dim; k++) {
      const v = Number(parts[k + 1]);
      if (!Number.isFinite(v)) throw new DatasetError(`${path} line ${lineNo}: value ${k + 1} of "${word}" is not a number`, path);
      data[id * dim + k] = v;
    }
    seen.add(id);
  };
  try {
    const buf = Buffer.alloc(4 << 20);
    const utf8 = new StringDecoder('utf8'); // a character split between two reads stays whole
    let rest = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      const chunk = rest + utf8.write(buf.subarray(0, n));
      const lines = chunk.split('\n');
      rest = lines.pop()!;
      for (const l of lines) take(l);
    }
    rest += utf8.end();
    if (rest) take(rest);
  } finally {
    closeSync(fd);
  }
  if (dim === 0) throw new DatasetError(`word vectors ${path} are empty`, path);
  const missing = vocab.words.map((_, id) => id).filter((id) => !seen.has(id));
  return { dim, data, missing };
}

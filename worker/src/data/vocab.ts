/**
 * The vocabulary of a text run, built from the meta-train classes only (held-out words are unknown
 * to the model, as they would be): id 0 = <pad>, 1 = <unk>, then the entity markers (FewRel), then
 * the words seen at least `minCount` times, most frequent first (ties: code-unit order), up to
 * `size` ids in all. The id space is always `size` (the Embedding's input_dim, fixed by the spec so
 * the coordinator can lay out θ without the data); unused ids are never produced.
 */
import { DatasetError } from '../errors.js';
import { ENTITY_MARKERS, type TextClass } from './text-datasets.js';

export const PAD = 0;
export const UNK = 1;

export interface Vocabulary {
  /** Words in id order (index = id); length ≤ size. */
  readonly words: readonly string[];
  readonly ids: ReadonlyMap<string, number>;
  readonly size: number;
}

export function buildVocabulary(train: readonly TextClass[], o: { size: number; minCount: number; markers: boolean }): Vocabulary {
  const counts = new Map<string, number>();
  for (const c of train) for (const t of c.texts) for (const w of t) counts.set(w, (counts.get(w) ?? 0) + 1);
  const fixed = ['<pad>', '<unk>', ...(o.markers ? ENTITY_MARKERS : [])];
  if (fixed.length > o.size) throw new DatasetError(`task.vocab.size ${o.size} cannot hold <pad>, <unk> and the entity markers: use >= ${fixed.length}`, '');
  const ranked = [...counts.entries()]
    .filter(([w, n]) => n >= o.minCount && !fixed.includes(w))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, o.size - fixed.length)
    .map(([w]) => w);
  const words = [...fixed, ...ranked];
  return { words, ids: new Map(words.map((w, i) => [w, i])), size: o.size };
}

/** Token ids of `tokens`, truncated or padded with <pad> to `length`, as float32 (the model input). */
export function encode(tokens: readonly string[], vocab: Vocabulary, length: number, out = new Float32Array(length), at = 0): Float32Array {
  for (let i = 0; i < length; i++) out[at + i] = i < tokens.length ? (vocab.ids.get(tokens[i]!) ?? UNK) : PAD;
  return out;
}

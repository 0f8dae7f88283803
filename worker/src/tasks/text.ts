/**
 * `fewshot-text`: N-way K-shot Q-query text classification from a JSONL of {label, text} or a
 * FewRel JSON (data/text-datasets.ts). Classes (labels, relations) are sorted and cut by count into
 * meta-train / meta-val / meta-test like image classes; the vocabulary comes from the meta-train
 * classes only (data/vocab.ts); each text is `maxLength` token ids (truncated or padded), given to
 * the model as float32 [n, maxLength] (an Embedding's input). Tasks are drawn from the task seed
 * only, as fewshot-images draws them.
 */
import { hashWords, Rng, type RunSpec } from '@metaloop/shared';
import { resolveDataPath } from '../data/data-dir.js';
import { splitCounts } from '../data/image-source.js';
import { readTextDataset, type TextClass } from '../data/text-datasets.js';
import { buildVocabulary, encode, type Vocabulary } from '../data/vocab.js';
import { DatasetError } from '../errors.js';
import type { Split, TaskData, TaskFamily } from './types.js';

export type TextConfig = Extract<RunSpec['task'], { family: 'fewshot-text' }>;

/** Draw `k` distinct integers of [0, n) (partial Fisher–Yates). */
function pick(rng: Rng, n: number, k: number): number[] {
  const moved = new Map<number, number>();
  const out: number[] = [];
  for (let i = 0; i < k; i++) {
    const r = i + rng.int(n - i);
    const a = moved.get(i) ?? i;
    const b = moved.get(r) ?? r;
    moved.set(r, a);
    out.push(b);
  }
  return out;
}

interface EncodedClass {
  readonly name: string;
  /** Every text of the class, `maxLength` ids each, back to back. */
  readonly ids: Float32Array;
  readonly count: number;
}

export interface FewshotTextFamily extends TaskFamily {
  readonly vocabulary: Vocabulary;
  readonly splits: Readonly<Record<Split, readonly { readonly name: string; readonly count: number }[]>>;
  sample(seed: number, split?: Split): TaskData & { classes: string[] };
}

/** The classes of each split and the vocabulary of a text spec (also what the CLI builds at submit). */
export function textDataset(config: TextConfig): { splits: Record<Split, readonly TextClass[]>; vocabulary: Vocabulary; path: string; format: 'jsonl' | 'fewrel' } {
  const path = resolveDataPath(config.path);
  const data = readTextDataset(path, config.format, config.lowercase);
  const n = splitCounts(data.classes.length, config.classes, path);
  const splits = {
    train: data.classes.slice(0, n.train),
    val: data.classes.slice(n.train, n.train + n.val),
    test: data.classes.slice(n.train + n.val),
  };
  const vocabulary = buildVocabulary(splits.train, { size: config.vocab.size, minCount: config.vocab.minCount, markers: data.format === 'fewrel' });
  return { splits, vocabulary, path, format: data.format };
}

export function createFewshotText(spec: RunSpec): FewshotTextFamily {
  const t = spec.task;
  if (t.family !== 'fewshot-text') throw new DatasetError(`createFewshotText needs task.family fewshot-text, got ${t.family}`, '');
  const config: TextConfig = t;
  const { splits, vocabulary, path } = textDataset(config);
  const L = config.maxLength;
  const need = config.shots + config.queries;
  for (const split of ['train', 'val', 'test'] as const) {
    const short = splits[split].filter((c) => c.texts.length < need);
    if (short.length > 0) {
      throw new DatasetError(
        `${short.length} class(es) of the ${split} split of ${path} have fewer than shots + queries = ${need} texts: ${short.slice(0, 5).map((c) => `${c.name} (${c.texts.length})`).join(', ')}; add texts, remove those classes, or lower task.shots/queries`,
        path,
      );
    }
  }
  if (splits.train.length < config.ways) throw new DatasetError(`the train split of ${path} has ${splits.train.length} classes, fewer than ways = ${config.ways}`, path);
  const encoded: Record<Split, EncodedClass[]> = { train: [], val: [], test: [] };
  for (const split of ['train', 'val', 'test'] as const) {
    encoded[split] = splits[split].map((c) => {
      const ids = new Float32Array(c.texts.length * L);
      c.texts.forEach((tokens, i) => encode(tokens, vocabulary, L, ids, i * L));
      return { name: c.name, ids, count: c.texts.length };
    });
  }
  return {
    family: 'fewshot-text',
    loss: 'xent',
    inputShape: [L],
    outputs: config.ways,
    vocabulary,
    splits: { train: encoded.train, val: encoded.val, test: encoded.test },
    sample(seed: number, split: Split = 'train') {
      const base = encoded[split];
      if (base.length < config.ways) throw new DatasetError(`the ${split} split of ${path} has ${base.length} classes, fewer than ways = ${config.ways}`, path);
      const make = (per: number) => ({ x: new Float32Array(per * config.ways * L), y: new Float32Array(per * config.ways * config.ways), n: per * config.ways });
      const support = make(config.shots);
      const query = make(config.queries);
      const chosen = pick(new Rng(seed), base.length, config.ways);
      chosen.forEach((id, label) => {
        const cls = base[id]!;
        pick(new Rng(hashWords(seed, id, label)), cls.count, need).forEach((j, k) => {
          const isSupport = k < config.shots;
          const set = isSupport ? support : query;
          const slot = label * (isSupport ? config.shots : config.queries) + (isSupport ? k : k - config.shots);
          set.x.set(cls.ids.subarray(j * L, (j + 1) * L), slot * L);
          set.y[slot * config.ways + label] = 1;
        });
      });
      return { support, query, classes: chosen.map((id) => base[id]!.name) };
    },
  };
}

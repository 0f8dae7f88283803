/**
 * Run-spec schemas of the task families that read a user's dataset from disk: `fewshot-images`
 * (image folders in four layouts, or a packed file) and `fewshot-text` (JSONL or FewRel JSON).
 * Included into spec.ts's task union. Every dataset may carry its content hash (`sha256`), which
 * the CLI fills in at submit when it can read the data; a worker whose copy hashes differently
 * hands the shard back (docs/data.md).
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** A sha256 in hex, as `metaloop data info` prints it. */
export const Sha256Schema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'sha256 must be 64 lower-case hex digits, as `metaloop data info <path>` prints it');

/** Base-class counts of the splits for layouts without their own (the test split gets the rest). Defaults: 70% / 10% / 20%. */
const ImageSplitsSchema = z.strictObject({
  train: int(1, 10_000_000).optional(),
  val: int(0, 10_000_000).optional(),
});

export const IMAGE_LAYOUTS = ['auto', 'omniglot', 'classes', 'splits', 'csv'] as const;
export type ImageLayout = (typeof IMAGE_LAYOUTS)[number];

/** Per-channel normalisation after scaling to [0, 1] (and `invert`): (x − mean[c]) / std[c]. */
const NormalizeSchema = z
  .strictObject({
    mean: z.array(z.number().finite()).min(1).max(3),
    std: z.array(z.number().positive().finite()).min(1).max(3),
  })
  .refine((n) => n.mean.length === n.std.length, { message: 'normalize.mean and normalize.std need one value per channel each' });

/**
 * N-way K-shot tasks from images on disk (JPEG, PNG and whatever else libvips reads, through
 * sharp), or from a packed file (`metaloop data pack`). `path` is a folder in one of the layouts
 *   omniglot  root/alphabet/character/*       (a class is alphabet/character)
 *   classes   root/class/*                    (one folder per class)
 *   splits    root/{train,val,test}/class/*   (tiered-ImageNet, CIFAR-FS, FC100 copies)
 *   csv       root/{train,val,test}.csv + root/images/  (Ravi & Larochelle's mini-ImageNet: filename,label)
 * (`auto` tells them apart), or a `.mlpack` file. A relative path is resolved against the
 * process's data directory (--data-dir / METALOOP_DATA_DIR, else its working directory).
 */
export const FewshotImagesTaskSchema = z.strictObject({
  family: z.literal('fewshot-images'),
  path: z.string().min(1, 'path must name the dataset: a folder (root/class/*, root/alphabet/character/*, root/{train,val,test}/class/*, or mini-ImageNet CSVs) or a packed .mlpack file'),
  layout: z.enum(IMAGE_LAYOUTS).default('auto'),
  ways: int(2, 1000).default(5),
  shots: int(1, 1000).default(1),
  queries: int(1, 1000).default(15),
  imageSize: int(4, 512).default(28),
  channels: z.union([z.literal(1), z.literal(3)]).default(1),
  /** Omniglot augmentation: each 90° rotation of a class is a new class (×4 classes per split). */
  rotations: z.boolean().default(false),
  /** 1 − pixel after scaling to [0, 1] (Omniglot: dark strokes on white become bright on black). */
  invert: z.boolean().default(false),
  normalize: NormalizeSchema.optional(),
  /** Only for the omniglot and classes layouts (and packed files of them): the others bring their splits. */
  classes: ImageSplitsSchema.prefault({}),
  /** The dataset's content hash; filled in by `metaloop submit` when it can read the data. */
  sha256: Sha256Schema.optional(),
});

/** A file of pretrained word vectors (GloVe's text format: `word v1 v2 …` per line). */
const VectorsSchema = z.strictObject({
  path: z.string().min(1, 'vectors.path must name a GloVe-format text file (word v1 v2 … per line)'),
  sha256: Sha256Schema.optional(),
});

export const TEXT_FORMATS = ['auto', 'jsonl', 'fewrel'] as const;

/**
 * N-way K-shot text classification: `path` is a JSONL file of `{"label": …, "text": …}` lines (one
 * class per label) or a FewRel JSON file (relation → instances with `tokens`, `h`, `t`; the entities
 * are wrapped in marker tokens). Classes are split by `classes` counts in sorted-label order (FewRel
 * ships train and val files: give each its own run or one file per split). Word-level tokens; the
 * vocabulary is built from the meta-train classes only (the `vocab.size` most frequent words seen
 * at least `vocab.minCount` times, plus <pad>=0 and <unk>=1); each text becomes `maxLength` token
 * ids (truncated or padded with <pad>). `vectors`: GloVe vectors as θ₀ of the model's Embedding.
 */
export const FewshotTextTaskSchema = z.strictObject({
  family: z.literal('fewshot-text'),
  path: z.string().min(1, 'path must name a JSONL file ({"label", "text"} per line) or a FewRel JSON file'),
  format: z.enum(TEXT_FORMATS).default('auto'),
  ways: int(2, 1000).default(5),
  shots: int(1, 1000).default(1),
  queries: int(1, 1000).default(5),
  maxLength: int(1, 4096).default(40),
  lowercase: z.boolean().default(true),
  vocab: z.strictObject({ size: int(2, 10_000_000).default(20_000), minCount: int(1, 1_000_000).default(1) }).prefault({}),
  classes: ImageSplitsSchema.prefault({}),
  vectors: VectorsSchema.optional(),
  sha256: Sha256Schema.optional(),
});

/**
 * fewshot-text against its model: an Embedding that reads the token ids (the model input) needs an
 * id for every word of the vocabulary, input_dim >= task.vocab.size; and `task.vectors` needs such
 * an Embedding (a `kind: layers` model) to be its θ₀.
 */
export function textModelIssues(
  task: { family: string; vocab?: { size: number }; vectors?: { path: string } | undefined },
  model: { kind: string; layers?: unknown },
): { path: string; message: string }[] {
  if (task.family !== 'fewshot-text' || !task.vocab) return [];
  const out: { path: string; message: string }[] = [];
  let embeddings = 0;
  if (model.kind === 'layers' && Array.isArray(model.layers)) {
    (model.layers as { type?: unknown; input_dim?: unknown; inputs?: unknown }[]).forEach((l, i) => {
      const readsInput = i === 0 ? l.inputs === undefined || (Array.isArray(l.inputs) && l.inputs.includes('input')) : Array.isArray(l.inputs) && l.inputs.includes('input');
      if (l.type !== 'Embedding' || !readsInput) return;
      embeddings++;
      if (typeof l.input_dim === 'number' && l.input_dim < task.vocab!.size) {
        out.push({ path: `model.layers.${i}.input_dim`, message: `the Embedding reads token ids of a vocabulary of task.vocab.size = ${task.vocab!.size}: input_dim must be >= ${task.vocab!.size} (got ${l.input_dim})` });
      }
    });
  }
  if (task.vectors && embeddings === 0) {
    out.push({
      path: 'task.vectors',
      message: `word vectors become θ₀ of an Embedding reading the token ids, and this model has none: use a kind: layers model starting with { type: Embedding, input_dim: ${task.vocab.size}, output_dim: <the vectors' dimension> } (examples/fewrel-textcnn.yaml), or drop task.vectors`,
    });
  }
  return out;
}

/**
 * Pretrained word vectors (`task.vectors`, GloVe's text format) as θ₀ of a fewshot-text run's
 * Embedding. θ₀ is the coordinator's, which reads no data, so the CLI, which reads the dataset at
 * submit anyway, builds the run's vocabulary with the workers' own code (the meta-train classes of
 * `task.path`), takes the vectors of its words from the file and ships θ₀ the way `init: weights`
 * does: a TensorBundle uploaded before the submit and named by its sha256 in `model.weights`. The
 * workers never read the vectors.
 *
 * θ₀ is the layers' seeded initial values (or the Keras file's weights, for a model read with
 * `init: weights`) with, in every Embedding that reads the token ids, the row of each vocabulary
 * word the file has replaced by its vector. Rows of words the file lacks (and <pad>, <unk>, the
 * entity markers) keep their initial values. Same dataset, vectors and spec: same bytes, same sha256.
 */
import { createHash } from 'node:crypto';
import { initParams, MODEL_INPUT, modelGraph, modelLayout, type RunSpec } from '@metaloop/shared';
import { UsageError } from '@metaloop/client';
import type { NamedTensor } from './keras/from-keras.js';
import { weightsBundle, type InitWeights } from './keras/resolve.js';

export interface VectorWeights {
  readonly weights: InitWeights;
  /** The spec naming them (`model.weights.sha256`). */
  readonly spec: RunSpec;
  /** What was taken: one line per Embedding. */
  readonly notes: readonly string[];
}

/** The model's θ₀ tensors as initParams draws them (the algorithm's extras are the coordinator's). */
function initialTensors(spec: RunSpec): NamedTensor[] {
  const { data: theta } = initParams(spec);
  let off = 0;
  return modelLayout(spec).map((t) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const out = { name: t.name, shape: t.shape, data: theta.slice(off, off + n) };
    off += n;
    return out;
  });
}

/**
 * θ₀ of a fewshot-text spec with `task.vectors`; `base` the tensors to start from (a Keras file's
 * weights), else the initialisers'. Errors say what to change: the files unreadable here, vectors of
 * another dimension than an Embedding's output_dim.
 */
export async function vectorWeights(spec: RunSpec, base?: InitWeights): Promise<VectorWeights> {
  const task = spec.task;
  if (task.family !== 'fewshot-text' || !task.vectors) throw new UsageError('vectorWeights: the spec has no task.vectors');
  const d = await import('@metaloop/worker/data');
  const path = d.resolveDataPath(task.vectors.path);
  let vocabulary, matrix;
  try {
    vocabulary = d.textDataset(task).vocabulary;
    matrix = d.readGlove(path, vocabulary);
  } catch (err) {
    throw new UsageError(
      `task.vectors become θ₀ at submit, so the CLI must read the dataset (for its vocabulary) and the vectors here: ${(err as Error).message}. Submit where both are readable (--data-dir), or drop task.vectors`,
    );
  }
  const embeddings = modelGraph(spec).nodes.filter((n) => n.type === 'Embedding' && n.inputs.includes(MODEL_INPUT));
  const tensors = (base?.tensors ?? initialTensors(spec)).map((t) => ({ ...t, data: Float32Array.from(t.data) }));
  const found = vocabulary.words.length - matrix.missing.length;
  const missing = new Set(matrix.missing);
  const notes: string[] = [];
  for (const node of embeddings) {
    const outputDim = node.config['output_dim'] as number;
    if (outputDim !== matrix.dim) {
      throw new UsageError(
        `task.vectors ${path} holds ${matrix.dim}-dimensional vectors, but the Embedding ${node.name} has output_dim ${outputDim}: set its output_dim to ${matrix.dim}, or use vectors of ${outputDim} dimensions`,
      );
    }
    const param = node.params.find((p) => p.param === 'embeddings')!;
    const t = tensors.find((x) => x.name === param.name)!;
    for (let id = 0; id < vocabulary.words.length; id++) {
      if (!missing.has(id)) t.data.set(matrix.data.subarray(id * matrix.dim, (id + 1) * matrix.dim), id * outputDim);
    }
    notes.push(
      `task.vectors: ${found} of the vocabulary's ${vocabulary.words.length} words have a vector in ${path} (${matrix.dim} dimensions): θ₀ of ${param.name}; the other rows keep their initial values`,
    );
  }
  const bytes = weightsBundle(tensors);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const withWeights = { ...spec, model: { ...spec.model, weights: { sha256 } } } as RunSpec;
  return { weights: { bytes, sha256, tensors, notes: base?.notes ?? [] }, spec: withWeights, notes };
}

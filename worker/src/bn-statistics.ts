/**
 * Batch norm's moving statistics for exported models (docs/models.md, "Batch norm's moving
 * statistics"). MAML's batch norm has none: every pass normalises with its batch's statistics. A
 * Keras or TF.js BatchNormalization layer needs `moving_mean` and `moving_variance` for inference,
 * so the export estimates them from seeded meta-train task batches: the query sets of the first
 * `tasks` meta-train tasks of step 0 (seeds taskSeed(run seed, 'train', 0, i), the tasks of the
 * run's first meta-batch), each through θ unadapted with batch statistics; per layer, the mean of
 * the per-task batch means and the mean of the per-task (biased) batch variances. `tasks: 0` gives
 * identity statistics (0 and 1).
 *
 * `forwardWithStatistics` is Metaloop's forward with such fixed statistics: what Keras'
 * `model.predict` computes with the exported moving statistics.
 */
import './tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { graphForward, modelGraph, sizeOf, taskSeed, type GraphNode, type ModelGraph, type RunSpec } from '@metaloop/shared';
import { createTaskFamily } from './tasks/index.js';

/** The moving statistics of one BatchNormalization layer ([channels] each). */
export interface BatchNormStatistics {
  readonly mean: Float32Array;
  readonly variance: Float32Array;
}

/** Default number of meta-train tasks the export estimates the statistics from. */
export const DEFAULT_BN_TASKS = 16;

const isBatchNorm = (n: GraphNode) => n.type === 'BatchNormalization';

/** θ's model tensors by wire name (the layout's first tensors; algorithm extras after them are not read). */
function modelTensors(graph: ModelGraph, params: Float32Array): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  let off = 0;
  for (const t of graph.layout) {
    const n = sizeOf(t.shape);
    out[t.name] = tf.tensor(params.subarray(off, off + n), [...t.shape]);
    off += n;
  }
  return out;
}

/** Axes a BN layer reduces: all but the channel (last). */
const statAxes = (x: tf.Tensor) => Array.from({ length: x.rank - 1 }, (_, i) => i);

/** Estimate every BatchNormalization layer's moving statistics (see the file comment). */
export function estimateBatchNormStatistics(spec: RunSpec, params: Float32Array, tasks = DEFAULT_BN_TASKS): Map<string, BatchNormStatistics> {
  const graph = modelGraph(spec);
  const bns = graph.nodes.filter(isBatchNorm);
  const out = new Map<string, BatchNormStatistics>();
  if (!Number.isInteger(tasks) || tasks < 0) throw new RangeError(`the number of tasks for batch-norm statistics must be a whole number >= 0, got ${tasks}`);
  if (tasks === 0 || bns.length === 0) {
    for (const n of bns) out.set(n.name, { mean: new Float32Array(n.shape.at(-1)!), variance: new Float32Array(n.shape.at(-1)!).fill(1) });
    return out;
  }
  const sums = new Map(bns.map((n) => [n.name, { mean: new Float64Array(n.shape.at(-1)!), variance: new Float64Array(n.shape.at(-1)!) }]));
  const family = createTaskFamily(spec);
  const weights = modelTensors(graph, params);
  try {
    for (let i = 0; i < tasks; i++) {
      const query = family.sample(taskSeed(spec.seed, 'train', 0, i), 'train').query;
      tf.tidy(() => {
        const x = tf.tensor(query.x, [query.n, ...graph.input]);
        graphForward(tf, graph, weights, x, false, {
          node: (node, inputs) => {
            if (!isBatchNorm(node)) return undefined;
            const { mean, variance } = tf.moments(inputs[0]!, statAxes(inputs[0]!));
            const s = sums.get(node.name)!;
            (mean.dataSync() as Float32Array).forEach((v, c) => (s.mean[c]! += v));
            (variance.dataSync() as Float32Array).forEach((v, c) => (s.variance[c]! += v));
            return undefined;
          },
        });
      });
    }
  } finally {
    tf.dispose(Object.values(weights));
  }
  for (const [name, s] of sums) out.set(name, { mean: Float32Array.from(s.mean, (v) => v / tasks), variance: Float32Array.from(s.variance, (v) => v / tasks) });
  return out;
}

/**
 * Metaloop's forward of θ with fixed batch-norm statistics (x [N, ...input] → [N, outputs]):
 * γ·(x − moving_mean)/√(moving_variance + ε) + β in every BatchNormalization layer, the graph's own
 * forward elsewhere. Call inside tf.tidy.
 */
export function forwardWithStatistics(spec: RunSpec, weights: Readonly<Record<string, tf.Tensor>>, x: tf.Tensor, stats: ReadonlyMap<string, BatchNormStatistics>): tf.Tensor {
  const graph = modelGraph(spec);
  return graphForward(tf, graph, weights, x, false, {
    node: (node, inputs, p) => {
      if (!isBatchNorm(node)) return undefined;
      const s = stats.get(node.name);
      if (!s) throw new RangeError(`no statistics for batch norm layer ${node.name}`);
      const eps = node.config['epsilon'] as number;
      let y = tf.div(tf.sub(inputs[0]!, tf.tensor1d(s.mean)), tf.sqrt(tf.add(tf.tensor1d(s.variance), eps)));
      if (p['scale']) y = tf.mul(y, p['scale']);
      if (p['offset']) y = tf.add(y, p['offset']);
      return y;
    },
  });
}

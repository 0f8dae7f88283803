/**
 * computeShard: rebuild a shard's tasks from their seeds, run the algorithm on them, and return
 * the summed meta-gradient and losses (train) or the held-out loss curve (eval).
 *
 * Speed: an MLP-shaped model trained with maml, fomaml, metasgd or reptile takes the fused host
 * path (fused/maml.ts: the whole inner loop and its exact meta-gradient in float64 loops, no tfjs;
 * `fused: false` turns it off). Otherwise every model (a layer graph, model/model.ts) has a
 * task-batched form: when batching is on (by default, except for convolutional graphs off a GPU)
 * and the tasks have equal sizes, up to the model's maxTaskBatch tasks (≤ MAX_TASK_BATCH, fewer
 * to bound memory) go through one batched computation (θ copied per task), so the per-kernel
 * overhead of tfjs is paid once per chunk instead of once per task. Otherwise tasks run one by one.
 *
 * Reproducibility: either way the engine gets one row per task ([grad..., pre, post]) and sums
 * the rows on the host in float64, in task order, then rounds once to float32. Chunking depends
 * only on the shard, so the same spec, θ and seeds give bitwise-identical results on one backend.
 *
 * Evaluation is held out: eval shards draw their tasks from the spec's `eval.split` classes
 * (meta-test by default, meta-val on request), never from the meta-train classes; besides the sums
 * they return sums of squares over tasks, from which the coordinator gets the 95% CI.
 */
import './tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { isRlTask, layoutSize, paramLayout, sizeOf, type RunSpec, type ShardKindName, type TensorSpec } from '@metaloop/shared';
import { createAlgorithm } from './algorithms/index.js';
import { lossOf } from './algorithms/loss.js';
import type { Algorithm, InnerLoop, TaskTensors } from './algorithms/types.js';
import { ShardAbortedError } from './errors.js';
import { FusedMlp, fusedMlpPlan, type FusedMlpPlan } from './fused/maml.js';
import { createModels, MAX_TASK_BATCH } from './model/model.js';
import { computeRlShard } from './rl/shard.js';
import { createTaskFamily } from './tasks/index.js';
import type { Examples, Split, TaskData, TaskFamily } from './tasks/types.js';

export { MAX_TASK_BATCH };

export interface ShardWork {
  readonly kind: ShardKindName;
  readonly taskSeeds: readonly number[];
  /** Eval shards: number of inner steps K; losses are reported after k = 0..K (default spec.eval.innerSteps). */
  readonly evalInnerSteps?: number;
  /** Eval shards: the held-out classes tasks are drawn from (default spec.eval.split). */
  readonly split?: Exclude<Split, 'train'>;
}

export interface TrainShardResult {
  readonly kind: 'train';
  /** Meta-gradient summed (not averaged) over the shard's tasks, in layout order. */
  readonly grad: Float32Array;
  readonly preLossSum: number;
  readonly postLossSum: number;
  readonly tasks: number;
  /** Meta-RL (rl/): mean episode return of θ's and of the adapted θ′'s rollouts, summed over tasks (the loss sums are 0). */
  readonly preReturnSum?: number;
  readonly postReturnSum?: number;
}

export interface EvalShardResult {
  readonly kind: 'eval';
  /** Query loss after k = 0..evalInnerSteps inner steps, summed over tasks. */
  readonly evalLossSums: number[];
  /** Σ over tasks of the squared query loss after k steps (for the spread over tasks). */
  readonly evalLossSqSums: number[];
  /** Classification families only: query accuracy after k steps, summed over tasks. */
  readonly evalAccuracySums?: number[];
  /** Classification families only: Σ over tasks of the squared accuracy after k steps. */
  readonly evalAccuracySqSums?: number[];
  /** Meta-RL (rl/): mean episode return after k = 0..K steps, its square and (R_k − R_0)², summed over tasks (the loss lists are empty). */
  readonly evalReturnSums?: number[];
  readonly evalReturnSqSums?: number[];
  readonly evalGainSqSums?: number[];
  readonly tasks: number;
}

export type ShardComputation = TrainShardResult | EvalShardResult;

export interface ComputeShardOptions {
  /** Checked between tasks (or chunks): an aborted signal stops the shard with ShardAbortedError. */
  readonly signal?: AbortSignal;
  /** Called as tasks complete (e.g. to extend a work item's lease). */
  readonly onTask?: (done: number, total: number) => void;
  /** Let the event loop run (timers, I/O) after this much uninterrupted compute; default 25 ms. */
  readonly yieldEveryMs?: number;
  /**
   * Batch tasks when the model allows it; false forces one task at a time. Default: batch, except
   * where a model's batched variant is not the default (Conv4 off a GPU).
   */
  readonly batchTasks?: boolean;
  /**
   * Use the fused host path (fused/maml.ts: float64 loops, no tfjs) when the run allows it (MLP with
   * maml, fomaml, metasgd or reptile); default true. False forces the tfjs path.
   */
  readonly fused?: boolean;
}

/** Everything a spec determines, built once per spec object. */
export interface CompiledRun {
  readonly spec: RunSpec;
  /** θ's layout (paramLayout). */
  readonly layout: readonly TensorSpec[];
  readonly size: number;
  readonly family: TaskFamily;
  readonly algorithm: Algorithm;
  readonly inner: InnerLoop;
  /** The same inner loop with a leading task dimension (the model's task-batched form). */
  readonly batchedInner: InnerLoop;
  /** Most tasks in one batched pass (the batched model's limit, ≤ MAX_TASK_BATCH). */
  readonly maxTaskBatch: number;
  /** Whether tasks are batched by default on the active backend (the batched model says). */
  readonly batchByDefault: () => boolean;
  /** The fused host path's plan, or why this run cannot take it. */
  readonly fused: FusedMlpPlan | string;
}

const compiled = new WeakMap<RunSpec, CompiledRun>();

export function compileRun(spec: RunSpec): CompiledRun {
  let c = compiled.get(spec);
  if (c) return c;
  const models = createModels(spec);
  const family = createTaskFamily(spec);
  const algorithm = createAlgorithm(spec);
  const layout = paramLayout(spec);
  const inner: InnerLoop = {
    model: models.perTask,
    loss: lossOf(family.loss),
    layout,
    innerSteps: spec.algorithm.innerSteps,
    innerLr: spec.algorithm.innerLr,
    batched: false,
  };
  const batchedInner: InnerLoop = { ...inner, model: models.batched, batched: true };
  const maxTaskBatch = models.batched.maxTaskBatch;
  const batchByDefault = models.batched.batchByDefault;
  const fused = fusedMlpPlan(spec, models.graph, family);
  c = { spec, layout, size: layoutSize(layout), family, algorithm, inner, batchedInner, maxTaskBatch, batchByDefault, fused };
  compiled.set(spec, c);
  return c;
}

/** Tensors of one task, or of several equal-sized tasks stacked on a leading axis (call inside tf.tidy). */
export function taskTensors(family: TaskFamily, tasks: TaskData | readonly TaskData[]): TaskTensors {
  if (!Array.isArray(tasks)) {
    const t = tasks as TaskData;
    const ex = (e: Examples) => [tf.tensor(e.x, [e.n, ...family.inputShape]), tf.tensor(e.y, [e.n, family.outputs])] as const;
    const [xs, ys] = ex(t.support);
    const [xq, yq] = ex(t.query);
    return { xs, ys, xq, yq };
  }
  const list = tasks as readonly TaskData[];
  const stack = (pick: (t: TaskData) => Examples, field: 'x' | 'y', shape: readonly number[]) => {
    const first = pick(list[0]!);
    const per = first[field].length;
    const out = new Float32Array(per * list.length);
    list.forEach((t, i) => out.set(pick(t)[field], i * per));
    return tf.tensor(out, [list.length, first.n, ...shape]);
  };
  const sup = (t: TaskData) => t.support;
  const qry = (t: TaskData) => t.query;
  return {
    xs: stack(sup, 'x', family.inputShape),
    ys: stack(sup, 'y', [family.outputs]),
    xq: stack(qry, 'x', family.inputShape),
    yq: stack(qry, 'y', [family.outputs]),
  };
}

function sameSizes(tasks: readonly TaskData[]): boolean {
  const a = tasks[0]!;
  return tasks.every(
    (t) =>
      t.support.n === a.support.n &&
      t.query.n === a.query.n &&
      t.support.x.length === a.support.x.length &&
      t.support.y.length === a.support.y.length &&
      t.query.x.length === a.query.x.length &&
      t.query.y.length === a.query.y.length,
  );
}

/** θ as tensors in layout order, each with `copies` copies on a leading axis when given (copies `params`). */
export function paramTensors(run: CompiledRun, params: Float32Array, copies?: number): tf.Tensor[] {
  if (params.length !== run.size) {
    throw new RangeError(`θ has ${params.length} values, the ${run.spec.model.kind} layout needs ${run.size}`);
  }
  let off = 0;
  return run.layout.map((t) => {
    const n = sizeOf(t.shape);
    const part = params.subarray(off, off + n);
    off += n;
    if (copies === undefined) return tf.tensor(part.slice(), [...t.shape]);
    const out = new Float32Array(n * copies);
    for (let i = 0; i < copies; i++) out.set(part, i * n);
    return tf.tensor(out, [copies, ...t.shape]);
  });
}

function readRows(out: tf.Tensor): Float32Array {
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/**
 * Rows [grad..., pre, post], one per task, row-major (T × (size + 2)). `theta` is untiled for a
 * single task, or has a leading axis of length tasks.length for a batch.
 */
export function trainRows(run: CompiledRun, theta: readonly tf.Tensor[], tasks: readonly TaskData[], batched: boolean): Float32Array {
  const inner = batched ? run.batchedInner : run.inner;
  if (!batched && tasks.length !== 1) throw new RangeError(`trainRows: ${tasks.length} tasks unbatched (one at a time, or batched)`);
  const T = tasks.length;
  return readRows(
    tf.tidy(() => {
      const data = taskTensors(run.family, batched ? tasks : tasks[0]!);
      const r = run.algorithm.metaGradient(inner, theta, data);
      return tf.concat([...r.grads.map((g) => tf.reshape(g, [T, -1])), tf.reshape(r.preLoss, [T, 1]), tf.reshape(r.postLoss, [T, 1])], 1);
    }),
  );
}

/** Rows [loss_0..loss_K, acc_0..acc_K], one per task (accuracies only for classification). */
export function evalRows(run: CompiledRun, theta: readonly tf.Tensor[], tasks: readonly TaskData[], batched: boolean, steps: number): Float32Array {
  const inner = batched ? run.batchedInner : run.inner;
  if (!batched && tasks.length !== 1) throw new RangeError(`evalRows: ${tasks.length} tasks unbatched (one at a time, or batched)`);
  const T = tasks.length;
  return readRows(
    tf.tidy(() => {
      const data = taskTensors(run.family, batched ? tasks : tasks[0]!);
      const r = run.algorithm.evaluate(inner, theta, data, steps);
      const cols = [...r.losses, ...(r.accuracies ?? [])].map((v) => tf.reshape(v, [T, 1]));
      return tf.concat(cols, 1);
    }),
  );
}

/**
 * Rows of the fused host path, the same layout as trainRows/evalRows: computed in float64, rounded
 * to float32 per task like the tfjs rows, so the shard sum is formed the same way on both paths.
 */
function hostRows(host: FusedMlp, tasks: readonly TaskData[], kind: ShardWork['kind'], width: number, steps: number): Float32Array {
  const rows = new Float64Array(width * tasks.length);
  tasks.forEach((t, i) => (kind === 'train' ? host.trainRow(t, rows, i * width) : host.evalRow(t, steps, rows, i * width)));
  return Float32Array.from(rows);
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function computeShard(
  spec: RunSpec,
  params: Float32Array,
  shard: ShardWork,
  options: ComputeShardOptions = {},
): Promise<ShardComputation> {
  const [r] = await computeShards(spec, params, [shard], options);
  return r!;
}

/**
 * The shards of one assignment (one run, one θ) in one pass: the fused host path builds its float64
 * θ once and runs every task of every shard in one loop; the tfjs path makes θ's tensors (and their
 * tiled copies) once for all of them. Each shard's rows are summed on their own in task order, and
 * its tasks are chunked as if it were alone — a chunk never spans two shards, because on tfjs a
 * task's row may depend on the batch it is computed in (kernels are chosen by shape, notably on a
 * GPU), and which shards share a worker depends on the worker count. So every result is bitwise
 * the one computeShard gives for that shard alone. `onTask` counts tasks over all the shards.
 */
export async function computeShards(
  spec: RunSpec,
  params: Float32Array,
  shards: readonly ShardWork[],
  options: ComputeShardOptions = {},
): Promise<ShardComputation[]> {
  if (isRlTask(spec.task)) {
    // Meta-RL: rl/, host only, shard by shard; onTask counts over all of them.
    const task = spec.task;
    const all = shards.reduce((n, s) => n + s.taskSeeds.length, 0);
    const out: ShardComputation[] = [];
    let before = 0;
    for (const s of shards) {
      const onTask = options.onTask && ((done: number) => options.onTask!(before + done, all));
      out.push(await computeRlShard(spec, task, params, s, { ...options, ...(onTask ? { onTask } : {}) }));
      before += s.taskSeeds.length;
    }
    return out;
  }
  const run = compileRun(spec);
  const yieldEveryMs = options.yieldEveryMs ?? 25;
  const classify = run.inner.loss.accuracy !== undefined;
  const total = shards.reduce((n, s) => n + s.taskSeeds.length, 0);
  const host = options.fused !== false && typeof run.fused !== 'string' ? new FusedMlp(run.fused, params) : undefined;
  const canBatch = host !== undefined || (options.batchTasks ?? run.batchByDefault());
  const tiled = new Map<number, tf.Tensor[]>();
  /** θ for a chunk of `n` tasks (0: one task, unbatched), made once per call. */
  const thetaFor = (n: number): tf.Tensor[] => {
    let t = tiled.get(n);
    if (!t) tiled.set(n, (t = n === 0 ? paramTensors(run, params) : paramTensors(run, params, n)));
    return t;
  };
  let lastYield = performance.now();
  let doneAll = 0;
  const one = async (shard: ShardWork): Promise<ShardComputation> => {
    const seeds = shard.taskSeeds;
    const steps = shard.evalInnerSteps ?? spec.eval.innerSteps;
    if (shard.kind === 'eval' && !(Number.isInteger(steps) && steps >= 0)) {
      throw new RangeError(`evalInnerSteps must be a whole number >= 0, got ${steps}`);
    }
    const width = shard.kind === 'train' ? run.size + 2 : (steps + 1) * (classify ? 2 : 1);
    const acc = new Float64Array(width);
    // Eval: Σ of squares per column too (train rows need none).
    const sq = new Float64Array(shard.kind === 'eval' ? width : 0);
    const split: Split = shard.kind === 'eval' ? (shard.split ?? spec.eval.split) : 'train';
    await run.family.prepare?.(seeds, split);
    let done = 0;
    // The previous chunk's tasks, free once its rows are computed (no tensor outlives trainRows/
    // evalRows): families that can write a task into them do (no fresh memory per task).
    let spare: readonly TaskData[] = [];
    while (done < seeds.length) {
      if (options.signal?.aborted) throw new ShardAbortedError(doneAll);
      const sampled = seeds.slice(done, done + (canBatch ? run.maxTaskBatch : 1)).map((s, k) => run.family.sample(s, split, spare[k]));
      let tasks = sampled;
      let rows: Float32Array;
      if (host) {
        rows = hostRows(host, tasks, shard.kind, width, steps);
      } else {
        const batched = canBatch && sameSizes(tasks);
        if (!batched) tasks = tasks.slice(0, 1);
        const theta = thetaFor(batched ? tasks.length : 0);
        rows = shard.kind === 'train' ? trainRows(run, theta, tasks, batched) : evalRows(run, theta, tasks, batched, steps);
      }
      for (let t = 0; t < tasks.length; t++) {
        const off = t * width;
        for (let j = 0; j < width; j++) acc[j]! += rows[off + j]!;
        for (let j = 0; j < sq.length; j++) sq[j]! += rows[off + j]! * rows[off + j]!;
      }
      spare = sampled;
      done += tasks.length;
      doneAll += tasks.length;
      options.onTask?.(doneAll, total);
      if (doneAll < total && performance.now() - lastYield >= yieldEveryMs) {
        await yieldToLoop();
        lastYield = performance.now();
      }
    }
    if (shard.kind === 'train') {
      return {
        kind: 'train',
        grad: Float32Array.from(acc.subarray(0, run.size)),
        preLossSum: acc[run.size]!,
        postLossSum: acc[run.size + 1]!,
        tasks: seeds.length,
      };
    }
    const losses = { evalLossSums: Array.from(acc.subarray(0, steps + 1)), evalLossSqSums: Array.from(sq.subarray(0, steps + 1)) };
    return classify
      ? { kind: 'eval', ...losses, evalAccuracySums: Array.from(acc.subarray(steps + 1)), evalAccuracySqSums: Array.from(sq.subarray(steps + 1)), tasks: seeds.length }
      : { kind: 'eval', ...losses, tasks: seeds.length };
  };
  try {
    const out: ShardComputation[] = [];
    for (const shard of shards) out.push(await one(shard));
    return out;
  } finally {
    for (const t of tiled.values()) tf.dispose(t);
  }
}

/**
 * Meta-test in-process (`metaloop eval`): adapt θ to N held-out tasks with the worker engine's
 * eval path (computeShard, one task per shard so every task's value is kept) and report the mean
 * query loss (and accuracy for classification) after 0, 1 and K inner steps ± a 95% confidence
 * interval, 1.96·s/√n with s the sample standard deviation over tasks.
 *
 * Tasks: `eval` = the run's own held-out evaluation tasks (the seeds its evaluations use, so the
 * numbers are comparable with `metaloop status`); `test` = fresh tasks of the test seed domain.
 */
import { InvariantError, taskSeed, type RunSpec } from '@metaloop/shared';
import { computeShard, selectBackend, type BackendInfo } from '@metaloop/worker';

export interface MetaTestOptions {
  /** Number of tasks (default spec.eval.tasks). */
  readonly tasks?: number;
  /** Inner steps K (default spec.eval.innerSteps). */
  readonly innerSteps?: number;
  /** Which task seeds (default 'eval'). */
  readonly split?: 'eval' | 'test';
  readonly signal?: AbortSignal;
  readonly onTask?: (done: number, total: number) => void;
}

export interface MeanCi {
  readonly mean: number;
  /** Half-width of the 95% confidence interval of the mean. */
  readonly ci95: number;
  readonly std: number;
}

export interface MetaTestResult {
  readonly tasks: number;
  readonly split: 'eval' | 'test';
  /** Inner steps of each entry below: [0, 1, K] (without duplicates). */
  readonly innerSteps: number[];
  readonly loss: MeanCi[];
  /** Classification families only. */
  readonly accuracy?: MeanCi[];
  /** Meta-RL families only (then `loss` is empty): mean episode return, and the paired gain R_k − R_0. */
  readonly returns?: MeanCi[];
  readonly gain?: MeanCi[];
  /** `accuracy` for classification, `return` for meta-RL, else `loss`. */
  readonly metric: 'loss' | 'accuracy' | 'return';
  readonly backend: string;
  readonly seconds: number;
}

export function meanCi(values: readonly number[]): MeanCi {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, ci95: Number.NaN, std: Number.NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  const std = Math.sqrt(variance);
  return { mean, ci95: (1.96 * std) / Math.sqrt(n), std };
}

let backend: Promise<BackendInfo> | null = null;

/** Select the tfjs backend once (the worker's chain: tfjs-node → wasm → cpu, or METALOOP_BACKEND). */
export function ensureBackend(): Promise<BackendInfo> {
  // libtensorflow's C++ start-up chatter (oneDNN, CUDA probing) would drown the results on stderr.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  backend ??= selectBackend();
  return backend;
}

/** Meta-test θ on held-out tasks; see the module comment. */
export async function metaTest(spec: RunSpec, params: Float32Array, options: MetaTestOptions = {}): Promise<MetaTestResult> {
  const tasks = options.tasks ?? spec.eval.tasks;
  const K = options.innerSteps ?? spec.eval.innerSteps;
  const split = options.split ?? 'eval';
  if (!Number.isInteger(tasks) || tasks < 1) throw new RangeError(`--tasks must be a whole number >= 1, got ${tasks}`);
  if (!Number.isInteger(K) || K < 1) throw new RangeError(`--inner-steps must be a whole number >= 1, got ${K}`);
  const info = await ensureBackend();
  const started = performance.now();
  const losses: number[][] = Array.from({ length: K + 1 }, () => []);
  const accs: number[][] = Array.from({ length: K + 1 }, () => []);
  const rets: number[][] = Array.from({ length: K + 1 }, () => []);
  for (let i = 0; i < tasks; i++) {
    options.signal?.throwIfAborted();
    // The run's evaluations use seeds of the 'eval' domain at step 0, index i (see @metaloop/coordinator's run-shards.ts).
    const seed = taskSeed(spec.seed, split, 0, i);
    const r = await computeShard(spec, params, { kind: 'eval', taskSeeds: [seed], evalInnerSteps: K }, { batchTasks: false });
    if (r.kind !== 'eval') throw new InvariantError('computeShard returned a train result for an eval shard');
    r.evalLossSums.forEach((v, k) => losses[k]!.push(v));
    r.evalAccuracySums?.forEach((v, k) => accs[k]!.push(v));
    r.evalReturnSums?.forEach((v, k) => rets[k]!.push(v));
    options.onTask?.(i + 1, tasks);
  }
  const innerSteps = [...new Set([0, 1, K])];
  const classify = accs[0]!.length > 0;
  if (rets[0]!.length > 0) {
    // Meta-RL: every k, and the gain paired over the same tasks.
    const all = Array.from({ length: K + 1 }, (_, k) => k);
    return {
      tasks,
      split,
      innerSteps: all,
      loss: [],
      returns: all.map((k) => meanCi(rets[k]!)),
      gain: all.map((k) => meanCi(rets[k]!.map((v, i) => v - rets[0]![i]!))),
      metric: 'return',
      backend: `${info.name} (${info.device})`,
      seconds: (performance.now() - started) / 1000,
    };
  }
  return {
    tasks,
    split,
    innerSteps,
    loss: innerSteps.map((k) => meanCi(losses[k]!)),
    ...(classify ? { accuracy: innerSteps.map((k) => meanCi(accs[k]!)) } : {}),
    metric: classify ? 'accuracy' : 'loss',
    backend: `${info.name} (${info.device})`,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Human lines for a meta-test result. */
export function metaTestLines(r: MetaTestResult, what: string): string[] {
  const f = (m: MeanCi) => `${m.mean.toPrecision(4)} ± ${m.ci95.toPrecision(2)}`;
  const lines = [`meta-test of ${what} on ${r.tasks} ${r.split} tasks (${r.backend}, ${r.seconds.toFixed(1)} s), mean ± 95% CI:`];
  if (r.returns) {
    r.innerSteps.forEach((k, i) => {
      const gain = k > 0 && r.gain ? `   gain ${f(r.gain[i]!)}` : '';
      lines.push(`  after ${String(k).padStart(3)} step${k === 1 ? ' ' : 's'}: return ${f(r.returns![i]!)}${gain}`);
    });
    return lines;
  }
  r.innerSteps.forEach((k, i) => {
    const acc = r.accuracy ? `   accuracy ${f(r.accuracy[i]!)}` : '';
    lines.push(`  after ${String(k).padStart(3)} step${k === 1 ? ' ' : 's'}: loss ${f(r.loss[i]!)}${acc}`);
  });
  return lines;
}

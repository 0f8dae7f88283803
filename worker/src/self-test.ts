/**
 * `metaloop-worker --self-test`: the one-command check of a worker node (docs/gpu.md). It selects
 * the backend exactly as a worker does, says which device and GPU it computes on, then times a
 * Conv4 MAML shard (second order, the papers' 5-way 1-shot Omniglot size) through computeShard, the
 * worker's own code path, and prints tasks/s. No NATS, no coordinator.
 *
 * It fails (ok: false) when the backend cannot start, a shard throws, the meta-gradient is not
 * finite or is all zero, tensors leak across shards, or `requireGpu` is set and no GPU is used.
 */
import './tfjs-setup.js';
import * as tf from '@tensorflow/tfjs-core';
import { initParams, silentLogger, validateSpec, type Logger, type RunSpec } from '@metaloop/shared';
import { selectBackend, type BackendInfo, type BackendPreference } from './backend.js';
import { compileRun, computeShard, type TrainShardResult } from './engine.js';
import { InstallError } from './errors.js';
import { describeGpuLine, resolveGpu, type GpuInfo } from './gpu.js';
import { WORKER_VERSION } from './options.js';

/** Conv4, 5-way 1-shot, 28×28, 64 filters, max-pool, 15 queries per class, MAML with one inner step. */
export const SELF_TEST_SPEC: RunSpec = validateSpec(
  {
    name: 'self-test-conv4-maml',
    seed: 18,
    task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 15, imageSize: 28 },
    model: { kind: 'conv4', filters: 64, pool: 'max' },
    algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.4 },
    outer: { metaBatch: 32, shardSize: 4 },
  },
  'self-test spec',
);

export interface SelfTestOptions {
  /** Backend chain to use, as for a worker; default METALOOP_BACKEND or 'any'. */
  readonly backend?: BackendPreference;
  /** Timed shards after the warm-up shard; default 3. */
  readonly shards?: number;
  /** The workload; default SELF_TEST_SPEC. */
  readonly spec?: RunSpec;
  /** Tasks per shard; default the spec's outer.shardSize (4 for SELF_TEST_SPEC). */
  readonly tasksPerShard?: number;
  /** Fail unless the backend computes on a GPU. */
  readonly requireGpu?: boolean;
  /** The GPU to report instead of asking nvidia-smi (as WorkerOptions.gpu). */
  readonly gpu?: GpuInfo | null;
  /** Where the report lines go; default stdout. */
  readonly out?: (line: string) => void;
  readonly logger?: Logger;
}

export interface SelfTestReport {
  readonly ok: boolean;
  readonly problems: readonly string[];
  readonly backend: BackendInfo | undefined;
  readonly gpu: GpuInfo | undefined;
  /** 'vectorised' (all tasks of a shard in one batched pass) or 'per-task'. */
  readonly path: 'vectorised' | 'per-task' | undefined;
  readonly tasksPerShard: number;
  readonly warmupMs: number;
  readonly shardMs: readonly number[];
  /** Tasks per second over the median timed shard; 0 when nothing was timed. */
  readonly tasksPerSec: number;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const sec = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)} s`;

function workload(spec: RunSpec): string {
  const t = spec.task as { family: string; ways?: number; shots?: number; queries?: number; imageSize?: number };
  const m = spec.model as { kind: string; filters?: number; pool?: string };
  const a = spec.algorithm;
  const images = t.ways !== undefined ? `, ${t.ways}-way ${t.shots}-shot ${t.imageSize}×${t.imageSize} (${t.ways * (t.shots ?? 0)}+${t.ways * (t.queries ?? 0)} images/task)` : '';
  const model = m.kind === 'conv4' ? `Conv4 (${m.filters} filters, ${m.pool}-pool)` : m.kind;
  return `${model} ${a.kind.toUpperCase()}, ${a.innerSteps} inner step(s), ${t.family}${images}`;
}

function libtensorflowVersion(): string {
  const b = tf.backend() as unknown as { binding?: { TF_Version?: string } };
  return b.binding?.TF_Version ?? '?';
}

/** Run the self-test; prints as it goes and returns the figures. Never throws for a failed check. */
export async function runSelfTest(options: SelfTestOptions = {}): Promise<SelfTestReport> {
  const out = options.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const logger = options.logger ?? silentLogger;
  const spec = options.spec ?? SELF_TEST_SPEC;
  const shards = options.shards ?? 3;
  if (!Number.isInteger(shards) || shards < 1) throw new RangeError(`self-test shards must be a whole number >= 1, got ${shards}`);
  const tasksPerShard = options.tasksPerShard ?? spec.outer.shardSize;
  if (!Number.isInteger(tasksPerShard) || tasksPerShard < 1) throw new RangeError(`self-test tasksPerShard must be a whole number >= 1, got ${tasksPerShard}`);
  const problems: string[] = [];
  const shardMs: number[] = [];
  let warmupMs = NaN;
  let backend: BackendInfo | undefined;
  // report() reads these before they are set (an early failure): as const they would be in the TDZ.
  /* eslint-disable prefer-const */
  let gpu: GpuInfo | undefined;
  let path: SelfTestReport['path'];
  /* eslint-enable prefer-const */
  const report = (): SelfTestReport => {
    const ok = problems.length === 0;
    const m = median(shardMs);
    const tasksPerSec = shardMs.length > 0 && m > 0 ? (tasksPerShard * 1000) / m : 0;
    if (shardMs.length > 0) out(`result:   ${tasksPerSec.toFixed(2)} tasks/s (median of ${shardMs.length} timed shard(s) of ${tasksPerShard} tasks: ${sec(m)})`);
    for (const p of problems) out(`problem:  ${p}`);
    out(`self-test: ${ok ? 'ok' : 'FAILED'}`);
    return { ok, problems, backend, gpu, path, tasksPerShard, warmupMs, shardMs, tasksPerSec };
  };

  out(`metaloop-worker ${WORKER_VERSION} self-test (node ${process.version}, ${process.platform}-${process.arch})`);
  try {
    backend = await selectBackend({ ...(options.backend ? { require: options.backend } : {}), logger });
  } catch (err) {
    problems.push(`no backend: ${(err as Error).message}`);
    return report();
  }
  for (const t of backend.tried) out(`skipped:  ${t.name}: ${t.error}`);
  out(`backend:  ${backend.name}, device ${backend.device}${backend.name === 'tensorflow' ? `, libtensorflow ${libtensorflowVersion()}` : ''}`);
  gpu = await resolveGpu(backend, options.gpu, logger);
  out(`gpu:      ${describeGpuLine(gpu)}`);
  if (options.requireGpu && !gpu) problems.push('no GPU in use (--require-gpu): see docs/gpu.md, "When the worker says no GPU"');

  const run = compileRun(spec);
  const vectorised = run.batchedInner !== undefined && run.batchByDefault();
  path = vectorised ? 'vectorised' : 'per-task';
  out(`workload: ${workload(spec)}, ${tasksPerShard} tasks/shard`);
  out(`path:     ${vectorised ? 'vectorised across the tasks of a shard (the GPU default)' : 'one task at a time (the CPU default; vectorised Conv4 is the default on a GPU)'}`);

  const params = initParams(spec).data;
  let seed = 0;
  const shard = async (): Promise<number> => {
    const seeds = Array.from({ length: tasksPerShard }, () => 0x5e1f_0000 + seed++);
    const t0 = performance.now();
    const r = (await computeShard(spec, params, { kind: 'train', taskSeeds: seeds })) as TrainShardResult;
    const ms = performance.now() - t0;
    let finite = Number.isFinite(r.preLossSum) && Number.isFinite(r.postLossSum);
    let nonzero = false;
    for (const g of r.grad) {
      if (!Number.isFinite(g)) finite = false;
      else if (g !== 0) nonzero = true;
    }
    if (!finite) throw new InstallError('the meta-gradient or a loss is not finite');
    if (!nonzero) throw new InstallError('the meta-gradient is all zero');
    return ms;
  };
  try {
    warmupMs = await shard();
    out(`warm-up:  ${tasksPerShard} tasks in ${sec(warmupMs)} (first shard: kernel setup${gpu ? ', cuDNN autotuning' : ''}; not counted)`);
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < shards; i++) {
      const ms = await shard();
      shardMs.push(ms);
      out(`shard ${i + 1}:  ${tasksPerShard} tasks in ${sec(ms)} (${((tasksPerShard * 1000) / ms).toFixed(2)} tasks/s)`);
    }
    const leaked = tf.memory().numTensors - tensors;
    if (leaked !== 0) problems.push(`${leaked} tensor(s) leaked over ${shards} shard(s)`);
  } catch (err) {
    problems.push(`shard failed: ${(err as Error).message}`);
  }
  return report();
}

/**
 * Backend timing on a run spec (a measurement tool: the worker does NOT choose its backend by it;
 * a choice by timing differs between workers under load and broke bitwise determinism, see
 * run-backend.ts). Without a native backend a worker has two JS-hosted ones, and
 * which is faster depends on the model: wasm (XNNPACK) wins on convolutions, the pure-JS cpu
 * backend can win on tiny MLPs where per-kernel overhead dominates. calibrateBackend times shards
 * of one spec (its model, task sizes, algorithm, shard size and θ) on each candidate and leaves the
 * faster active: what to pin in a spec's `workers.backend` for a cluster of such workers.
 *
 * Per candidate: one warm-up task (JIT, XNNPACK operator creation, first allocations), then timed
 * shards of the spec's shard size (capped) until `measureMs` or `shards` is reached. A candidate
 * whose warm-up task alone takes longer than `skipFactor` × the best per-task time so far is not
 * measured further (a Conv4 shard on cpu would otherwise cost seconds to lose).
 */
import './tfjs-setup.js';
import { silentLogger, type Logger, type RunSpec } from '@metaloop/shared';
import { selectBackend, type BackendInfo } from './backend.js';
import { computeShard } from './engine.js';
import { BackendError, type BackendName } from './errors.js';

export interface CalibrationOptions {
  /** Backends to compare, in order; default ['wasm', 'cpu']. */
  readonly candidates?: readonly Exclude<BackendName, 'tensorflow'>[];
  /** Timed shards per candidate at most; default 2. */
  readonly shards?: number;
  /** Stop timing a candidate after this much measured time; default 3000. */
  readonly measureMs?: number;
  /** Most tasks in one calibration shard; default 8. */
  readonly maxShardTasks?: number;
  /** Skip measuring a candidate whose warm-up task is this many times slower than the best per-task time; default 3. */
  readonly skipFactor?: number;
  readonly logger?: Logger;
}

export interface CandidateTiming {
  readonly backend: BackendName;
  /** Per-task wall time of the timed shards (the warm-up task's when skipped). */
  readonly msPerTask: number;
  readonly warmupMs: number;
  readonly tasksTimed: number;
  readonly skipped: boolean;
  readonly error?: string;
}

export interface Calibration {
  readonly chosen: BackendInfo;
  readonly timings: readonly CandidateTiming[];
  readonly elapsedMs: number;
}

/** Seeds for calibration tasks: fixed, far from the small seeds tests and runs use. */
const SEED_BASE = 0x5eed_0000;

async function time(spec: RunSpec, params: Float32Array, tasks: number, offset: number): Promise<number> {
  const seeds = Array.from({ length: tasks }, (_, i) => SEED_BASE + offset + i);
  const t0 = performance.now();
  await computeShard(spec, params, { kind: 'train', taskSeeds: seeds });
  return performance.now() - t0;
}

/** Time `spec` on each candidate backend and leave the fastest active. */
export async function calibrateBackend(spec: RunSpec, params: Float32Array, options: CalibrationOptions = {}): Promise<Calibration> {
  const logger = options.logger ?? silentLogger;
  const candidates = options.candidates ?? ['wasm', 'cpu'];
  const maxShards = options.shards ?? 2;
  const measureMs = options.measureMs ?? 3000;
  const skipFactor = options.skipFactor ?? 3;
  if (!(skipFactor > 0)) throw new RangeError(`calibration skipFactor must be > 0, got ${skipFactor}`);
  const shardTasks = Math.max(1, Math.min(spec.outer.shardSize, options.maxShardTasks ?? 8));
  const t0 = performance.now();
  const timings: CandidateTiming[] = [];
  const infos = new Map<BackendName, BackendInfo>();
  let best = Infinity;
  for (const name of candidates) {
    try {
      infos.set(name, await selectBackend({ require: name }));
      const warmupMs = await time(spec, params, 1, 0);
      if (warmupMs > skipFactor * best) {
        timings.push({ backend: name, msPerTask: warmupMs, warmupMs, tasksTimed: 0, skipped: true });
        continue;
      }
      let ms = 0;
      let tasks = 0;
      for (let s = 0; s < maxShards && (s === 0 || ms < measureMs); s++) {
        ms += await time(spec, params, shardTasks, 1 + tasks);
        tasks += shardTasks;
      }
      const msPerTask = ms / tasks;
      best = Math.min(best, msPerTask);
      timings.push({ backend: name, msPerTask, warmupMs, tasksTimed: tasks, skipped: false });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      timings.push({ backend: name, msPerTask: Infinity, warmupMs: Infinity, tasksTimed: 0, skipped: true, error });
    }
  }
  // A skipped candidate was already slower than the best one in its warm-up: it cannot win.
  const winner = timings.reduce<CandidateTiming | undefined>((w, t) => (!t.skipped && (!w || t.msPerTask < w.msPerTask) ? t : w), undefined);
  if (!winner) {
    throw new BackendError(
      `backend calibration failed on every candidate: ${timings.map((t) => `${t.backend}: ${t.error}`).join('; ')}`,
      'any',
      timings.map((t) => ({ name: t.backend, error: t.error ?? '' })),
    );
  }
  const chosen = await selectBackend({ require: winner.backend as Exclude<BackendName, 'tensorflow'> });
  const elapsedMs = performance.now() - t0;
  logger.info('backend calibrated', {
    model: spec.model.kind,
    chosen: chosen.name,
    device: chosen.device,
    elapsedMs: Math.round(elapsedMs),
    ...Object.fromEntries(timings.map((t) => [`${t.backend}MsPerTask`, Number.isFinite(t.msPerTask) ? Number(t.msPerTask.toFixed(2)) : t.error])),
  });
  return { chosen, timings, elapsedMs };
}

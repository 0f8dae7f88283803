/**
 * Worker metric definitions (`metaloop_worker_*`). Every series carries the worker id through the
 * registry's default label `worker` (set here when `workerId` is given), so per-worker panels work
 * whatever the scrape config calls the target. Labels stay bounded: `run`, `backend`, `device`.
 * docs/metrics.md lists every name; keep it in step with this file.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FAST_BUCKETS_SECONDS, STEP_BUCKETS_SECONDS } from './coordinator-metrics.js';

/** tf.memory() as the worker reports it; sampled at scrape time. */
export interface TensorMemory {
  numTensors: number;
  numBytes: number;
}

export interface WorkerMetricsOptions {
  /** Adds `worker="<id>"` to every series of the registry (including the default process metrics). */
  workerId?: string;
  /** Called at each scrape to fill metaloop_worker_tfjs_tensors / _bytes (e.g. `() => tf.memory()`). */
  tensorMemory?: () => TensorMemory | undefined;
}

export interface WorkerMetrics {
  readonly registry: Registry;
  readonly shards: Counter<'run'>;
  readonly tasks: Counter<'run'>;
  readonly shardFailures: Counter<'run'>;
  /** Shards handed back for a retry after a transient failure (e.g. parameters not found yet). */
  readonly shardRetries: Counter<'run'>;
  /** Shards handed back without computing: this worker's copy of the run's dataset is missing or differs. */
  readonly shardRefusals: Counter<'run'>;
  readonly innerLoopDuration: Histogram;
  readonly backpropDuration: Histogram;
  readonly shardDuration: Histogram;
  readonly paramFetchDuration: Histogram;
  readonly paramCacheHits: Counter;
  readonly paramCacheMisses: Counter;
  readonly tfjsTensors: Gauge;
  readonly tfjsBytes: Gauge;
  readonly backendInfo: Gauge<'backend' | 'device'>;
  readonly gpuInfo: Gauge<'gpu' | 'memory_bytes' | 'driver' | 'compute_capability'>;
  /** Sets the info metric for the backend in use (replaces a previous one). */
  setBackend(backend: string, device: string): void;
  /** Sets the info metric for the GPU in use (replaces a previous one); name 'no GPU' on a CPU. */
  setGpu(gpu: { name: string; memoryBytes: number; driver: string; computeCapability: string }): void;
  /** Pre-creates a run's counters at 0 so their rates exist before the first shard completes. */
  initRun(run: string): void;
  /** Records one completed shard. */
  recordShard(run: string, s: { tasks: number; seconds: number; innerLoopSeconds?: number; backpropSeconds?: number }): void;
  /** Records one parameter-version lookup: a cache hit, or a miss with the fetch time. */
  recordParamFetch(hit: boolean, seconds?: number): void;
}

export function createWorkerMetrics(registry: Registry, options: WorkerMetricsOptions = {}): WorkerMetrics {
  if (options.workerId !== undefined) registry.setDefaultLabels({ worker: options.workerId });
  const registers = [registry];
  const run = ['run'] as const;
  const shards = new Counter({ name: 'metaloop_worker_shards_total', help: 'Shards this worker computed and published.', labelNames: run, registers });
  const tasks = new Counter({ name: 'metaloop_worker_tasks_total', help: 'Tasks (inner loops + meta-gradients) this worker computed.', labelNames: run, registers });
  const shardFailures = new Counter({
    name: 'metaloop_worker_shard_failures_total',
    help: 'Shards this worker failed to compute (nak-ed for another worker).',
    labelNames: run,
    registers,
  });
  const shardRetries = new Counter({
    name: 'metaloop_worker_shard_retries_total',
    help: 'Shards this worker handed back to be retried after a transient failure (parameters or run record not found yet, a publish failed).',
    labelNames: run,
    registers,
  });
  const shardRefusals = new Counter({
    name: 'metaloop_worker_shard_refusals_total',
    help: "Shards this worker handed back without computing them because its copy of the run's dataset is missing or hashes differently (the coordinator re-assigns them to other workers).",
    labelNames: run,
    registers,
  });
  const innerLoopDuration = new Histogram({
    name: 'metaloop_worker_inner_loop_duration_seconds',
    help: 'Compute time of one evaluation shard: inner-loop adaptation on the support sets and query scoring, no outer backprop.',
    buckets: STEP_BUCKETS_SECONDS,
    registers,
  });
  const backpropDuration = new Histogram({
    name: 'metaloop_worker_backprop_duration_seconds',
    help: 'Compute time of one training shard: inner loop plus the backprop of the query loss through it (the meta-gradient).',
    buckets: STEP_BUCKETS_SECONDS,
    registers,
  });
  const shardDuration = new Histogram({
    name: 'metaloop_worker_shard_duration_seconds',
    help: 'Total time of one shard, from receipt to result published.',
    buckets: STEP_BUCKETS_SECONDS,
    registers,
  });
  const paramFetchDuration = new Histogram({
    name: 'metaloop_worker_param_fetch_duration_seconds',
    help: 'Time to fetch a parameter version not yet in the local cache.',
    buckets: FAST_BUCKETS_SECONDS,
    registers,
  });
  const paramCacheHits = new Counter({ name: 'metaloop_worker_param_cache_hits_total', help: 'Parameter-version lookups served from the local cache.', registers });
  const paramCacheMisses = new Counter({ name: 'metaloop_worker_param_cache_misses_total', help: 'Parameter-version lookups that had to fetch.', registers });
  const sample = (pick: (m: TensorMemory) => number) =>
    function (this: Gauge) {
      const m = options.tensorMemory?.();
      if (m) this.set(pick(m));
    };
  const tfjsTensors = new Gauge({
    name: 'metaloop_worker_tfjs_tensors',
    help: 'Live tfjs tensors (tf.memory().numTensors); flat across steps when nothing leaks.',
    registers,
    collect: sample((m) => m.numTensors),
  });
  const tfjsBytes = new Gauge({
    name: 'metaloop_worker_tfjs_bytes',
    help: 'Bytes held by live tfjs tensors (tf.memory().numBytes).',
    registers,
    collect: sample((m) => m.numBytes),
  });
  const backendInfo = new Gauge({
    name: 'metaloop_worker_backend_info',
    help: 'Always 1; labels name the tfjs backend in use (tensorflow, wasm, cpu …) and the device.',
    labelNames: ['backend', 'device'] as const,
    registers,
  });
  const gpuInfo = new Gauge({
    name: 'metaloop_worker_gpu_info',
    help: "Always 1; labels name the GPU the worker computes on ('no GPU' on a CPU), its memory in bytes, driver and compute capability.",
    labelNames: ['gpu', 'memory_bytes', 'driver', 'compute_capability'] as const,
    registers,
  });
  paramCacheHits.inc(0);
  paramCacheMisses.inc(0);

  return {
    registry, shards, tasks, shardFailures, shardRetries, shardRefusals, innerLoopDuration, backpropDuration, shardDuration, paramFetchDuration,
    paramCacheHits, paramCacheMisses, tfjsTensors, tfjsBytes, backendInfo, gpuInfo,
    setBackend(backend, device) {
      backendInfo.reset();
      backendInfo.set({ backend, device }, 1);
    },
    setGpu({ name, memoryBytes, driver, computeCapability }) {
      gpuInfo.reset();
      gpuInfo.set({ gpu: name, memory_bytes: String(memoryBytes), driver, compute_capability: computeCapability }, 1);
    },
    initRun(r) {
      for (const c of [shards, tasks, shardFailures, shardRetries, shardRefusals]) c.inc({ run: r }, 0);
    },
    recordShard(r, { tasks: n, seconds, innerLoopSeconds, backpropSeconds }) {
      shards.inc({ run: r });
      tasks.inc({ run: r }, n);
      shardDuration.observe(seconds);
      if (innerLoopSeconds !== undefined) innerLoopDuration.observe(innerLoopSeconds);
      if (backpropSeconds !== undefined) backpropDuration.observe(backpropSeconds);
    },
    recordParamFetch(hit, seconds) {
      if (hit) {
        paramCacheHits.inc();
      } else {
        paramCacheMisses.inc();
        if (seconds !== undefined) paramFetchDuration.observe(seconds);
      }
    },
  };
}

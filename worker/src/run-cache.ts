/**
 * What a worker keeps of the runs it serves: each run's spec (by spec revision, from its run
 * record) and its latest θ, keyed by (coordinator session, version), for the 16 runs used last.
 * A spec is compiled once here, so an unsupported model, task or algorithm fails its first shard.
 */
import { fromBundle, isRlTask, metaloop, paramLayout, specFromJson, type Logger, type RunSpec, type WorkerMetrics, type WorkerTransport } from '@metaloop/shared';
import { compileRun } from './engine.js';
import type { DataGuard } from './data-guard.js';
import { DataRefusedError, DatasetError, errorText, ShardError } from './errors.js';
import { rlComputePath } from './rl/shard.js';
import type { RunBackends } from './run-backend.js';

interface CachedSpec {
  readonly revision: number;
  readonly spec: RunSpec;
}

interface CachedParams {
  /** The coordinator session that published it ('' on the queue path): θ is keyed by (session, version). */
  readonly session: string;
  readonly version: number;
  readonly data: Float32Array;
}

/** Runs whose spec and latest θ stay cached (least recently used beyond that are dropped). */
const CACHED_RUNS = 16;

function touch<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > CACHED_RUNS) map.delete(map.keys().next().value as K);
}

const now = () => performance.now();

export class RunCache {
  private readonly specs = new Map<string, CachedSpec>();
  private readonly params = new Map<string, CachedParams>();

  constructor(
    private readonly transport: Pick<WorkerTransport, 'getRun' | 'getParams'>,
    private readonly log: Logger,
    private readonly metrics: WorkerMetrics | undefined,
    private readonly backends: RunBackends,
    /** The worker's checks of its data copies (data-guard.ts): a run is compiled only on data that matches. */
    private readonly guard: DataGuard,
  ) {}

  /** The spec of the shard's run (fetched once per spec revision). */
  async specFor(shard: metaloop.Shard, msgId: string): Promise<RunSpec> {
    const cached = this.specs.get(shard.runId);
    if (cached && cached.revision === shard.specRevision) return cached.spec;
    let bytes: Uint8Array | null;
    try {
      bytes = await this.transport.getRun(shard.runId);
    } catch (err) {
      throw new ShardError(`fetching run record ${shard.runId} failed: ${errorText(err)}`, msgId, true, { cause: err });
    }
    if (!bytes) throw new ShardError(`run ${shard.runId} has no run record`, msgId, false);
    const record = metaloop.RunRecord.decode(bytes);
    const spec = specFromJson(record.specJson, `run spec of ${shard.runId}`);
    this.guard.check(spec); // before the family reads any data
    let run: ReturnType<typeof compileRun> | ReturnType<typeof rlComputePath>;
    try {
      run = isRlTask(spec.task) ? rlComputePath(spec, spec.task) : compileRun(spec); // unsupported model/task/algorithm fails here, once per run
    } catch (err) {
      // Data this worker cannot use (missing, corrupt, too few images): hand the shard back.
      if (err instanceof DatasetError) throw new DataRefusedError(`refusing the run: ${err.message}`, err.path, undefined, undefined, { cause: err });
      throw err;
    }
    if (!('path' in run)) this.guard.bind(spec, run.family);
    // Which code computes this run's shards: the fused host path (MLPs), the meta-RL host path, or tfjs on the backend.
    this.log.info('run compute path', {
      runId: shard.runId,
      path: 'path' in run ? run.path : typeof run.fused === 'string' ? 'tfjs' : 'fused-mlp',
      ...(!('path' in run) && typeof run.fused === 'string' ? { backend: this.backends.backendFor(spec), notFused: run.fused } : {}),
    });
    touch(this.specs, shard.runId, { revision: shard.specRevision, spec });
    this.metrics?.initRun(shard.runId);
    return spec;
  }

  /** θ of the shard's version, from the cache when this session's version is there. */
  async paramsFor(shard: metaloop.Shard, session: string, spec: RunSpec, msgId: string): Promise<Float32Array> {
    const cached = this.params.get(shard.runId);
    if (cached && cached.session === session && cached.version === shard.paramVersion) {
      this.metrics?.recordParamFetch(true);
      return cached.data;
    }
    let bytes: Uint8Array;
    const f0 = now();
    try {
      bytes = await this.transport.getParams(shard.runId, shard.paramVersion);
      this.metrics?.recordParamFetch(false, (now() - f0) / 1000);
    } catch (err) {
      // Not found is retried too: the version may not be there yet (a resumed coordinator). A
      // version that is really gone (a stale copy) is reported on its last delivery (worker.ts
      // failed()), so the retries stay bounded by MaxDeliver.
      throw new ShardError(`fetching θ v${shard.paramVersion} of ${shard.runId} failed: ${errorText(err)}`, msgId, true, { cause: err });
    }
    const { data } = fromBundle(metaloop.TensorBundle.decode(bytes), paramLayout(spec));
    // The newest version of the newest session: a new session (a resumed coordinator) starts over.
    if (!cached || cached.session !== session || shard.paramVersion > cached.version) {
      touch(this.params, shard.runId, { session, version: shard.paramVersion, data });
    }
    return data;
  }
}

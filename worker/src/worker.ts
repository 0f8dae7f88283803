/**
 * Worker: pulls shards from the work queue, rebuilds their tasks from seeds, computes the summed
 * meta-gradient (or held-out losses) and publishes a ShardResult, then acks. Heartbeats go out
 * every heartbeatMs. Lifecycle: `await Worker.create(options)`, `run()` (once), `close()` (idempotent).
 */
import { randomBytes } from 'node:crypto';
import {
  extendIntervalMs,
  fromBundle,
  isRlTask,
  metaloop,
  paramLayout,
  shardMsgId,
  subjects,
  toBundle,
  validateSpec,
  type Logger,
  type RunSpec,
  type WorkMessage,
} from '@metaloop/shared';
import { selectBackend, type BackendInfo } from './backend.js';
import { compileRun, computeShard } from './engine.js';
import { DataGuard } from './data-guard.js';
import { DataRefusedError, DatasetError, ShardAbortedError, ShardError, WorkerStateError } from './errors.js';
import { rlComputePath, rlEvalFields, rlTrainFields } from './rl/shard.js';
import { gpuOrNone, heartbeatGpuFields, resolveGpu, type GpuInfo } from './gpu.js';
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './options.js';
import { RunBackends } from './run-backend.js';

export type WorkerState = 'created' | 'running' | 'closing' | 'closed';

export interface WorkerStats {
  readonly shardsDone: number;
  readonly tasksDone: number;
  readonly shardsFailed: number;
  readonly shardsRetried: number;
  /**
   * Direct dispatch: shards dropped because their coordinator session is gone (another session
   * assigned work of the run: a restarted coordinator re-issued them). Neither retried nor failed.
   */
  readonly shardsDropped: number;
  /** Shards handed back without computing: this worker's copy of the run's dataset is missing or differs. */
  readonly shardsRefused: number;
}

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

const now = () => performance.now();

function touch<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > CACHED_RUNS) map.delete(map.keys().next().value as K);
}

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** A shard is checked before any work: no tasks, or absurd amounts of work, are refused (an error result). */
function checkShard(shard: metaloop.Shard, spec: RunSpec, msgId: string): void {
  const n = shard.taskSeeds.length;
  // The spec schema's largest meta-batch; shards of tests and benchmarks may exceed the spec's own.
  const most = Math.max(100_000, spec.outer.metaBatch);
  const problem =
    n === 0 || n > most
      ? `${n} task seeds (at most ${most} for this run)`
      : shard.evalInnerSteps > 1000
        ? `${shard.evalInnerSteps} eval inner steps (at most 1000)`
        : '';
  if (problem) throw new ShardError(`invalid shard ${msgId}: ${problem}`, msgId, false);
}

export class Worker {
  readonly id: string;
  /** The backend each run's tfjs shards are computed on: from its spec, never from timing (run-backend.ts). */
  private readonly backends: RunBackends;
  private readonly o: CompiledWorkerOptions;
  private readonly log: Logger;
  private stateValue: WorkerState = 'created';
  private runCalled = false;
  /** Stops consuming. */
  private readonly stop = new AbortController();
  /** Abandons the shard in progress (close() timed out). */
  private readonly abandon = new AbortController();
  private runLoop: Promise<void> | null = null;
  private closePromise: Promise<void> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private busy = false;
  private readonly specs = new Map<string, CachedSpec>();
  private readonly params = new Map<string, CachedParams>();
  private stats = { shardsDone: 0, tasksDone: 0, shardsFailed: 0, shardsRetried: 0, shardsDropped: 0, shardsRefused: 0 };
  /** Checks this worker's copies of each run's datasets before it computes (data-guard.ts). */
  private readonly guard = new DataGuard();
  private rateMark = { at: now(), tasks: 0 };
  /**
   * Result msg ids are unique per computation (`<run>.<step>.<shard>.<worker>.<session>.<n>`): the
   * results stream de-duplicates msg ids, and a recomputed shard (after an error result, a lost
   * lease or a coordinator restart) must reach the coordinator, which keeps one per shard itself.
   */
  private readonly session = randomBytes(3).toString('hex');
  private published = 0;

  private constructor(
    o: CompiledWorkerOptions,
    backend: BackendInfo,
    /** The GPU the worker computes on (gpu.ts); undefined on a CPU. */
    readonly gpu: GpuInfo | undefined,
  ) {
    this.o = o;
    this.id = o.id;
    this.backends = new RunBackends(backend, o.backend);
    this.log = o.logger;
  }

  static async create(options: WorkerOptions): Promise<Worker> {
    const o = compileWorkerOptions(options);
    const backend = await selectBackend({ require: o.backend, logger: o.logger });
    o.logger.info('worker created', { id: o.id, backend: backend.name, device: backend.device, transport: o.transport.address });
    o.metrics?.setBackend(backend.name, backend.device);
    const gpu = await resolveGpu(backend, o.gpu, o.logger);
    o.metrics?.setGpu(gpuOrNone(gpu));
    return new Worker(o, backend, gpu);
  }

  /** The backend computing shards now (the one the last tfjs shard's run required). */
  get backend(): BackendInfo {
    return this.backends.current;
  }

  get state(): WorkerState {
    return this.stateValue;
  }

  get statistics(): WorkerStats {
    return { ...this.stats };
  }

  /** Consume shards until close(). Resolves when the loop has stopped. Refuses a second call. */
  run(): Promise<void> {
    if (this.runCalled) return Promise.reject(new WorkerStateError('Worker.run() was already called', this.stateValue));
    if (this.stateValue !== 'created') return Promise.reject(new WorkerStateError(`Worker.run() after close()`, this.stateValue));
    this.runCalled = true;
    this.stateValue = 'running';
    this.startHeartbeats();
    this.runLoop = this.loop();
    return this.runLoop;
  }

  /** Stop consuming, let the current shard finish (up to closeTimeoutMs, then abandon it), stop heartbeats. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closing';
    this.stop.abort();
    try {
      if (this.runLoop) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = new Promise<'timeout'>((r) => {
          timer = setTimeout(() => r('timeout'), this.o.closeTimeoutMs);
        });
        const first = await Promise.race([this.runLoop.then(() => 'done' as const, () => 'done' as const), timedOut]);
        clearTimeout(timer);
        if (first === 'timeout') {
          this.log.warn('close: abandoning the shard in progress', { closeTimeoutMs: this.o.closeTimeoutMs });
          this.abandon.abort();
          await this.runLoop.catch(() => undefined);
        }
      }
    } finally {
      this.stopHeartbeats();
      this.stateValue = 'closed';
      this.log.info('worker closed', { id: this.id, ...this.stats });
    }
  }

  private async loop(): Promise<void> {
    const work =
      this.o.dispatch === 'direct'
        ? this.o.transport.consumeAssigned(this.id, {
            signal: this.stop.signal,
            onStale: (runId, dropped) => {
              this.stats.shardsDropped += dropped;
              this.log.info('shards of a superseded coordinator session dropped', { runId, dropped });
            },
          })
        : this.o.transport.consumeWork({ signal: this.stop.signal, pollMs: this.o.pollMs });
    try {
      for await (const msg of work) {
        if (this.stop.signal.aborted) {
          msg.nak(0); // arrived while closing: give it straight back
          break;
        }
        this.busy = true;
        try {
          await this.handle(msg);
        } finally {
          this.busy = false;
        }
      }
    } catch (err) {
      if (!this.stop.signal.aborted) {
        this.log.error('work queue failed', { error: errorText(err) });
        throw err;
      }
    }
  }

  private async specFor(shard: metaloop.Shard, msgId: string): Promise<RunSpec> {
    const cached = this.specs.get(shard.runId);
    if (cached && cached.revision === shard.specRevision) return cached.spec;
    let bytes: Uint8Array | null;
    try {
      bytes = await this.o.transport.getRun(shard.runId);
    } catch (err) {
      throw new ShardError(`fetching run record ${shard.runId} failed: ${errorText(err)}`, msgId, true, { cause: err });
    }
    if (!bytes) throw new ShardError(`run ${shard.runId} has no run record`, msgId, false);
    const record = metaloop.RunRecord.decode(bytes);
    const spec = validateSpec(JSON.parse(record.specJson) as unknown, `run spec of ${shard.runId}`);
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
    this.o.metrics?.initRun(shard.runId);
    return spec;
  }

  private async paramsFor(shard: metaloop.Shard, session: string, spec: RunSpec, msgId: string): Promise<Float32Array> {
    const cached = this.params.get(shard.runId);
    if (cached && cached.session === session && cached.version === shard.paramVersion) {
      this.o.metrics?.recordParamFetch(true);
      return cached.data;
    }
    let bytes: Uint8Array;
    const f0 = now();
    try {
      bytes = await this.o.transport.getParams(shard.runId, shard.paramVersion);
      this.o.metrics?.recordParamFetch(false, (now() - f0) / 1000);
    } catch (err) {
      // Not found is retried too: the version may not be stored yet (a store write still in
      // flight, a resumed coordinator). A version that is really gone (a stale copy) is reported
      // on its last delivery (see fail()), so the retries stay bounded by MaxDeliver.
      throw new ShardError(`fetching θ v${shard.paramVersion} of ${shard.runId} failed: ${errorText(err)}`, msgId, true, { cause: err });
    }
    const { data } = fromBundle(metaloop.TensorBundle.decode(bytes), paramLayout(spec));
    // The newest version of the newest session: a new session (a resumed coordinator) starts over.
    if (!cached || cached.session !== session || shard.paramVersion > cached.version) {
      touch(this.params, shard.runId, { session, version: shard.paramVersion, data });
    }
    return data;
  }

  private async handle(msg: WorkMessage): Promise<void> {
    let shard: metaloop.Shard;
    try {
      shard = metaloop.Shard.decode(msg.data);
      if (shard.runId !== msg.runId) throw new Error(`shard names run ${JSON.stringify(shard.runId)} but came on ${msg.runId}`);
    } catch (err) {
      this.log.warn('malformed shard dropped', { runId: msg.runId, error: errorText(err) });
      msg.term();
      return;
    }
    const kind = shard.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 'eval' : 'train';
    const msgId = shardMsgId(shard.runId, shard.step, shard.shard, kind);
    const resultId = () => `${msgId}.${this.id}.${this.session}.${++this.published}`;
    if (this.dropStale(msg, msgId, 'before computing')) return;
    // In-progress acks well inside the lease the work consumer really has (its owner sets it).
    const workingMs = extendIntervalMs(this.o.workingMs, msg.leaseMs);
    const t0 = now();
    let fetchMs = 0;
    const base = {
      runId: shard.runId,
      step: shard.step,
      shard: shard.shard,
      paramVersion: shard.paramVersion,
      workerId: this.id,
      kind: shard.kind,
      backend: this.backend.name,
      delivery: msg.deliveryCount,
    };
    let working: ReturnType<typeof setInterval> | undefined;
    try {
      const spec = await this.specFor(shard, msgId);
      this.guard.check(spec); // a stat per dataset: the copy may have changed since the last shard
      checkShard(shard, spec, msgId);
      const theta = await this.paramsFor(shard, msg.session ?? '', spec, msgId);
      fetchMs = now() - t0;
      working = setInterval(() => msg.working(), workingMs);
      this.log.debug('shard started', { msgId, delivery: msg.deliveryCount });
      if (this.o.slowShardMs > 0) await new Promise((r) => setTimeout(r, this.o.slowShardMs));
      {
        // The run's backend (its spec's workers.backend, else the one selected at start), switched to if needed.
        const before = this.backends.current;
        const info = await this.backends.use(spec, msgId);
        base.backend = info.name;
        if (info !== before) this.o.metrics?.setBackend(info.name, info.device);
      }
      let lastWorking = now();
      let counted = 0;
      const c0 = now();
      const r = await computeShard(
        spec,
        theta,
        { kind, taskSeeds: shard.taskSeeds, evalInnerSteps: shard.evalInnerSteps },
        {
          signal: this.abandon.signal,
          onTask: (done) => {
            this.stats.tasksDone += done - counted;
            counted = done;
            if (now() - lastWorking >= workingMs) {
              msg.working();
              lastWorking = now();
            }
          },
        },
      );
      const computeMs = now() - c0;
      clearInterval(working);
      working = undefined;
      const result =
        r.kind === 'train'
          ? { ...base, tasks: r.tasks, grad: toBundle({ layout: paramLayout(spec), data: r.grad }), preLossSum: r.preLossSum, postLossSum: r.postLossSum, ...rlTrainFields(r) }
          : {
              ...base,
              tasks: r.tasks,
              evalLossSums: r.evalLossSums,
              evalAccuracySums: r.evalAccuracySums ?? [],
              evalLossSqSums: r.evalLossSqSums,
              evalAccuracySqSums: r.evalAccuracySqSums ?? [],
              ...rlEvalFields(r),
            };
      await this.publish(shard.runId, resultId(), { ...result, computeMs, fetchMs }, msg);
      await msg.ack();
      this.stats.shardsDone++;
      // Train compute = inner loop + backprop through it (inseparable in second-order MAML);
      // eval compute = inner-loop adaptation and query scoring only.
      this.o.metrics?.recordShard(shard.runId, {
        tasks: r.tasks,
        seconds: (now() - t0) / 1000,
        ...(kind === 'train' ? { backpropSeconds: computeMs / 1000 } : { innerLoopSeconds: computeMs / 1000 }),
      });
      this.log.debug('shard done', { msgId, tasks: r.tasks, computeMs: Math.round(computeMs), fetchMs: Math.round(fetchMs) });
    } catch (err) {
      if (working) clearInterval(working);
      await this.fail(msg, msgId, resultId, base, err, fetchMs, now() - t0);
    }
  }

  private async publish(runId: string, msgId: string, result: metaloop.ShardResult.$Properties, msg: WorkMessage): Promise<void> {
    const bytes = metaloop.ShardResult.encode(result).finish();
    try {
      if (this.o.dispatch === 'direct') await this.sendDirect(runId, msgId, bytes, msg);
      else await this.o.transport.publishResult(runId, msgId, bytes);
    } catch (err) {
      throw new ShardError(`publishing the result of ${msgId} failed: ${errorText(err)}`, msgId, true, { cause: err });
    }
  }

  /**
   * Direct dispatch: send a computed result until the coordinator acks it. When it does not (no
   * coordinator answering: killed, restarting; NATS down) the same bytes go again every
   * retryDelayMs rather than the shard being recomputed, for up to 3 × resultAckMs; the sending
   * stops as soon as the shard's session is superseded (a restarted coordinator re-issued it: the
   * result is of no use) or the worker closes. Then the last error is thrown (fail() decides).
   */
  private async sendDirect(runId: string, msgId: string, bytes: Uint8Array, msg: WorkMessage): Promise<void> {
    const until = now() + 3 * this.o.resultAckMs;
    for (let sends = 1; ; sends++) {
      try {
        await this.o.transport.sendResult(runId, msgId, bytes, this.o.resultAckMs);
        return;
      } catch (err) {
        if (msg.stale?.() || this.stop.signal.aborted || now() + this.o.retryDelayMs >= until) throw err;
        this.log.info('result not acked, sending it again', { msgId, sends, error: errorText(err) });
        await new Promise<void>((r) => setTimeout(r, this.o.retryDelayMs));
        if (msg.stale?.()) throw err;
      }
    }
  }

  /** Direct dispatch: the shard's coordinator session is gone (superseded): drop it, neither retry nor report it. */
  private dropStale(msg: WorkMessage, msgId: string, why: string): boolean {
    if (!msg.stale?.()) return false;
    this.stats.shardsDropped++;
    this.log.info('shard of a superseded coordinator session dropped', { msgId, session: msg.session, why });
    msg.term();
    return true;
  }

  private async fail(
    msg: WorkMessage,
    msgId: string,
    resultId: () => string,
    base: metaloop.ShardResult.$Properties,
    err: unknown,
    fetchMs: number,
    elapsedMs: number,
  ): Promise<void> {
    if (err instanceof ShardAbortedError) {
      this.log.info('shard abandoned, handed back', { msgId, tasksDone: err.tasksDone });
      msg.nak(0);
      return;
    }
    if (this.dropStale(msg, msgId, errorText(err))) return;
    if (err instanceof DataRefusedError) {
      this.stats.shardsRefused++;
      this.o.metrics?.shardRefusals.inc({ run: base.runId ?? msg.runId });
      this.log.warn('shard refused: this copy of the run\'s data differs', { msgId, path: err.path, expected: err.expected, actual: err.actual ?? 'none' });
      try {
        await this.publish(base.runId ?? msg.runId, resultId(), { ...base, error: err.message, errorReason: 'data', fetchMs, computeMs: 0 }, msg);
        await msg.ack();
      } catch (pubErr) {
        this.log.warn('could not hand the refused shard back, will be retried', { msgId, error: errorText(pubErr) });
        msg.nak(this.o.retryDelayMs);
      }
      return;
    }
    // A transient failure is retried by redelivery, except on the last delivery: then it is
    // reported, so the coordinator can fail the run naming the shard and this error.
    const lastDelivery = msg.maxDeliver !== undefined && msg.deliveryCount >= msg.maxDeliver;
    if (err instanceof ShardError && err.transient && !lastDelivery) {
      this.stats.shardsRetried++;
      this.o.metrics?.shardRetries.inc({ run: base.runId ?? msg.runId });
      this.log.warn('shard failed, will be retried', { msgId, delivery: msg.deliveryCount, error: err.message });
      msg.nak(this.o.retryDelayMs);
      return;
    }
    this.stats.shardsFailed++;
    this.o.metrics?.shardFailures.inc({ run: base.runId ?? msg.runId });
    const text = errorText(err);
    this.log.error('shard failed', { msgId, error: text });
    try {
      await this.publish(base.runId ?? msg.runId, resultId(), { ...base, error: text, fetchMs, computeMs: elapsedMs - fetchMs }, msg);
      await msg.ack();
    } catch (pubErr) {
      this.log.warn('could not report the failure, will be retried', { msgId, error: errorText(pubErr) });
      msg.nak(this.o.retryDelayMs);
    }
  }

  private heartbeat(): Uint8Array {
    const t = now();
    const rate = t > this.rateMark.at ? ((this.stats.tasksDone - this.rateMark.tasks) * 1000) / (t - this.rateMark.at) : 0;
    this.rateMark = { at: t, tasks: this.stats.tasksDone };
    const state = this.stateValue === 'closing' || this.stateValue === 'closed' ? 'draining' : this.busy ? 'busy' : 'ready';
    return metaloop.Heartbeat.encode({
      workerId: this.id,
      backend: this.backend.name,
      device: this.backend.device,
      version: this.o.version,
      load: this.busy ? 1 : 0,
      shardsDone: this.stats.shardsDone,
      tasksDone: this.stats.tasksDone,
      tasksPerSec: rate,
      timestampMs: Date.now(),
      pid: this.o.pid,
      hostname: this.o.hostname,
      state,
      datasets: this.guard.held(),
      ...heartbeatGpuFields(this.gpu),
    }).finish();
  }

  private beat(): void {
    try {
      this.o.transport.publish(subjects(this.o.prefix).heartbeat(), this.heartbeat());
    } catch (err) {
      this.log.debug('heartbeat not sent', { error: errorText(err) });
    }
  }

  private startHeartbeats(): void {
    this.beat();
    this.heartbeatTimer = setInterval(() => this.beat(), this.o.heartbeatMs);
    this.heartbeatTimer.unref?.();
  }

  private stopHeartbeats(): void {
    if (this.heartbeatTimer === undefined) return;
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.beat(); // last word: draining
  }
}


/**
 * Worker: takes shards (direct dispatch: every shard of a run's round it is given, as one batch;
 * queue dispatch: one at a time from the work queue), rebuilds their tasks from seeds, computes
 * the summed meta-gradient (or held-out losses) of each — a batch in one pass (engine.ts
 * computeShards) — and returns a ShardResult per shard: on direct dispatch all of a batch in one
 * request whose reply acks each, on the queue one publish each, then acks. Heartbeats (heartbeat.ts)
 * go out every heartbeatMs. Lifecycle: `await Worker.create(options)`, `run()` (once), `close()` (idempotent).
 */
import { randomBytes } from 'node:crypto';
import {
  extendIntervalMs,
  kindFromProto,
  kindToProto,
  metaloop,
  paramLayout,
  shardMsgId,
  toBundle,
  type Logger,
  type RunSpec,
  type ShardKindName,
  type WorkMessage,
} from '@metaloop/shared';
import { selectBackend, type BackendInfo } from './backend.js';
import { DataGuard } from './data-guard.js';
import { computeShards, type ShardComputation } from './engine.js';
import { DataRefusedError, errorText, ShardAbortedError, ShardError, WorkerStateError } from './errors.js';
import { gpuOrNone, resolveGpu, type GpuInfo } from './gpu.js';
import { Heartbeats } from './heartbeat.js';
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './options.js';
import { RunBackends } from './run-backend.js';
import { RunCache } from './run-cache.js';
import { rlEvalFields, rlTrainFields } from './rl/shard.js';
import { sendUntilAcked } from './send-results.js';

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

const now = () => performance.now();

/** One shard of a batch on its way through the worker. */
interface Item {
  readonly msg: WorkMessage;
  readonly shard: metaloop.Shard;
  readonly kind: ShardKindName;
  readonly msgId: string;
  /** The result's fields known before computing. */
  readonly base: metaloop.ShardResult.$Properties;
}

/** The work items of a consumer, one at a time, as batches of one (the queue). */
async function* singly(items: AsyncIterable<WorkMessage>): AsyncIterable<WorkMessage[]> {
  for await (const m of items) yield [m];
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
  private readonly heartbeats: Heartbeats;
  private busy = false;
  /** The runs' specs and latest θ (run-cache.ts). */
  private readonly cache: RunCache;
  private stats = { shardsDone: 0, tasksDone: 0, shardsFailed: 0, shardsRetried: 0, shardsDropped: 0, shardsRefused: 0 };
  /** Checks this worker's copies of each run's datasets before it computes (data-guard.ts). */
  private readonly guard = new DataGuard();
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
    this.cache = new RunCache(o.transport, o.logger, o.metrics, this.backends, this.guard);
    this.heartbeats = new Heartbeats(o, gpu, () => ({
      backend: this.backend,
      draining: this.stateValue === 'closing' || this.stateValue === 'closed',
      busy: this.busy,
      shardsDone: this.stats.shardsDone,
      tasksDone: this.stats.tasksDone,
      datasets: this.guard.held(),
    }));
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
    this.heartbeats.start();
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
      this.heartbeats.stop();
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
        : singly(this.o.transport.consumeWork({ signal: this.stop.signal, pollMs: this.o.pollMs }));
    try {
      for await (const batch of work) {
        if (this.stop.signal.aborted) {
          for (const m of batch) m.nak(0); // arrived while closing: give it straight back
          break;
        }
        this.busy = true;
        try {
          await this.handle(batch);
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

  /** A work item as an Item, or null (malformed: dropped; superseded session: dropped). */
  private item(msg: WorkMessage): Item | null {
    let shard: metaloop.Shard;
    let kind: ShardKindName;
    try {
      shard = metaloop.Shard.decode(msg.data);
      if (shard.runId !== msg.runId) throw new ShardError(`shard names run ${JSON.stringify(shard.runId)} but came on ${msg.runId}`, '', false);
      const known = kindFromProto(shard.kind);
      if (known === null) throw new ShardError(`shard has unknown kind ${String(shard.kind)} (this worker knows train and eval)`, '', false);
      kind = known;
    } catch (err) {
      this.log.warn('malformed shard dropped', { runId: msg.runId, error: errorText(err) });
      msg.term();
      return null;
    }
    const msgId = shardMsgId(shard.runId, shard.step, shard.shard, kind);
    if (this.dropStale(msg, msgId, 'before computing')) return null;
    const base = {
      runId: shard.runId,
      step: shard.step,
      shard: shard.shard,
      paramVersion: shard.paramVersion,
      workerId: this.id,
      kind: kindToProto(kind),
      backend: this.backend.name,
      delivery: msg.deliveryCount,
    };
    return { msg, shard, kind, msgId, base };
  }

  /**
   * One batch (the shards of one run a coordinator gave this worker at once; on the queue one
   * shard): checked, computed in one pass per θ version and kind, and their results returned
   * together. A shard that cannot be computed fails alone (retried, or an error result among the
   * others); the rest go on.
   */
  private async handle(msgs: readonly WorkMessage[]): Promise<void> {
    const items = msgs.map((m) => this.item(m)).filter((x): x is Item => x !== null);
    if (items.length === 0) return;
    const t0 = now();
    const first = items[0]!;
    // Queue: in-progress acks well inside the lease the work consumer really has (its owner sets
    // it). Direct dispatch: the coordinator holds the lease, nothing to extend.
    const workingMs = Math.min(...items.map((it) => extendIntervalMs(this.o.workingMs, it.msg.leaseMs)));
    const working = this.o.dispatch === 'queue' ? setInterval(() => items.forEach((it) => it.msg.working()), workingMs) : undefined;
    /** Results to return, by item; items that failed transiently were given back (nak). */
    const results = new Map<Item, metaloop.ShardResult.$Properties>();
    let fetchMs = 0;
    let computeMs = 0;
    try {
      let spec: RunSpec;
      try {
        spec = await this.cache.specFor(first.shard, first.msgId);
        this.guard.check(spec); // a stat per dataset: the copy may have changed since the last batch
      } catch (err) {
        for (const it of items) this.failed(it, err, results, now() - t0);
        return await this.respond(items, results, fetchMs, now() - t0);
      }
      const ready: Item[] = [];
      for (const it of items) {
        try {
          checkShard(it.shard, spec, it.msgId);
          ready.push(it);
        } catch (err) {
          this.failed(it, err, results, now() - t0);
        }
      }
      // θ once per version (a batch normally has one).
      const thetas = new Map<number, Float32Array>();
      const computable: Item[] = [];
      for (const it of ready) {
        const v = it.shard.paramVersion;
        try {
          if (!thetas.has(v)) thetas.set(v, await this.cache.paramsFor(it.shard, it.msg.session ?? '', spec, it.msgId));
          computable.push(it);
        } catch (err) {
          this.failed(it, err, results, now() - t0);
        }
      }
      fetchMs = now() - t0;
      if (computable.length > 0) {
        this.log.debug('shard started', { msgIds: computable.map((it) => it.msgId), delivery: computable.map((it) => it.msg.deliveryCount) });
        if (this.o.slowShardMs > 0) await new Promise((r) => setTimeout(r, this.o.slowShardMs * computable.length));
        let backend = this.backend.name;
        try {
          // The run's backend (its spec's workers.backend, else the one selected at start), switched to if needed.
          const before = this.backends.current;
          const info = await this.backends.use(spec, first.msgId);
          backend = info.name;
          if (info !== before) this.o.metrics?.setBackend(info.name, info.device);
        } catch (err) {
          for (const it of computable) this.failed(it, err, results, now() - t0);
          return await this.respond(items, results, fetchMs, now() - t0);
        }
        const c0 = now();
        await this.compute(spec, computable, thetas, backend, results, t0);
        computeMs = now() - c0;
      }
      await this.respond(items, results, fetchMs, computeMs);
    } finally {
      clearInterval(working);
    }
  }

  /** Compute the items in one pass per (θ version, kind, eval steps); their results go into `results`. */
  private async compute(
    spec: RunSpec,
    items: readonly Item[],
    thetas: ReadonlyMap<number, Float32Array>,
    backend: string,
    results: Map<Item, metaloop.ShardResult.$Properties>,
    t0: number,
  ): Promise<void> {
    const groups = new Map<string, Item[]>();
    for (const it of items) {
      const key = `${it.shard.paramVersion}/${it.kind}/${it.shard.evalInnerSteps}`;
      const g = groups.get(key);
      if (g) g.push(it);
      else groups.set(key, [it]);
    }
    const layout = paramLayout(spec);
    for (const group of groups.values()) {
      let counted = 0;
      let computed: ShardComputation[];
      try {
        computed = await computeShards(
          spec,
          thetas.get(group[0]!.shard.paramVersion)!,
          group.map((it) => ({ kind: it.kind, taskSeeds: it.shard.taskSeeds, evalInnerSteps: it.shard.evalInnerSteps })),
          {
            signal: this.abandon.signal,
            onTask: (done) => {
              this.stats.tasksDone += done - counted;
              counted = done;
            },
          },
        );
      } catch (err) {
        for (const it of group) this.failed(it, err, results, now() - t0);
        continue;
      }
      group.forEach((it, i) => {
        const r = computed[i]!;
        const base = { ...it.base, backend, tasks: r.tasks };
        results.set(
          it,
          r.kind === 'train'
            ? { ...base, grad: toBundle({ layout, data: r.grad }), preLossSum: r.preLossSum, postLossSum: r.postLossSum, ...rlTrainFields(r) }
            : {
                ...base,
                evalLossSums: r.evalLossSums,
                evalAccuracySums: r.evalAccuracySums ?? [],
                evalLossSqSums: r.evalLossSqSums,
                evalAccuracySqSums: r.evalAccuracySqSums ?? [],
                ...rlEvalFields(r),
              },
        );
      });
    }
  }

  /**
   * Return the batch's results (computed and error results): on direct dispatch one request for
   * all, on the queue one publish each; then ack them. A result that cannot be sent gives its shard
   * back for a retry (a local retry on direct dispatch, a redelivery on the queue).
   */
  private async respond(items: readonly Item[], results: Map<Item, metaloop.ShardResult.$Properties>, fetchMs: number, computeMs: number): Promise<void> {
    const out = items.filter((it) => results.has(it));
    if (out.length === 0) return;
    // Per shard: its share of the batch's fetch and compute time.
    const share = (ms: number) => ms / out.length;
    const encoded = out.map((it) =>
      metaloop.ShardResult.encode({ computeMs: share(computeMs), fetchMs: share(fetchMs), ...results.get(it)! }).finish(),
    );
    const runId = out[0]!.shard.runId;
    try {
      if (this.o.dispatch === 'direct') {
        await sendUntilAcked({
          transport: this.o.transport,
          workerId: this.id,
          runId,
          results: encoded,
          ids: out.map((it) => it.msgId),
          resultAckMs: this.o.resultAckMs,
          retryDelayMs: this.o.retryDelayMs,
          giveUp: () => this.stop.signal.aborted || out.every((it) => it.msg.stale?.() === true),
          log: this.log,
        });
      }
      else for (let i = 0; i < out.length; i++) await this.o.transport.publishResult(runId, this.resultId(out[i]!), encoded[i]!);
    } catch (err) {
      const error = new ShardError(`returning the results of ${out.map((it) => it.msgId).join(', ')} failed: ${errorText(err)}`, out[0]!.msgId, true, { cause: err });
      for (const it of out) {
        if (this.dropStale(it.msg, it.msgId, errorText(err))) continue;
        this.log.warn('could not return the result, will be retried', { msgId: it.msgId, error: error.message });
        it.msg.nak(this.o.retryDelayMs);
      }
      return;
    }
    for (const it of out) {
      await it.msg.ack();
      const r = results.get(it)!;
      if (r.error) continue;
      this.stats.shardsDone++;
      // Train compute = inner loop + backprop through it (inseparable in second-order MAML);
      // eval compute = inner-loop adaptation and query scoring only.
      this.o.metrics?.recordShard(it.shard.runId, {
        tasks: r.tasks ?? 0,
        seconds: share(fetchMs + computeMs) / 1000,
        ...(it.kind === 'train' ? { backpropSeconds: share(computeMs) / 1000 } : { innerLoopSeconds: share(computeMs) / 1000 }),
      });
    }
    this.log.debug('shard done', { msgIds: out.map((it) => it.msgId), computeMs: Math.round(computeMs), fetchMs: Math.round(fetchMs) });
  }

  /** The result msg id of one computation: `<run>.<step>.<shard>.<worker>.<session>.<n>` (unique, see `session`). */
  private resultId(it: Item): string {
    return `${it.msgId}.${this.id}.${this.session}.${++this.published}`;
  }

  /** Direct dispatch: the shard's coordinator session is gone (superseded): drop it, neither retry nor report it. */
  private dropStale(msg: WorkMessage, msgId: string, why: string): boolean {
    if (!msg.stale?.()) return false;
    this.stats.shardsDropped++;
    this.log.info('shard of a superseded coordinator session dropped', { msgId, session: msg.session, why });
    msg.term();
    return true;
  }

  /**
   * One shard of a batch failed: abandoned (closing) or transient → given back for a retry (except
   * on its last delivery); otherwise an error result joins the batch's results, so the coordinator
   * can fail the run naming the shard and this error.
   */
  private failed(it: Item, err: unknown, results: Map<Item, metaloop.ShardResult.$Properties>, elapsedMs: number): void {
    const { msg, msgId, base } = it;
    if (err instanceof ShardAbortedError) {
      this.log.info('shard abandoned, handed back', { msgId, tasksDone: err.tasksDone });
      msg.nak(0);
      return;
    }
    if (this.dropStale(msg, msgId, errorText(err))) return;
    if (err instanceof DataRefusedError) {
      // Never computed on other data: the shard goes back with reason "data", and the coordinator gives it to another worker.
      this.stats.shardsRefused++;
      this.o.metrics?.shardRefusals.inc({ run: base.runId ?? msg.runId });
      this.log.warn("shard refused: this copy of the run's data differs", { msgId, path: err.path, expected: err.expected, actual: err.actual ?? 'none' });
      results.set(it, { ...base, error: err.message, errorReason: 'data', computeMs: 0 });
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
    results.set(it, { ...base, error: text, computeMs: elapsedMs });
  }
}


/**
 * One active run: the synchronous outer loop of DESIGN.md. θ_t is stored once per version, the
 * meta-batch goes out as fixed-size shards of task seeds, accepted results are summed in shard
 * order, the outer optimizer makes θ_{t+1}; held-out evaluation, checkpoints, the run record in
 * KV and progress events along the way.
 */
import { randomBytes } from 'node:crypto';
import {
  initParams,
  metaloop,
  paramLayout,
  taskSeed,
  toBundle,
  type Logger,
  type RunSpec,
  type Subjects,
  type TensorSpec,
  type Transport,
} from '@metaloop/shared';
import { RejectCounter, shardSizes, StepCollector, type Verdict } from './aggregator.js';
import { RunCancelledError } from './errors.js';
import { createOptimizer, type OuterOptimizer } from './optimizer.js';
import {
  encodeCheckpoint,
  evalSummary,
  paramsSha256,
  stateToProto,
  type CheckpointData,
  type RunStateName,
} from './records.js';
import { RunHistory } from './history.js';
import type { RunObserver } from './observe.js';
import { ShardRound } from './rounds.js';

export interface RunContext {
  readonly transport: Transport;
  readonly subjects: Subjects;
  readonly logger: Logger;
  readonly resultTimeoutMs: number;
  readonly recordIntervalMs: number;
  readonly maxShardFailures: number;
  readonly rejects: RejectCounter;
  /** Prometheus metrics (CoordinatorObservability), when served. */
  readonly observer?: RunObserver | undefined;
}

export interface RunInit {
  readonly runId: string;
  readonly spec: RunSpec;
  readonly createdMs: number;
  /** Resume from this checkpoint (else start from θ_0). */
  readonly checkpoint?: CheckpointData | undefined;
  /** The stored record of a resumed run (losses, last eval, time so far). */
  readonly previous?: metaloop.RunRecord | undefined;
  /** The stored history of a resumed run (truncated to the checkpoint's step). */
  readonly history?: RunHistory | undefined;
}

/** Longest time between two writes of a running run's history. */
const HISTORY_INTERVAL_MS = 10_000;

/** Thrown inside the loop when the coordinator closes: the run stays active in KV. */
class Stopped extends Error {
  override readonly name = 'Stopped';
}

async function retry<T>(what: string, logger: Logger, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 5 || signal.aborted) throw err;
      logger.warn(`${what} failed; retrying`, { attempt, error: String(err) });
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

export class RunLoop {
  readonly runId: string;
  readonly spec: RunSpec;
  readonly specJson: string;
  private readonly layout: TensorSpec[];
  private readonly params: Float32Array;
  private readonly optimizer: OuterOptimizer;
  private stateName: RunStateName = 'pending';
  private step: number;
  private preLoss = 0;
  private postLoss = 0;
  private lastEval: metaloop.IEvalSummary | null = null;
  private evaluatedAt = -1;
  private checkpointStep = 0;
  private error = '';
  private readonly createdMs: number;
  private startedMs = 0;
  private finishedMs = 0;
  private secondsBefore = 0;
  private runningSince: number | null = null;
  private stepsThisSession = 0;
  private sessionSeconds = 0;
  private round: ShardRound | null = null;
  private readonly stopper = new AbortController();
  private resumeGate: { promise: Promise<void>; release: () => void } | null = null;
  private recordChain: Promise<void> = Promise.resolve();
  private lastRecordMs = 0;
  private done: Promise<void> | null = null;
  /** Work msgId tag of this session: '' for a fresh run, `.s<random>` for a resumed one. */
  private readonly session: string;
  /** Losses of every step, evaluations and checkpoints (stored beside the checkpoints). */
  readonly history: RunHistory;
  private historyChain: Promise<void> = Promise.resolve();
  private lastHistoryMs = 0;

  constructor(
    private readonly ctx: RunContext,
    init: RunInit,
  ) {
    this.runId = init.runId;
    this.spec = init.spec;
    this.specJson = JSON.stringify(init.spec);
    this.layout = paramLayout(init.spec);
    this.createdMs = init.createdMs;
    const cp = init.checkpoint;
    this.params = cp ? Float32Array.from(cp.params) : initParams(init.spec).data;
    this.optimizer = createOptimizer(init.spec, this.params.length, cp?.optimizer);
    this.step = cp?.step ?? 0;
    this.session = init.previous ? `.s${randomBytes(3).toString('hex')}` : '';
    this.checkpointStep = cp?.step ?? 0;
    this.history = init.history ?? new RunHistory(this.runId);
    this.history.truncate(this.step);
    const prev = init.previous;
    if (prev && cp) {
      this.preLoss = prev.preLoss;
      this.postLoss = prev.postLoss;
      this.lastEval = prev.lastEval ?? null;
      this.evaluatedAt = prev.lastEval?.step ?? -1;
      this.startedMs = prev.startedMs;
      this.secondsBefore = prev.seconds;
    }
  }

  get state(): RunStateName {
    return this.stateName;
  }

  /** Start the loop (once); resolves when the run has ended or the coordinator stopped it. */
  start(): Promise<void> {
    this.done ??= this.drive();
    return this.done;
  }

  /** Route one decoded result of this run. */
  offer(result: metaloop.ShardResult): Verdict {
    if (!this.round) {
      return { accepted: false, reason: 'stale', detail: `run ${this.runId} is not waiting for results (${this.stateName})` };
    }
    return this.round.offer(result);
  }

  pause(): void {
    if (this.stateName !== 'running' && this.stateName !== 'pending') return;
    let release = () => {};
    const promise = new Promise<void>((r) => (release = r));
    this.resumeGate = { promise, release };
    this.setState('paused');
  }

  resume(): void {
    if (this.stateName !== 'paused') return;
    const gate = this.resumeGate;
    this.resumeGate = null;
    this.setState('running');
    gate?.release();
  }

  /** Cancel: stop at once, drop queued shards, record CANCELLED. Resolves when the loop ended. */
  async cancel(): Promise<void> {
    if (!this.stopper.signal.aborted) this.stopper.abort(new RunCancelledError(this.runId));
    this.resumeGate?.release();
    await this.start();
  }

  /** Stop without changing the recorded state (coordinator shutdown: a restart resumes it). */
  async stop(): Promise<void> {
    if (!this.stopper.signal.aborted) this.stopper.abort(new Stopped('coordinator closing'));
    this.resumeGate?.release();
    if (this.done) await this.done;
    await this.recordChain;
  }

  // ---- the loop ----

  private async drive(): Promise<void> {
    const { transport, logger } = this.ctx;
    const T = this.spec.outer.steps;
    const signal = this.stopper.signal;
    try {
      this.ctx.observer?.runStarted(this.runId, this.spec, this.step, this.params.length);
      if (this.startedMs === 0) this.startedMs = Date.now();
      // Workers read the spec from the record: write it before the first shard goes out.
      if (this.stateName === 'pending') this.setState('running');
      else this.writeRecord();
      await this.recordChain;
      await retry('storing parameters', logger, signal, () => transport.putParams(this.runId, this.step, this.encodeParams()));
      while (this.step < T) {
        await this.gate();
        await this.trainStep();
        if (this.evalDue()) await this.evaluate();
        if (this.checkpointDue()) await this.checkpoint();
        if (Date.now() - this.lastRecordMs >= this.ctx.recordIntervalMs) this.writeRecord();
        if (Date.now() - this.lastHistoryMs >= HISTORY_INTERVAL_MS) this.writeHistory();
      }
      if (this.evaluatedAt !== this.step) await this.evaluate();
      if (this.checkpointStep !== this.step && this.spec.checkpoint.every > 0) await this.checkpoint();
      this.finishedMs = Date.now();
      this.setState('succeeded');
      logger.info('run succeeded', { run: this.runId, steps: this.step, seconds: this.seconds().toFixed(1) });
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err;
      if (reason instanceof Stopped) {
        this.pauseClock();
        logger.info('run left active for a restart', { run: this.runId, step: this.step });
      } else if (reason instanceof RunCancelledError) {
        this.finishedMs = Date.now();
        this.setState('cancelled');
        await transport.purgeWork(this.runId).catch(() => {});
        logger.info('run cancelled', { run: this.runId, step: this.step });
      } else {
        this.error = (reason as Error)?.message ?? String(reason);
        this.finishedMs = Date.now();
        this.setState('failed');
        await transport.purgeWork(this.runId).catch(() => {});
        logger.error('run failed', { run: this.runId, step: this.step, error: this.error });
      }
    } finally {
      this.round = null;
      this.writeHistory();
      await this.recordChain;
      await this.historyChain;
    }
  }

  private async gate(): Promise<void> {
    const signal = this.stopper.signal;
    while (this.resumeGate && !signal.aborted) await this.resumeGate.promise;
    signal.throwIfAborted();
  }

  private evalDue(): boolean {
    const every = this.spec.eval.every;
    return this.step === this.spec.outer.steps || (every > 0 && this.step % every === 0);
  }

  private checkpointDue(): boolean {
    const every = this.spec.checkpoint.every;
    return every > 0 && this.step % every === 0;
  }

  private async collect(collector: StepCollector, shard: (i: number) => metaloop.IShard): Promise<void> {
    const round = new ShardRound({
      transport: this.ctx.transport,
      logger: this.ctx.logger,
      collector,
      shard,
      resultTimeoutMs: this.ctx.resultTimeoutMs,
      maxShardFailures: this.ctx.maxShardFailures,
      session: this.session,
      signal: this.stopper.signal,
      observer: this.ctx.observer,
    });
    this.round = round;
    try {
      await round.run();
    } finally {
      this.round = null;
    }
  }

  private async trainStep(): Promise<void> {
    const { transport, logger } = this.ctx;
    const t = this.step;
    const t0 = performance.now();
    const { metaBatch, shardSize } = this.spec.outer;
    const sizes = shardSizes(metaBatch, shardSize);
    const collector = new StepCollector({
      runId: this.runId,
      step: t,
      paramVersion: t,
      kind: metaloop.ShardKind.SHARD_KIND_TRAIN,
      shardTasks: sizes,
      layout: this.layout,
      evalInnerSteps: 0,
    });
    await this.collect(collector, (i) => ({
      runId: this.runId,
      step: t,
      shard: i,
      paramVersion: t,
      kind: metaloop.ShardKind.SHARD_KIND_TRAIN,
      taskSeeds: Array.from({ length: sizes[i]! }, (_, k) => taskSeed(this.spec.seed, 'train', t, i * shardSize + k)),
      metaBatch,
    }));
    const a0 = performance.now();
    const grad = collector.gradientSum();
    for (let i = 0; i < grad.length; i++) grad[i] = grad[i]! / metaBatch;
    const u0 = performance.now();
    this.optimizer.step(this.params, grad);
    const u1 = performance.now();
    const losses = collector.lossSums();
    this.preLoss = losses.pre / metaBatch;
    this.postLoss = losses.post / metaBatch;
    this.step = t + 1;
    this.stepsThisSession++;
    const signal = this.stopper.signal;
    await retry('storing parameters', logger, signal, () => transport.putParams(this.runId, this.step, this.encodeParams()));
    if (t >= 1) transport.deleteParams(this.runId, t - 1).catch(() => {});
    this.ctx.observer?.stepDone(this.runId, {
      step: this.step,
      seconds: (performance.now() - t0) / 1000,
      aggregationSeconds: (u0 - a0) / 1000,
      updateSeconds: (u1 - u0) / 1000,
      preLoss: this.preLoss,
      postLoss: this.postLoss,
    });
    this.history.addStep(this.step, this.preLoss, this.postLoss);
    this.emit({ kind: metaloop.Event.Kind.KIND_STEP, preLoss: this.preLoss, postLoss: this.postLoss });
  }

  private async evaluate(): Promise<void> {
    const t = this.step;
    const { tasks, innerSteps } = this.spec.eval;
    const shardSize = this.spec.outer.shardSize;
    const sizes = shardSizes(tasks, shardSize);
    const collector = new StepCollector({
      runId: this.runId,
      step: t,
      paramVersion: t,
      kind: metaloop.ShardKind.SHARD_KIND_EVAL,
      shardTasks: sizes,
      layout: this.layout,
      evalInnerSteps: innerSteps,
    });
    const started = Date.now();
    await this.collect(collector, (i) => ({
      runId: this.runId,
      step: t,
      shard: i,
      paramVersion: t,
      kind: metaloop.ShardKind.SHARD_KIND_EVAL,
      // The same held-out tasks at every evaluation: seeds of the 'eval' domain, step 0.
      taskSeeds: Array.from({ length: sizes[i]! }, (_, k) => taskSeed(this.spec.seed, 'eval', 0, i * shardSize + k)),
      evalInnerSteps: innerSteps,
      metaBatch: tasks,
    }));
    this.lastEval = evalSummary(t, tasks, collector.evalSums());
    this.evaluatedAt = t;
    this.ctx.logger.info('evaluation', {
      run: this.runId,
      step: t,
      preLoss: this.lastEval.preLoss,
      postLoss: this.lastEval.postLoss,
      ...(this.lastEval.accuracy?.length ? { accuracy: this.lastEval.accuracy } : {}),
      ci95: this.lastEval.ci95,
      ms: Date.now() - started,
    });
    this.ctx.observer?.evaluated(this.runId, this.lastEval);
    this.history.addEval(this.lastEval);
    this.emit({ kind: metaloop.Event.Kind.KIND_EVAL, eval: this.lastEval });
    this.writeRecord();
    this.writeHistory();
  }

  private async checkpoint(): Promise<void> {
    const { transport, logger } = this.ctx;
    const signal = this.stopper.signal;
    const bytes = encodeCheckpoint(
      {
        runId: this.runId,
        step: this.step,
        specJson: this.specJson,
        params: this.params,
        optimizer: this.optimizer.state(),
        createdMs: Date.now(),
      },
      this.layout,
    );
    await retry('writing a checkpoint', logger, signal, () => transport.putCheckpoint(this.runId, this.step, bytes));
    this.checkpointStep = this.step;
    this.history.addCheckpoint(this.step);
    this.writeHistory();
    this.ctx.observer?.checkpointed(this.runId);
    const steps = (await transport.listCheckpoints(this.runId)).sort((a, b) => a - b);
    for (const old of steps.slice(0, Math.max(0, steps.length - this.spec.checkpoint.keep))) {
      await transport.deleteCheckpoint(this.runId, old).catch(() => {});
    }
    this.emit({ kind: metaloop.Event.Kind.KIND_CHECKPOINT, message: `checkpoint at step ${this.step}` });
    this.writeRecord();
  }

  // ---- state, record, events ----

  private pauseClock(): void {
    if (this.runningSince !== null) {
      this.sessionSeconds += (Date.now() - this.runningSince) / 1000;
      this.runningSince = null;
    }
  }

  private setState(state: RunStateName): void {
    if (state === 'running' && this.runningSince === null) this.runningSince = Date.now();
    if (state !== 'running') this.pauseClock();
    this.stateName = state;
    this.ctx.observer?.runState(this.runId, state);
    this.emit({ kind: metaloop.Event.Kind.KIND_STATE, state: stateToProto(state) });
    this.writeRecord();
  }

  /** Wall time spent running (all sessions). */
  seconds(): number {
    const live = this.runningSince === null ? 0 : (Date.now() - this.runningSince) / 1000;
    return this.secondsBefore + this.sessionSeconds + live;
  }

  private rates(): { stepsPerSec: number; tasksPerSec: number } {
    const s = this.sessionSeconds + (this.runningSince === null ? 0 : (Date.now() - this.runningSince) / 1000);
    const stepsPerSec = s > 0 ? this.stepsThisSession / s : 0;
    return { stepsPerSec, tasksPerSec: stepsPerSec * this.spec.outer.metaBatch };
  }

  private encodeParams(): Uint8Array {
    return metaloop.TensorBundle.encode(toBundle({ layout: this.layout, data: this.params })).finish();
  }

  /** The run record as of now. */
  record(): metaloop.RunRecord {
    const { stepsPerSec, tasksPerSec } = this.rates();
    return metaloop.RunRecord.create({
      runId: this.runId,
      name: this.spec.name,
      specJson: this.specJson,
      state: stateToProto(this.stateName),
      step: this.step,
      steps: this.spec.outer.steps,
      paramVersion: this.step,
      preLoss: this.preLoss,
      postLoss: this.postLoss,
      lastEval: this.lastEval,
      error: this.error,
      createdMs: this.createdMs,
      updatedMs: Date.now(),
      startedMs: this.startedMs,
      finishedMs: this.finishedMs,
      checkpointStep: this.checkpointStep,
      stepsPerSec,
      tasksPerSec,
      paramsSha256: paramsSha256(this.params),
      seconds: this.seconds(),
    });
  }

  /** Queue a write of the current record (writes stay in order; the latest content wins). */
  writeRecord(): void {
    this.lastRecordMs = Date.now();
    this.recordChain = this.recordChain.then(async () => {
      try {
        await this.ctx.transport.putRun(this.runId, metaloop.RunRecord.encode(this.record()).finish());
      } catch (err) {
        this.ctx.logger.warn('writing the run record failed', { run: this.runId, error: String(err) });
      }
    });
  }

  /** Write the record if none was written for `recordIntervalMs` (called by a coordinator timer). */
  refreshRecord(): void {
    if (this.stateName === 'running' && Date.now() - this.lastRecordMs >= this.ctx.recordIntervalMs) this.writeRecord();
  }

  /** Queue a write of the history when it changed (in order; failures are logged, never fatal). */
  writeHistory(): void {
    this.lastHistoryMs = Date.now();
    if (!this.history.changed) return;
    const bytes = this.history.encode();
    this.historyChain = this.historyChain.then(async () => {
      try {
        await this.ctx.transport.putHistory(this.runId, bytes);
      } catch (err) {
        this.ctx.logger.warn('writing the run history failed', { run: this.runId, error: String(err) });
      }
    });
  }

  /** Waits until queued record writes are done. */
  flush(): Promise<void> {
    return this.recordChain;
  }

  private emit(event: metaloop.IEvent): void {
    const { stepsPerSec, tasksPerSec } = this.rates();
    try {
      this.ctx.transport.publish(
        this.ctx.subjects.events(this.runId),
        metaloop.Event.encode({
          runId: this.runId,
          step: this.step,
          timestampMs: Date.now(),
          stepsPerSec,
          tasksPerSec,
          ...event,
        }).finish(),
      );
    } catch (err) {
      this.ctx.logger.debug('publishing an event failed', { run: this.runId, error: String(err) });
    }
  }
}

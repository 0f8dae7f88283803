/**
 * One active run: the synchronous outer loop (docs/architecture.md). θ_t is stored once per version, the
 * meta-batch goes out as fixed-size shards of task seeds, accepted results are summed in shard
 * order, the outer optimizer makes θ_{t+1}; held-out evaluation, checkpoints, the run record in
 * KV and progress events along the way. Rounds in flight: round-book.ts (their shards:
 * run-shards.ts); an evaluation and its progress: run-eval.ts; record, history, events and
 * clock: run-report.ts.
 */
import { randomBytes } from 'node:crypto';
import { encodeTensorBundle, initParams, isRlTask, metaloop, paramLayout, specToJson, type RunSpec, type TensorSpec } from '@metaloop/shared';
import { RunCancelledError } from './errors.js';
import { createOptimizer, type OuterOptimizer } from './optimizer.js';
import { encodeCheckpoint, samplerState, storeCheckpoint, type CheckpointData } from './checkpoint.js';
import { paramsSha256, stateToProto, type RunStateName } from './run-state.js';
import { RunHistory } from './history.js';
import { Evaluation } from './run-eval.js';
import { RunClock, RunReporter } from './run-report.js';
import { RoundBook } from './round-book.js';
import type { RunContext } from './run-context.js';
import { retry } from './run-store.js';
import type { Offered, RejectReason, Verdict } from './result.js';
import { isChecked, ResultValidator, resultShape } from './validate.js';

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
  /** Share of the workers relative to other runs (default: the spec's workers.priority). */
  readonly priority?: number | undefined;
}

/** Longest time between two writes of a running run's history. */
const HISTORY_INTERVAL_MS = 10_000;

/** Thrown inside the loop when the coordinator closes: the run stays active in KV. */
class Stopped extends Error {
  override readonly name = 'Stopped';
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
  /** A meta-RL run: its step figures are returns (preReturn, postReturn), not losses. */
  private readonly rl: boolean;
  private preReturn = 0;
  private postReturn = 0;
  private lastEval: metaloop.IEvalSummary | null = null;
  private evaluatedAt = -1;
  /** The evaluation in progress, if any. */
  private evaluation: Evaluation | null = null;
  private checkpointStep = 0;
  private error = '';
  private readonly createdMs: number;
  private startedMs = 0;
  private finishedMs = 0;
  private readonly clock: RunClock;
  private readonly reporter: RunReporter;
  /** The rounds in flight (round-book.ts). */
  private readonly rounds: RoundBook;
  private readonly validator: ResultValidator;
  readonly priority: number;
  private redeliveries = 0;
  private readonly rejected = new Map<RejectReason, number>();
  private staleness = { sum: 0, count: 0, max: 0 };
  private readonly stopper = new AbortController();
  /** Set while paused: resolves (and is cleared) on resume, cancel or stop. */
  private pausedUntil: { resumed: Promise<void>; release: () => void } | null = null;
  private done: Promise<void> | null = null;
  /** Work msgId tag of this session: '' for a fresh run, `.s<random>` for a resumed one. */
  private readonly session: string;
  /** Losses of every step, evaluations and checkpoints (stored beside the checkpoints). */
  readonly history: RunHistory;

  constructor(
    private readonly ctx: RunContext,
    init: RunInit,
  ) {
    this.runId = init.runId;
    this.spec = init.spec;
    this.specJson = specToJson(init.spec);
    this.layout = paramLayout(init.spec);
    this.rl = isRlTask(init.spec.task);
    this.createdMs = init.createdMs;
    const cp = init.checkpoint;
    this.params = cp ? Float32Array.from(cp.params) : initParams(init.spec).data;
    this.optimizer = createOptimizer(init.spec, this.params.length, cp?.optimizer);
    this.step = cp?.step ?? 0;
    this.validator = new ResultValidator(resultShape(this.runId, this.spec, this.layout));
    this.priority = init.priority || init.previous?.priority || init.spec.workers.priority;
    this.session = init.previous ? `.s${randomBytes(3).toString('hex')}` : '';
    this.checkpointStep = cp?.step ?? 0;
    this.history = init.history ?? new RunHistory(this.runId);
    this.history.truncate(this.step);
    if (!init.previous) this.history.addState(null, 'pending', 0, init.createdMs);
    const prev = init.previous;
    if (prev && cp) {
      this.preLoss = prev.preLoss;
      this.postLoss = prev.postLoss;
      this.preReturn = prev.preReturn;
      this.postReturn = prev.postReturn;
      this.lastEval = prev.lastEval ?? null;
      this.evaluatedAt = prev.lastEval?.step ?? -1;
      this.startedMs = prev.startedMs;
    }
    this.clock = new RunClock(prev && cp ? prev.seconds : 0);
    this.rounds = new RoundBook(
      { ctx, runId: this.runId, spec: this.spec, layout: this.layout, session: this.session, priority: this.priority, signal: this.stopper.signal },
      this.step,
    );
    this.reporter = new RunReporter(ctx, this.runId, this.history, () => this.record(), () => this.rates());
  }

  get state(): RunStateName {
    return this.stateName;
  }

  /** Start the loop (once); resolves when the run has ended or the coordinator stopped it. */
  start(): Promise<void> {
    this.done ??= this.drive();
    return this.done;
  }

  /**
   * Judge one decoded result of this run: validated once (shape, finiteness), then routed to the
   * round of its (kind, step); results of applied steps are duplicates, others stale.
   */
  offer(result: metaloop.ShardResult): Offered {
    const checked = this.validator.check(result);
    const kind = checked.kind;
    const pending = kind === undefined ? undefined : this.rounds.find(kind, result.step);
    if (!isChecked(checked)) {
      // A bad result for a shard being collected counts as one failure of that shard (re-issued).
      if (pending && pending.version === result.paramVersion) pending.round.rejected(result.shard, checked.reason, checked.detail);
      return this.rejectedAs({ accepted: false, reason: checked.reason, detail: checked.detail, shard: result.shard });
    }
    const r = checked;
    if (!pending) {
      const s = this.spec.workers.staleness;
      const evalKind = r.kind === 'eval';
      const done = evalKind ? r.step <= this.evaluatedAt : r.step < this.step;
      const plausible = evalKind ? r.version === r.step : r.step - r.version <= s;
      if (done && plausible && !r.error) {
        return this.rejectedAs({ accepted: false, reason: 'duplicate', detail: `${evalKind ? 'evaluation' : 'step'} ${r.step} already has every shard`, shard: r.shard });
      }
      return this.rejectedAs({
        accepted: false,
        reason: 'stale',
        detail: `result for ${r.kind} step ${r.step} (version ${r.version}); run ${this.runId} is at step ${this.step} (${this.stateName})`,
        shard: r.shard,
      });
    }
    const verdict = pending.round.offer(r);
    if (!verdict.accepted) return this.rejectedAs(verdict);
    if (r.kind === 'eval') this.evaluation?.accepted(r.shard);
    if (r.delivery > 1) {
      this.redeliveries++;
      this.ctx.observer?.resultRedelivered?.(this.runId);
    }
    const staleness = r.kind === 'eval' ? 0 : r.step - r.version;
    if (r.kind === 'train') {
      this.staleness.sum += staleness;
      this.staleness.count += 1;
      this.staleness.max = Math.max(this.staleness.max, staleness);
    }
    return { ...verdict, staleness };
  }

  private rejectedAs(v: Verdict & { accepted: false }): Offered {
    return v;
  }

  /** Count one rejected result of this run (the coordinator calls it for every reason). */
  countRejected(reason: RejectReason): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  pause(): void {
    if (this.stateName !== 'running' && this.stateName !== 'pending') return;
    this.ctx.fairShare?.leave(this.runId);
    let release = () => {};
    const resumed = new Promise<void>((r) => (release = r));
    this.pausedUntil = { resumed, release };
    this.setState('paused');
  }

  resume(): void {
    if (this.stateName !== 'paused') return;
    const paused = this.pausedUntil;
    this.pausedUntil = null;
    this.ctx.fairShare?.join(this.runId, this.priority);
    this.setState('running');
    paused?.release();
  }

  /** Cancel: stop at once, drop queued shards, record CANCELLED. Resolves when the loop ended. */
  async cancel(): Promise<void> {
    if (!this.stopper.signal.aborted) this.stopper.abort(new RunCancelledError(this.runId));
    this.pausedUntil?.release();
    await this.start();
  }

  /** Stop without changing the recorded state (coordinator shutdown: a restart resumes it). */
  async stop(): Promise<void> {
    if (!this.stopper.signal.aborted) this.stopper.abort(new Stopped('coordinator closing'));
    this.pausedUntil?.release();
    if (this.done) await this.done;
    await this.reporter.flush();
  }

  // ---- the loop ----

  private async drive(): Promise<void> {
    const { transport, logger } = this.ctx;
    const T = this.spec.outer.steps;
    const signal = this.stopper.signal;
    try {
      this.ctx.observer?.runStarted(this.runId, this.spec, this.step, this.params.length);
      if (!this.pausedUntil) this.ctx.fairShare?.join(this.runId, this.priority);
      if (this.startedMs === 0) this.startedMs = Date.now();
      // Workers read the spec from the record: write it before the first shard goes out.
      if (this.stateName === 'pending') this.setState('running');
      else this.writeRecord();
      await this.reporter.flush();
      await retry('publishing parameters', logger, signal, () => transport.putParams(this.runId, this.step, this.encodeParams()));
      while (this.step < T) {
        await this.waitWhilePaused();
        this.rounds.issueAhead(this.step);
        await this.trainStep();
        if (this.evalDue()) await this.evaluate();
        if (this.checkpointDue()) await this.checkpoint();
        if (this.reporter.recordDue()) this.writeRecord();
        if (Date.now() - this.reporter.lastHistoryMs >= HISTORY_INTERVAL_MS) this.writeHistory();
      }
      if (this.evaluatedAt !== this.step) await this.evaluate();
      if (this.checkpointStep !== this.step && this.spec.checkpoint.every > 0) await this.checkpoint();
      this.finishedMs = Date.now();
      this.setState('succeeded');
      logger.info('run succeeded', { run: this.runId, steps: this.step, seconds: this.seconds().toFixed(1) });
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : err;
      if (reason instanceof Stopped) {
        this.clock.pause();
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
      this.ctx.fairShare?.leave(this.runId);
      this.rounds.end(new Stopped('run loop ended'));
      this.writeHistory();
      await this.reporter.flushAll();
    }
  }

  /** Returns at once unless paused; else once resumed. Throws when the run was stopped or cancelled. */
  private async waitWhilePaused(): Promise<void> {
    const signal = this.stopper.signal;
    while (this.pausedUntil && !signal.aborted) await this.pausedUntil.resumed;
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

  private async trainStep(): Promise<void> {
    const { transport, logger } = this.ctx;
    const t = this.step;
    const t0 = performance.now();
    const { metaBatch } = this.spec.outer;
    const pending = this.rounds.takeTrain(t);
    await this.rounds.complete(pending);
    const collector = pending.collector;
    const a0 = performance.now();
    const grad = collector.gradientSum();
    for (let i = 0; i < grad.length; i++) grad[i] = grad[i]! / metaBatch;
    const u0 = performance.now();
    this.optimizer.step(this.params, grad);
    const u1 = performance.now();
    const losses = collector.lossSums();
    this.preLoss = losses.pre / metaBatch;
    this.postLoss = losses.post / metaBatch;
    const returns = this.rl ? collector.returnSums() : null;
    if (returns) {
      this.preReturn = returns.pre / metaBatch;
      this.postReturn = returns.post / metaBatch;
    }
    const rl = returns ? { pre: this.preReturn, post: this.postReturn } : undefined;
    this.step = t + 1;
    this.clock.stepsThisSession++;
    const signal = this.stopper.signal;
    // The broadcast is the live path; the durable copy only at checkpoints and the end (and for a
    // worker that missed the broadcast and asks for it: the transport's business).
    const durable = this.checkpointDue() || this.step === this.spec.outer.steps;
    // θ_{t+1} is broadcast synchronously inside putParams; the step's event and the next round's
    // assignments follow in this same turn, so all of it leaves in one socket write.
    const put = retry('storing parameters', logger, signal, () => transport.putParams(this.runId, this.step, this.encodeParams(), { durable }));
    put.catch(() => {}); // awaited below
    this.history.addStep(this.step, this.preLoss, this.postLoss, Date.now(), rl);
    this.emit({ kind: metaloop.Event.Kind.KIND_STEP, preLoss: this.preLoss, postLoss: this.postLoss, ...(rl ? { rl: true, preReturn: rl.pre, postReturn: rl.post } : {}) });
    if (this.nextIsTraining()) this.rounds.issueAhead(this.step);
    await put;
    // Keep the versions rounds in flight may still need (async mode: `staleness` more).
    const old = t - 1 - this.spec.workers.staleness;
    if (old >= 0) transport.deleteParams(this.runId, old).catch(() => {});
    this.ctx.observer?.stepDone(this.runId, {
      step: this.step,
      seconds: (performance.now() - t0) / 1000,
      aggregationSeconds: (u0 - a0) / 1000,
      updateSeconds: (u1 - u0) / 1000,
      preLoss: this.preLoss,
      postLoss: this.postLoss,
      ...(rl ? { returns: rl } : {}),
    });
  }

  /** The loop's next move is the next train step (no evaluation, checkpoint, pause or end first). */
  private nextIsTraining(): boolean {
    return this.step < this.spec.outer.steps && !this.evalDue() && !this.checkpointDue() && this.pausedUntil === null && !this.stopper.signal.aborted;
  }

  private async evaluate(): Promise<void> {
    const t = this.step;
    const { runId, spec, layout } = this;
    const evaluation = new Evaluation({ runId, spec, layout, step: t, logger: this.ctx.logger, report: (p) => this.evalProgress(p.done, p.total) });
    this.evaluation = evaluation;
    try {
      this.lastEval = await evaluation.run(this.rounds, this.clock);
    } finally {
      this.evaluation = null;
    }
    this.evaluatedAt = t;
    this.ctx.observer?.evaluated(this.runId, this.lastEval);
    this.history.addEval(this.lastEval);
    this.emit({ kind: metaloop.Event.Kind.KIND_EVAL, eval: this.lastEval });
    this.writeRecord();
    this.writeHistory();
  }

  /** Progress of the evaluation in flight, told as training progress is: the record and an event. */
  private evalProgress(evalTasksDone: number, evalTasks: number): void {
    this.writeRecord();
    this.emit({ kind: metaloop.Event.Kind.KIND_EVAL_PROGRESS, evalTasksDone, evalTasks });
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
        sampler: samplerState(this.spec.seed, this.step),
      },
      this.layout,
    );
    await storeCheckpoint(transport, this.runId, this.step, bytes, this.spec.checkpoint.keep, logger, signal);
    this.checkpointStep = this.step;
    this.history.addCheckpoint(this.step);
    this.writeHistory();
    this.ctx.observer?.checkpointed(this.runId);
    this.emit({ kind: metaloop.Event.Kind.KIND_CHECKPOINT, message: `checkpoint at step ${this.step}` });
    this.writeRecord();
  }

  // ---- state, record, events ----

  private setState(state: RunStateName): void {
    if (state === 'running') this.clock.start();
    else this.clock.pause();
    this.history.addState(this.stateName, state, this.step);
    this.stateName = state;
    this.ctx.observer?.runState(this.runId, state);
    this.emit({ kind: metaloop.Event.Kind.KIND_STATE, state: stateToProto(state) });
    this.writeRecord();
  }

  /** Wall time spent running (all sessions). */
  seconds(): number {
    return this.clock.seconds();
  }

  private rates(): { stepsPerSec: number; tasksPerSec: number } {
    return this.clock.rates(this.spec.outer.metaBatch);
  }

  private encodeParams(): Uint8Array {
    // One copy of θ, floats 4-byte aligned: workers decode them as a view of what they received.
    return encodeTensorBundle({ layout: this.layout, data: this.params });
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
      ...(this.rl ? { rl: true, preReturn: this.preReturn, postReturn: this.postReturn } : {}),
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
      priority: this.priority,
      redeliveries: this.redeliveries,
      speculative: this.rounds.counters.speculative,
      reissued: this.rounds.counters.reissued,
      rejected: Object.fromEntries(this.rejected),
      stalenessMean: this.staleness.count > 0 ? this.staleness.sum / this.staleness.count : 0,
      stalenessMax: this.staleness.max,
      evalTasksDone: this.evaluation?.progress.done ?? 0,
      evalTasks: this.evaluation?.total ?? 0,
    });
  }

  /** Queue a write of the current record (writes stay in order; the latest content wins). */
  writeRecord(): void {
    this.reporter.writeRecord();
  }

  /** Write the record if none was written for `recordIntervalMs` (called by a coordinator timer). */
  refreshRecord(): void {
    if (this.stateName === 'running' && this.reporter.recordDue()) this.writeRecord();
  }

  /** Queue a write of the history when it changed (in order; failures are logged, never fatal). */
  writeHistory(): void {
    this.reporter.writeHistory();
  }

  /** Waits until queued record writes are done. */
  flush(): Promise<void> {
    return this.reporter.flush();
  }

  private emit(event: metaloop.IEvent): void {
    this.reporter.emit(this.step, event);
  }
}

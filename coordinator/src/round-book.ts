/**
 * The rounds a run has in flight: each issued round (a train step or an evaluation) is a
 * ShardRound collecting into its StepCollector, found by (kind, step) when a result arrives.
 * Train rounds are issued ahead of the applied step in async mode (`workers.staleness: s`: up to
 * s more steps on the current θ), never past the next evaluation, checkpoint or the end.
 */
import type { RunSpec } from '@metaloop/shared';
import type { StepCollector } from './aggregator.js';
import type { ShardKindName } from './result.js';
import { ShardRound, type RoundCounters } from './shard-round.js';
import type { RunContext } from './run-context.js';
import { trainRound, type RoundPlan } from './run-shards.js';
import { ShardTimes } from './scheduler.js';
import { CoordinatorError } from './errors.js';

/** One issued round (a train step or an evaluation) and its collection. */
export interface Pending {
  readonly step: number;
  readonly version: number;
  readonly collector: StepCollector;
  readonly round: ShardRound;
  readonly done: Promise<void>;
}

export interface RoundBookOptions {
  readonly ctx: RunContext;
  readonly runId: string;
  readonly spec: RunSpec;
  readonly layout: Parameters<typeof trainRound>[2];
  /** Work msgId tag of this coordinator session (see ShardRound's `session`). */
  readonly session: string;
  readonly priority: number;
  /** Aborts every round (cancel, coordinator shutdown). */
  readonly signal: AbortSignal;
}

const keyOf = (kind: ShardKindName, step: number) => `${kind}:${step}`;

export class RoundBook {
  /** Rounds waiting for results, by `<kind>:<step>`. */
  private readonly rounds = new Map<string, Pending>();
  /** Train rounds issued and not yet applied, in step order (async mode keeps up to staleness+1). */
  private readonly pipeline: Pending[] = [];
  private issuedUpTo: number;
  /** The run's recent shard durations (their median paces speculative copies). */
  private readonly times = new ShardTimes();
  /** Ends the rounds still in flight when the loop ends. */
  private readonly ended = new AbortController();
  readonly counters: RoundCounters = { reissued: 0, speculative: 0 };

  constructor(
    private readonly o: RoundBookOptions,
    step: number,
  ) {
    this.issuedUpTo = step;
  }

  /** The round collecting results of (kind, step), if any. */
  find(kind: ShardKindName, step: number): Pending | undefined {
    return this.rounds.get(keyOf(kind, step));
  }

  /** Start collecting the shards of a round (published in shard order, fair-share slots permitting). */
  start({ collector, shard }: RoundPlan): Pending {
    const { ctx, runId, priority } = this.o;
    const c = collector.options;
    const fair = ctx.fairShare;
    const live = ctx.liveWorkers;
    const round = new ShardRound({
      sender: ctx.sender,
      logger: ctx.logger,
      collector,
      shard,
      resultTimeoutMs: ctx.resultTimeoutMs,
      maxShardFailures: ctx.maxShardFailures,
      ...(live ? { timeoutsCount: () => live() > 0 } : {}),
      session: this.o.session,
      signal: AbortSignal.any([this.o.signal, this.ended.signal]),
      ...(fair ? { acquire: (sig: AbortSignal) => fair.acquire(runId, priority, sig), tryAcquire: () => fair.tryAcquire(runId, priority) } : {}),
      times: this.times,
      speculativeFactor: ctx.speculativeFactor ?? 0,
      speculativeMinMs: ctx.speculativeMinMs ?? 0,
      counters: this.counters,
      observer: ctx.observer,
    });
    const done = round.run();
    done.catch(() => {});
    const pending: Pending = { step: c.step, version: c.paramVersion, collector, round, done };
    this.rounds.set(keyOf(c.kind, c.step), pending);
    return pending;
  }

  /** Wait until a round has every shard; it stops being found either way. */
  async complete(p: Pending): Promise<void> {
    try {
      await p.done;
    } finally {
      this.rounds.delete(keyOf(p.collector.options.kind, p.step));
    }
  }

  /** The next step at which the loop must stop issuing (an evaluation, a checkpoint or the end). */
  private nextBoundary(step: number): number {
    const { spec } = this.o;
    const e = spec.eval.every;
    const c = spec.checkpoint.every;
    let b = spec.outer.steps;
    if (e > 0) b = Math.min(b, (Math.floor(step / e) + 1) * e);
    if (c > 0) b = Math.min(b, (Math.floor(step / c) + 1) * c);
    return b;
  }

  /**
   * Issue train rounds ahead of `step` (the next to apply): synchronous mode (staleness 0) issues
   * only `step`; with `workers.staleness: s` up to s more steps go out on θ_step, so their results
   * are computed on θ_{u−k}, k ≤ s, when step u is applied.
   */
  issueAhead(step: number): void {
    const { spec, runId, layout } = this.o;
    const s = spec.workers.staleness;
    const limit = this.nextBoundary(step);
    if (this.issuedUpTo < step) this.issuedUpTo = step;
    while (this.issuedUpTo < limit && this.issuedUpTo - step <= s) {
      this.pipeline.push(this.start(trainRound(runId, spec, layout, this.issuedUpTo, step)));
      this.issuedUpTo++;
    }
  }

  /** The issued round of train step t (the next in the pipeline). */
  takeTrain(t: number): Pending {
    const pending = this.pipeline.shift();
    if (!pending || pending.step !== t) throw new CoordinatorError(`internal: no round issued for step ${t}`);
    return pending;
  }

  /** The loop ended: abort the rounds in flight and forget them. */
  end(reason: unknown): void {
    this.ended.abort(reason);
    this.rounds.clear();
    this.pipeline.length = 0;
  }
}

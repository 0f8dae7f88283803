/**
 * One round of shards (the shards of a meta-step, or of an evaluation): publish them (each holding
 * a fair-share slot until its result is accepted), wait until every shard has an accepted result,
 * re-publish shards whose result is lost or was rejected, and send a speculative copy of a
 * straggler once it takes a multiple of the run's median shard time (the first result wins).
 */
import { metaloop, shardMsgId, type Logger } from '@metaloop/shared';
import type { ShardSender } from './dispatch.js';
import type { StepCollector } from './aggregator.js';
import type { RunObserver } from './observe.js';
import { NoLiveWorkerError, RunFailedError } from './errors.js';
import type { CheckedResult, Verdict } from './result.js';
import type { Release, ShardTimes } from './scheduler.js';

/** What a round adds to its run's counters. */
export interface RoundCounters {
  /** Shards re-published after a lost or rejected result. */
  reissued: number;
  /** Speculative copies of stragglers. */
  speculative: number;
}

export interface RoundOptions {
  /** Sends shards: the JetStream WorkQueue or direct assignment (dispatch.ts). */
  readonly sender: ShardSender;
  readonly logger: Logger;
  readonly collector: StepCollector;
  /** The Shard message of shard i (without attempt information). */
  readonly shard: (i: number) => metaloop.IShard;
  /** Re-publish a shard when its result has not come within this time (the queue gave up on it). */
  readonly resultTimeoutMs: number;
  /**
   * Fail the run after this many failures of one shard: error results (worker error, NaN, wrong
   * shape) and results that never came (every delivery's lease expired).
   */
  readonly maxShardFailures: number;
  /** Whether a result that never came counts as a failure (false while no worker is alive). */
  readonly timeoutsCount?: () => boolean;
  /**
   * Appended to every work msgId: empty in a run's first coordinator session, a fresh tag after a
   * resume, so re-computed steps pass the work queue's msg-id de-duplication window.
   */
  readonly session: string;
  readonly signal: AbortSignal;
  /** A fair-share slot for one shard (none: publish at once). */
  readonly acquire?: (signal: AbortSignal) => Promise<Release>;
  /** A fair-share slot now, or null (then `acquire` waits for one): a round's shards go out in one turn. */
  readonly tryAcquire?: () => Release | null;
  /** The run's recent shard durations (recorded here; their median paces speculation). */
  readonly times?: ShardTimes;
  /** Speculative copy after this multiple of the median shard time; 0 = never. */
  readonly speculativeFactor?: number;
  /** …and never before this many ms. */
  readonly speculativeMinMs?: number;
  readonly counters?: RoundCounters;
  /** Metrics: each publish (attempt 0 = first issue, >0 = re-issue) and speculative copy. */
  readonly observer?: RunObserver | undefined;
}

/** Reasons that point at one shard's computation: worth a retry elsewhere. */
const RETRY_REASONS = new Set(['worker_error', 'non_finite', 'wrong_shape']);

export class ShardRound {
  /** When the shard was last (re-)published; 0 = not yet / publish failed. */
  private readonly publishedAt: number[];
  /** When the shard was first published (its duration is measured from here). */
  private readonly firstAt: number[];
  private readonly attempts: number[];
  private readonly failures: number[];
  private readonly lastError: string[];
  private readonly speculated: boolean[];
  private readonly releases: (Release | undefined)[];
  /** Direct dispatch: the workers holding shard i's outstanding copies. */
  private readonly holders: string[][];
  /** Direct dispatch: shard i found no live worker; sent (same attempt) once one is heard. */
  private readonly unsent: boolean[];
  /** Data refusals of this round, `worker: message` (for the run's error when every worker refused). */
  private readonly refusals = new Set<string>();
  private settle: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  private finished = false;
  /** A failure found before the wait began. */
  private failure: unknown = null;

  constructor(private readonly o: RoundOptions) {
    const n = o.collector.shardCount;
    this.publishedAt = new Array<number>(n).fill(0);
    this.firstAt = new Array<number>(n).fill(0);
    this.attempts = new Array<number>(n).fill(0);
    this.failures = new Array<number>(n).fill(0);
    this.lastError = new Array<string>(n).fill('');
    this.speculated = new Array<boolean>(n).fill(false);
    this.releases = new Array<Release | undefined>(n).fill(undefined);
    this.holders = Array.from({ length: n }, () => []);
    this.unsent = new Array<boolean>(n).fill(false);
  }

  private get label(): string {
    return this.o.collector.options.kind === 'eval' ? 'eval shard' : 'shard';
  }

  private msgId(i: number): string {
    const c = this.o.collector.options;
    const base = shardMsgId(c.runId, c.step, i, c.kind);
    const attempt = this.attempts[i]!;
    return `${base}${this.o.session}${attempt === 0 ? '' : `.r${attempt}`}`;
  }

  private async publish(i: number, keep = false): Promise<void> {
    const c = this.o.collector.options;
    const data = metaloop.Shard.encode(this.o.shard(i)).finish();
    this.publishedAt[i] = Date.now();
    if (this.firstAt[i] === 0) this.firstAt[i] = this.publishedAt[i]!;
    // A re-issue takes the shard from its holders (a speculative copy keeps the first one going).
    const held = this.holders[i]!;
    if (!keep) this.settleHolders(i);
    const worker = await this.o.sender.send(c.runId, this.msgId(i), this.attempts[i]!, data, held[held.length - 1]);
    if (worker !== undefined) this.holders[i]!.push(worker);
  }

  private settleHolders(i: number): void {
    for (const w of this.holders[i]!.splice(0)) this.o.sender.settled(w);
  }

  private republish(i: number, why: string, speculative = false): void {
    this.attempts[i] = this.attempts[i]! + 1;
    const c = this.o.collector.options;
    if (speculative) {
      this.speculated[i] = true;
      if (this.o.counters) this.o.counters.speculative++;
      this.o.observer?.shardSpeculative?.(c.runId);
      this.o.logger.info('speculative copy of a straggling shard', { run: c.runId, step: c.step, shard: i, why });
    } else {
      if (this.o.counters) this.o.counters.reissued++;
      this.o.observer?.shardPublished(c.runId, this.attempts[i]);
      this.o.logger.warn('re-publishing shard', { run: c.runId, step: c.step, shard: i, attempt: this.attempts[i], why });
    }
    this.publish(i, speculative).catch((err: unknown) => {
      if (speculative) return; // the first copy is still out
      if (err instanceof NoLiveWorkerError) {
        this.publishedAt[i] = 0;
        this.unsent[i] = true;
        return;
      }
      this.o.logger.warn('re-publish failed; will retry', { run: c.runId, shard: i, error: String(err) });
      this.publishedAt[i] = 0;
    });
  }

  /** Direct dispatch: send a shard that found no live worker, same attempt, once one is live. */
  private sendUnsent(i: number): void {
    this.unsent[i] = false;
    this.publish(i).catch((err: unknown) => {
      this.publishedAt[i] = 0;
      this.unsent[i] = true;
      if (!(err instanceof NoLiveWorkerError)) this.o.logger.warn('assigning a shard failed; will retry', { run: this.o.collector.options.runId, shard: i, error: String(err) });
    });
  }

  /** Count one failure of shard i; fails the round once it reached the limit, else re-publishes. */
  private failed(i: number, reason: string, detail: string): void {
    this.failures[i] = this.failures[i]! + 1;
    this.lastError[i] = `${reason}: ${detail}`;
    const c = this.o.collector.options;
    if (this.failures[i] >= this.o.maxShardFailures) {
      const err = new RunFailedError(
        c.runId,
        `${this.label} ${i} of step ${c.step} failed ${this.failures[i]} times; last error: ${this.lastError[i]}`,
      );
      if (this.settle) this.settle.reject(err);
      else this.failure = err;
    } else {
      this.republish(i, this.lastError[i]);
    }
  }

  private tick(): void {
    this.checkShards();
    // The re-issues of this tick: one assignment per worker.
    this.o.sender.flush();
  }

  private checkShards(): void {
    const { collector, resultTimeoutMs, times } = this.o;
    const now = Date.now();
    const factor = this.o.speculativeFactor ?? 0;
    const median = factor > 0 ? times?.median() : undefined;
    const straggler = median === undefined ? Infinity : Math.max(this.o.speculativeMinMs ?? 0, factor * median);
    for (const i of collector.missing()) {
      if (this.publishedAt[i] === 0) {
        if (this.unsent[i]) this.sendUnsent(i);
        else if (this.firstAt[i] !== 0) this.republish(i, 'previous publish failed');
        continue;
      }
      const waited = now - this.publishedAt[i]!;
      const gone = this.holders[i]!.length > 0 && !this.holders[i]!.some((w) => this.o.sender.holds(w));
      if (gone) {
        // Direct dispatch: every worker holding the shard left (missed heartbeats, draining): re-assign now.
        this.republish(i, `worker ${this.holders[i]!.join(', ')} left`);
      } else if (waited >= resultTimeoutMs) {
        const why = `no result within ${resultTimeoutMs} ms (every delivery's lease expired, or no worker took it)`;
        if (this.o.timeoutsCount?.() ?? true) this.failed(i, 'lost', why);
        else this.republish(i, why);
      } else if (!this.speculated[i] && now - this.firstAt[i]! >= straggler) {
        this.republish(i, `running ${now - this.firstAt[i]!} ms, ${factor}× the median shard time ${median!.toFixed(0)} ms`, true);
      }
    }
  }

  /** Publish every shard in shard order and resolve once each has an accepted result. */
  async run(): Promise<void> {
    const { signal, collector, resultTimeoutMs } = this.o;
    signal.throwIfAborted();
    try {
      // Shards go out concurrently (no JetStream ack round trip each; one connection keeps them in
      // order, msg ids de-duplicate); a failed publish fails the round as before, once all settled.
      const publishing: Promise<void>[] = [];
      let publishError: unknown = null;
      for (let i = 0; i < collector.shardCount; i++) {
        if (this.o.acquire) {
          const now = this.o.tryAcquire?.() ?? null;
          if (now) this.releases[i] = now;
          else {
            // What is given out goes before waiting for a slot.
            this.o.sender.flush();
            this.releases[i] = await this.o.acquire(signal);
          }
        }
        if (collector.has(i)) {
          this.releaseSlot(i);
          continue;
        }
        publishing.push(
          this.publish(i).then(
            () => this.o.observer?.shardPublished(collector.options.runId, 0),
            (err: unknown) => {
              // No live worker yet (direct dispatch): the tick assigns it once one is heard.
              if (err instanceof NoLiveWorkerError) {
                this.publishedAt[i] = 0;
                this.unsent[i] = true;
              }
              else publishError ??= err;
            },
          ),
        );
        // Rethrows the failure as it was caught (`!== null` narrows unknown to {}).
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        if (this.failure !== null) throw this.failure;
      }
      // Every shard given out in this turn: one assignment per worker (direct dispatch).
      this.o.sender.flush();
      await Promise.all(publishing);
      // Rethrow failures as they were caught (`!== null` narrows unknown to {}).
      /* eslint-disable @typescript-eslint/only-throw-error */
      if (publishError !== null) throw publishError;
      if (this.failure !== null) throw this.failure;
      /* eslint-enable @typescript-eslint/only-throw-error */
      if (collector.complete) return;
      await new Promise<void>((resolve, reject) => {
        const tick = Math.max(10, Math.min(250, Math.floor(resultTimeoutMs / 4)));
        const timer = setInterval(() => this.tick(), tick);
        const done = () => {
          clearInterval(timer);
          signal.removeEventListener('abort', onAbort);
        };
        this.settle = {
          resolve: () => {
            done();
            resolve();
          },
          reject: (err) => {
            done();
            reject(err);
          },
        };
        const onAbort = () => this.settle?.reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted) onAbort();
        else if (this.failure !== null) this.settle.reject(this.failure);
        else if (collector.complete) this.settle.resolve();
      });
    } finally {
      this.finish();
    }
  }

  private releaseSlot(i: number): void {
    const r = this.releases[i];
    this.releases[i] = undefined;
    r?.();
  }

  private finish(): void {
    this.finished = true;
    this.settle = null;
    for (let i = 0; i < this.releases.length; i++) {
      this.releaseSlot(i);
      this.settleHolders(i);
    }
  }

  /**
   * Worker `worker` handed shard i back without computing it: its copy of the run's data is missing
   * or differs. Direct dispatch: the run's shards no longer go to it, the shard is re-assigned to
   * another worker (not a failure of the shard), and the round fails, naming every refusal, once no
   * live worker is left to take it. Queue dispatch cannot steer: the refusal counts as a failure.
   */
  private refused(i: number, worker: string, detail: string): void {
    const c = this.o.collector.options;
    this.refusals.add(`${worker}: ${detail}`);
    const left = this.o.sender.exclude?.(c.runId, worker);
    if (left === undefined) return this.failed(i, 'data_refused', detail);
    if (left > 0) return this.republish(i, `worker ${worker} refused the run's data`);
    const err = new RunFailedError(c.runId, `no live worker holds the run's data; refusals: ${[...this.refusals].join('; ')}`);
    if (this.settle) this.settle.reject(err);
    else this.failure = err;
  }

  /** A result for shard i of this round failed validation (NaN, wrong shape): count it, re-issue. */
  rejected(i: number, reason: string, detail: string): void {
    if (this.finished || !RETRY_REASONS.has(reason) || !Number.isInteger(i) || i < 0 || i >= this.o.collector.shardCount) return;
    if (this.o.collector.has(i)) return;
    this.failed(i, reason, detail);
  }

  /** Offer a checked result of this round (validate.ts): the collector places it. */
  offer(result: CheckedResult): Verdict {
    const verdict = this.o.collector.place(result);
    if (this.finished) return verdict;
    if (verdict.accepted) {
      const i = verdict.shard;
      if (this.firstAt[i]! > 0) this.o.times?.record(Date.now() - this.firstAt[i]!);
      this.releaseSlot(i);
      this.settleHolders(i);
      if (this.o.collector.complete) this.settle?.resolve();
      return verdict;
    }
    const i = verdict.shard;
    if (i !== undefined && verdict.reason === 'data_refused' && !this.o.collector.has(i)) {
      this.refused(i, result.workerId, verdict.detail);
      return verdict;
    }
    if (i !== undefined && RETRY_REASONS.has(verdict.reason) && !this.o.collector.has(i)) {
      this.failed(i, verdict.reason, verdict.detail);
    }
    return verdict;
  }
}

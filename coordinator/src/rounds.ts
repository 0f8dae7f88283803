/**
 * One round of shards (the shards of a meta-step, or of an evaluation): publish them, wait until
 * every shard has an accepted result, re-publish shards whose result is late or was rejected.
 */
import { metaloop, shardMsgId, type Logger, type Transport } from '@metaloop/shared';
import type { StepCollector, Verdict } from './aggregator.js';
import type { RunObserver } from './observe.js';
import { RunFailedError } from './errors.js';

export interface RoundOptions {
  readonly transport: Transport;
  readonly logger: Logger;
  readonly collector: StepCollector;
  /** The Shard message of shard i (without attempt information). */
  readonly shard: (i: number) => metaloop.IShard;
  /** Re-publish a shard when its result has not come within this time. */
  readonly resultTimeoutMs: number;
  /** Fail after this many rejected (worker error, non-finite, wrong shape) results of one shard. */
  readonly maxShardFailures: number;
  /**
   * Appended to every work msgId: empty in a run's first coordinator session, a fresh tag after a
   * resume, so re-computed steps pass the work queue's msg-id de-duplication window.
   */
  readonly session: string;
  readonly signal: AbortSignal;
  /** Metrics: each publish (attempt 0 = first issue, >0 = re-issue). */
  readonly observer?: RunObserver | undefined;
}

/** Reasons that point at one shard's computation: worth a retry elsewhere. */
const RETRY_REASONS = new Set(['worker_error', 'non_finite', 'wrong_shape']);

export class ShardRound {
  private readonly publishedAt: number[];
  private readonly attempts: number[];
  private readonly failures: number[];
  private settle: { resolve: () => void; reject: (err: unknown) => void } | null = null;
  private finished = false;
  /** A failure found before the wait began. */
  private failure: unknown = null;

  constructor(private readonly o: RoundOptions) {
    const n = o.collector.shardCount;
    this.publishedAt = new Array<number>(n).fill(0);
    this.attempts = new Array<number>(n).fill(0);
    this.failures = new Array<number>(n).fill(0);
  }

  private msgId(i: number): string {
    const c = this.o.collector.options;
    const kind = c.kind === metaloop.ShardKind.SHARD_KIND_EVAL ? 'eval' : 'train';
    const base = shardMsgId(c.runId, c.step, i, kind);
    const attempt = this.attempts[i]!;
    return `${base}${this.o.session}${attempt === 0 ? '' : `.r${attempt}`}`;
  }

  private async publish(i: number): Promise<void> {
    const c = this.o.collector.options;
    const data = metaloop.Shard.encode(this.o.shard(i)).finish();
    this.publishedAt[i] = Date.now();
    await this.o.transport.publishWork(c.runId, this.msgId(i), data);
    this.o.observer?.shardPublished(c.runId, this.attempts[i]!);
  }

  private republish(i: number, why: string): void {
    this.attempts[i] = this.attempts[i]! + 1;
    const c = this.o.collector.options;
    this.o.logger.warn('re-publishing shard', { run: c.runId, step: c.step, shard: i, attempt: this.attempts[i], why });
    this.publish(i).catch((err: unknown) => {
      this.o.logger.warn('re-publish failed; will retry', { run: c.runId, shard: i, error: String(err) });
      this.publishedAt[i] = 0;
    });
  }

  /** Publish every shard in shard order and resolve once each has an accepted result. */
  async run(): Promise<void> {
    const { signal, collector, resultTimeoutMs } = this.o;
    signal.throwIfAborted();
    for (let i = 0; i < collector.shardCount; i++) await this.publish(i);
    if (this.failure !== null) {
      this.finish();
      throw this.failure;
    }
    if (collector.complete) return this.finish();
    await new Promise<void>((resolve, reject) => {
      const tick = Math.max(10, Math.min(1000, Math.floor(resultTimeoutMs / 4)));
      const timer = setInterval(() => {
        const now = Date.now();
        for (const i of collector.missing()) {
          if (now - this.publishedAt[i]! >= resultTimeoutMs) this.republish(i, `no result within ${resultTimeoutMs} ms`);
        }
      }, tick);
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
      else if (collector.complete) this.settle.resolve();
    }).finally(() => this.finish());
  }

  private finish(): void {
    this.finished = true;
    this.settle = null;
  }

  /** Offer a decoded result of this run. */
  offer(result: metaloop.ShardResult): Verdict {
    const verdict = this.o.collector.offer(result);
    if (this.finished) return verdict;
    if (verdict.accepted) {
      if (this.o.collector.complete) this.settle?.resolve();
      return verdict;
    }
    const i = verdict.shard;
    if (i !== undefined && RETRY_REASONS.has(verdict.reason) && !this.o.collector.has(i)) {
      this.failures[i] = this.failures[i]! + 1;
      const c = this.o.collector.options;
      if (this.failures[i]! >= this.o.maxShardFailures) {
        const err = new RunFailedError(
          c.runId,
          `shard ${i} of step ${c.step} failed ${this.failures[i]} times (${verdict.reason}): ${verdict.detail}`,
        );
        if (this.settle) this.settle.reject(err);
        else this.failure = err;
      } else {
        this.republish(i, `${verdict.reason}: ${verdict.detail}`);
      }
    }
    return verdict;
  }
}

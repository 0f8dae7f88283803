/**
 * Sharing the workers between runs. Every shard a run publishes holds one slot of a global
 * in-flight budget from its first publish until its result is accepted (or its round ends). When
 * the budget is used up, the next free slot goes to the waiting run with the fewest slots per
 * unit of priority: weighted max-min fair share by run. The work queue is FIFO, so a run holding
 * a share w_r / Σw of the in-flight shards gets about that share of the workers' time.
 */

/** Frees one slot (idempotent). */
export type Release = () => void;

interface Waiter {
  readonly runId: string;
  readonly weight: number;
  readonly grant: (release: Release) => void;
  readonly fail: (err: unknown) => void;
  readonly seq: number;
}

export class FairShare {
  private readonly inFlight = new Map<string, number>();
  private total = 0;
  private readonly waiting: Waiter[] = [];
  private seq = 0;

  /** `capacity()`: the current in-flight budget (e.g. from the number of live workers). */
  constructor(private readonly capacity: () => number) {}

  /** Shards of `runId` in flight now. */
  held(runId: string): number {
    return this.inFlight.get(runId) ?? 0;
  }

  /** Resolves with a release once `runId` may publish one more shard; rejects when `signal` aborts. */
  acquire(runId: string, weight: number, signal?: AbortSignal): Promise<Release> {
    signal?.throwIfAborted();
    const w = Number.isFinite(weight) && weight > 0 ? weight : 1;
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        runId,
        weight: w,
        seq: this.seq++,
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        fail: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        waiter.fail(signal?.reason);
        this.pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(waiter);
      this.pump();
    });
  }

  private take(runId: string): Release {
    this.inFlight.set(runId, this.held(runId) + 1);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = this.held(runId) - 1;
      if (n <= 0) this.inFlight.delete(runId);
      else this.inFlight.set(runId, n);
      this.total -= 1;
      this.pump();
    };
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.total < Math.max(1, this.capacity())) {
      // Lowest (held + 1) / weight first; among equals the earliest request.
      let best = 0;
      let bestScore = Infinity;
      for (let i = 0; i < this.waiting.length; i++) {
        const w = this.waiting[i]!;
        const score = (this.held(w.runId) + 1) / w.weight;
        if (score < bestScore || (score === bestScore && w.seq < this.waiting[best]!.seq)) {
          best = i;
          bestScore = score;
        }
      }
      const [w] = this.waiting.splice(best, 1);
      w!.grant(this.take(w!.runId));
    }
  }
}

/** Recent accepted-shard durations of one run; their median paces speculative re-dispatch. */
export class ShardTimes {
  private readonly values: number[] = [];
  constructor(private readonly size = 64) {}

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.values.push(ms);
    if (this.values.length > this.size) this.values.shift();
  }

  /** Median of the recent durations; undefined before `minSamples` were recorded. */
  median(minSamples = 3): number | undefined {
    if (this.values.length < minSamples) return undefined;
    const sorted = [...this.values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  }
}

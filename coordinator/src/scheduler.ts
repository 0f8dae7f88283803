/**
 * Sharing the workers between runs. Every shard a run publishes holds one slot of a global
 * in-flight budget from its first publish until its result is accepted (or its round ends). Each
 * active run may hold its weighted share of the budget, max(1, ⌊capacity · w_r / Σ w⌋), over the
 * runs that are active (joined, or holding/asking for slots); a run goes beyond its share only
 * while every other active run is at its own. Shares are kept even while a run sits between two
 * steps (its slots are not lent out across its step barrier), so a run with priority 3 gets about
 * three times the workers of a run with priority 1. The work queue is FIFO, so slots are workers.
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
  /** Runs that take part even when they hold and ask for nothing (a run loop between steps). */
  private readonly joined = new Map<string, number>();
  /** Last weight each run asked with. */
  private readonly weights = new Map<string, number>();

  /** `capacity()`: the current in-flight budget (e.g. from the number of live workers). */
  constructor(private readonly capacity: () => number) {}

  /** `runId` takes part with `weight` until leave(): its share stays reserved between its steps. */
  join(runId: string, weight: number): void {
    this.joined.set(runId, Number.isFinite(weight) && weight > 0 ? weight : 1);
    this.pump();
  }

  /** `runId` no longer takes part (ended, paused); what it holds is released by its rounds. */
  leave(runId: string): void {
    this.joined.delete(runId);
    this.pump();
  }

  /** The active runs and their weights. */
  private active(): Map<string, number> {
    const out = new Map(this.joined);
    for (const [run] of this.inFlight) if (!out.has(run)) out.set(run, this.weights.get(run) ?? 1);
    for (const w of this.waiting) if (!out.has(w.runId)) out.set(w.runId, w.weight);
    return out;
  }

  /** The slots `runId` may hold while every active run wants its share. */
  share(runId: string): number {
    const active = this.active();
    let sum = 0;
    for (const w of active.values()) sum += w;
    const w = active.get(runId) ?? this.weights.get(runId) ?? 1;
    return Math.max(1, Math.floor((Math.max(1, this.capacity()) * w) / Math.max(sum, w)));
  }

  /** Shards of `runId` in flight now. */
  held(runId: string): number {
    return this.inFlight.get(runId) ?? 0;
  }

  /** Resolves with a release once `runId` may publish one more shard; rejects when `signal` aborts. */
  acquire(runId: string, weight: number, signal?: AbortSignal): Promise<Release> {
    signal?.throwIfAborted();
    const w = Number.isFinite(weight) && weight > 0 ? weight : 1;
    this.weights.set(runId, w);
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

  /**
   * A slot for `runId` now, or null: granted only when nobody is waiting and the run may take one
   * by the same rule as pump(), so it never jumps the queue (a round issues its shards in one turn).
   */
  tryAcquire(runId: string, weight: number): Release | null {
    const w = Number.isFinite(weight) && weight > 0 ? weight : 1;
    this.weights.set(runId, w);
    if (this.waiting.length > 0 || this.total >= Math.max(1, this.capacity())) return null;
    const active = this.active();
    if (!active.has(runId)) active.set(runId, w);
    const below = (run: string) => this.held(run) < this.share(run);
    const othersFull = [...active.keys()].every((r) => r === runId || !below(r));
    return below(runId) || othersFull ? this.take(runId) : null;
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
      const active = this.active();
      const below = (run: string) => this.held(run) < this.share(run);
      // Beyond its share only while every other active run is at its own.
      const othersFull = (run: string) => [...active.keys()].every((r) => r === run || !below(r));
      let best = -1;
      let bestScore = Infinity;
      for (let i = 0; i < this.waiting.length; i++) {
        const w = this.waiting[i]!;
        if (!below(w.runId) && !othersFull(w.runId)) continue;
        // Lowest (held + 1) / weight first; among equals the earliest request.
        const score = (this.held(w.runId) + 1) / w.weight;
        if (score < bestScore || (score === bestScore && best >= 0 && w.seq < this.waiting[best]!.seq)) {
          best = i;
          bestScore = score;
        }
      }
      if (best < 0) return;
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

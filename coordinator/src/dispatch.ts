/**
 * How a round's shards reach workers (the run's `dispatch`):
 * - `queue`: the JetStream WorkQueue (one shared durable pull consumer, AckWait as the lease), one
 *   message per shard; for workers that come and go behind unreliable links.
 * - `direct`: the hot path. Each shard is given to one live worker (heartbeats), the one with the
 *   fewest shards outstanding (ties: the next in id order after the last pick); the shards a
 *   worker is given of a run in one turn of the event loop (a round's first issue, the re-issues
 *   of one tick) go to it in one assignment over core NATS (transport/assignments.ts), so messages
 *   grow with workers, not shards. The coordinator holds each shard's lease: a shard whose worker
 *   leaves (missed heartbeats, `draining`) is re-assigned at once (shard-round.ts), one whose
 *   result never comes within resultTimeoutMs too. Every assignment names this coordinator's
 *   session: after a restart, a worker drops the shards of the killed coordinator once the new
 *   one assigns work of the run.
 */
import { randomBytes } from 'node:crypto';
import { workerToken, type AssignedShard, type Assignments, type WorkQueue } from '@metaloop/shared';
import { NoLiveWorkerError } from './errors.js';

export type DispatchMode = 'queue' | 'direct';
export const DISPATCH_MODES: readonly DispatchMode[] = ['queue', 'direct'];

export interface ShardSender {
  readonly mode: DispatchMode;
  /**
   * Send shard `data` (attempt 0 = first issue). Direct: returns the worker it went to (never
   * `avoid` while another is live); throws when no worker is live. Queue: undefined.
   */
  send(runId: string, msgId: string, attempt: number, data: Uint8Array, avoid?: string): Promise<string | undefined>;
  /** Whether the worker holding a shard is still live (queue: always true, the broker holds the lease). */
  holds(workerId: string): boolean;
  /** A shard sent to `workerId` is settled (result in, re-assigned or round over). */
  settled(workerId: string): void;
  /**
   * Direct: never send `runId`'s shards to `workerId` again (it refused the run's data: its copy is
   * missing or differs). Returns how many live workers may still take the run's shards.
   */
  exclude?(runId: string, workerId: string): number;
  /** Send what was given out so far now (direct: one assignment per worker and run); else at the end of the turn. */
  flush(): void;
  /** Whether the worker with this subject token (`workerToken`) holds no shard of this coordinator. */
  idle(workerToken: string): boolean;
}

export function queueSender(transport: Pick<WorkQueue, 'publishWork'>): ShardSender {
  return {
    mode: 'queue',
    send: async (runId, msgId, _attempt, data) => {
      await transport.publishWork(runId, msgId, data);
      return undefined;
    },
    holds: () => true,
    settled: () => {},
    flush: () => {},
    idle: () => true,
  };
}

/** Live worker ids, sorted (WorkerView). */
export interface LiveWorkers {
  liveIds(): string[];
}

export class DirectSender implements ShardSender {
  readonly mode = 'direct' as const;
  private readonly outstanding = new Map<string, number>();
  private last = '';
  /** Workers that refused a run's data, by run: they get none of its shards. */
  private readonly refusedBy = new Map<string, Set<string>>();
  /** Shards given out this turn, by worker then run: one assignment each at the end of the turn. */
  private pending = new Map<string, Map<string, AssignedShard[]>>();
  /** A flush at the end of the turn is scheduled. */
  private flushing = false;

  constructor(
    private readonly transport: Pick<Assignments, 'assign'>,
    private readonly workers: LiveWorkers,
    /** This coordinator's session (a subject token): new at every start. */
    readonly session: string = randomBytes(4).toString('hex'),
  ) {}

  // async: "no live worker" must reach the round as a rejection, as the queue sender's failures do.
  // eslint-disable-next-line @typescript-eslint/require-await
  async send(runId: string, _msgId: string, attempt: number, data: Uint8Array, avoid?: string): Promise<string> {
    const refused = this.refusedBy.get(runId);
    const live = refused ? this.workers.liveIds().filter((w) => !refused.has(w)) : this.workers.liveIds();
    const pool = live.length > 1 && avoid !== undefined ? live.filter((w) => w !== avoid) : live;
    if (pool.length === 0) {
      throw new NoLiveWorkerError(
        refused ? `no live worker holds the data of run ${runId} (refused by ${[...refused].join(', ')})` : 'no live worker to assign the shard to (none has sent a heartbeat lately)',
      );
    }
    // Fewest outstanding; ties: the first after the last pick in id order (round robin).
    const start = pool.findIndex((w) => w > this.last);
    const order = start <= 0 ? pool : [...pool.slice(start), ...pool.slice(0, start)];
    let best = order[0]!;
    for (const w of order) if ((this.outstanding.get(w) ?? 0) < (this.outstanding.get(best) ?? 0)) best = w;
    this.last = best;
    this.outstanding.set(best, (this.outstanding.get(best) ?? 0) + 1);
    let byRun = this.pending.get(best);
    if (!byRun) this.pending.set(best, (byRun = new Map<string, AssignedShard[]>()));
    let shards = byRun.get(runId);
    if (!shards) byRun.set(runId, (shards = []));
    shards.push({ data, attempt });
    if (!this.flushing) {
      this.flushing = true;
      // At the end of the turn unless flushed before (a round flushes once it issued what it can).
      setImmediate(() => {
        this.flushing = false;
        this.flush();
      });
    }
    return best;
  }

  exclude(runId: string, workerId: string): number {
    let set = this.refusedBy.get(runId);
    if (!set) this.refusedBy.set(runId, (set = new Set()));
    set.add(workerId);
    return this.workers.liveIds().filter((w) => !set.has(w)).length;
  }

  idle(token: string): boolean {
    for (const [w, n] of this.outstanding) if (n > 0 && workerToken(w) === token) return false;
    return true;
  }

  /** One assignment per (worker, run) of the shards given out since the last flush. */
  flush(): void {
    if (this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    for (const [worker, byRun] of pending) {
      for (const [runId, shards] of byRun) this.transport.assign(worker, runId, shards, this.session);
    }
  }

  holds(workerId: string): boolean {
    return this.workers.liveIds().includes(workerId);
  }

  settled(workerId: string): void {
    const n = (this.outstanding.get(workerId) ?? 0) - 1;
    if (n > 0) this.outstanding.set(workerId, n);
    else this.outstanding.delete(workerId);
  }
}

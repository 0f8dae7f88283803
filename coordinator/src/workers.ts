/**
 * The coordinator's live-worker view: every heartbeat updates one entry (id, backend, device, state,
 * tasks/s as the worker reports it, shards/s from successive shards_done counts, last seen).
 * Workers join at any time; one that says `draining` or stays silent for `liveWindowMs` leaves.
 * The one view of the live workers: it answers the `workers` API verb, paces direct dispatch and
 * the fair share, and feeds the `metaloop_live_workers` metric (CoordinatorObservability.watchWorkers).
 */
import { metaloop, type Closer, type Logger, type Subjects, type Transport } from '@metaloop/shared';

interface Entry {
  hb: metaloop.Heartbeat;
  lastSeenMs: number;
  shardsPerSec: number;
  /** (time, shards_done) of the heartbeat the rate is measured from. */
  mark: { at: number; shards: number };
}

export class WorkerView {
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<(live: number) => void>();

  constructor(
    private readonly liveWindowMs = 15_000,
    private readonly logger?: Logger,
  ) {}

  /** Subscribe to heartbeats (and sweep silent workers every second); the Closer stops. */
  watch(transport: Transport, subj: Subjects): Closer {
    const sub = transport.subscribe(subj.heartbeat(), (data) => this.heard(data));
    const timer = setInterval(() => this.sweep(Date.now()), 1000);
    timer.unref?.();
    return {
      close: async () => {
        clearInterval(timer);
        await sub.close();
      },
    };
  }

  /** Calls `listener` with the number of live workers whenever a worker joins or leaves; returns the unsubscribe. */
  onChange(listener: (live: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener(this.entries.size);
  }

  /** Take one heartbeat (bytes from the wire: validated, never trusted). */
  heard(data: Uint8Array, now = Date.now()): void {
    let hb: metaloop.Heartbeat;
    try {
      hb = metaloop.Heartbeat.decode(data);
    } catch (err) {
      this.logger?.debug('malformed heartbeat ignored', { error: String(err) });
      return;
    }
    if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(hb.workerId)) return;
    if (hb.state === 'draining') {
      if (this.entries.delete(hb.workerId)) this.changed();
      return;
    }
    const prev = this.entries.get(hb.workerId);
    let shardsPerSec = prev?.shardsPerSec ?? 0;
    let mark = prev?.mark ?? { at: now, shards: hb.shardsDone };
    if (prev && hb.shardsDone < mark.shards) mark = { at: now, shards: hb.shardsDone }; // restarted
    if (now - mark.at >= 1000) {
      shardsPerSec = ((hb.shardsDone - mark.shards) * 1000) / (now - mark.at);
      mark = { at: now, shards: hb.shardsDone };
    }
    this.entries.set(hb.workerId, { hb, lastSeenMs: now, shardsPerSec, mark });
    if (!prev) {
      this.logger?.info('worker joined', { worker: hb.workerId, backend: hb.backend, device: hb.device });
      this.changed();
    }
  }

  private sweep(now: number): void {
    let left = false;
    for (const [id, e] of this.entries) {
      if (now - e.lastSeenMs > this.liveWindowMs) {
        this.entries.delete(id);
        left = true;
        this.logger?.info('worker left (no heartbeat)', { worker: id });
      }
    }
    if (left) this.changed();
  }

  /** Number of live workers. */
  count(now = Date.now()): number {
    this.sweep(now);
    return this.entries.size;
  }

  /** Ids of the live workers, sorted. */
  liveIds(now = Date.now()): string[] {
    this.sweep(now);
    return [...this.entries.keys()].sort();
  }

  /** Live workers by id, with the coordinator's shards/s and last-seen time filled in. */
  list(now = Date.now()): metaloop.Heartbeat[] {
    this.sweep(now);
    return [...this.entries.values()]
      .map((e) => metaloop.Heartbeat.create({ ...e.hb, shardsPerSec: e.shardsPerSec, lastSeenMs: e.lastSeenMs }))
      .sort((a, b) => a.workerId.localeCompare(b.workerId));
  }
}

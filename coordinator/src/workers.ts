/**
 * The coordinator's live-worker view: every heartbeat updates one entry (id, backend, device, state,
 * tasks/s as the worker reports it, shards/s from successive shards_done counts, last seen).
 * Workers join at any time; one that says `draining` or stays silent for `liveWindowMs` leaves.
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

  constructor(
    private readonly liveWindowMs = 15_000,
    private readonly logger?: Logger,
  ) {}

  /** Subscribe to heartbeats; the Closer stops. */
  watch(transport: Transport, subj: Subjects): Closer {
    return transport.subscribe(subj.heartbeat(), (data) => this.heard(data));
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
      this.entries.delete(hb.workerId);
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
    if (!prev) this.logger?.info('worker joined', { worker: hb.workerId, backend: hb.backend, device: hb.device });
  }

  private sweep(now: number): void {
    for (const [id, e] of this.entries) {
      if (now - e.lastSeenMs > this.liveWindowMs) {
        this.entries.delete(id);
        this.logger?.info('worker left (no heartbeat)', { worker: id });
      }
    }
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

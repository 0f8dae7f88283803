/**
 * The in-process work queue and results queue behind InProcTransport. They mirror what
 * JetStream does for Metaloop: a WorkQueue stream with one shared pull consumer (explicit ack,
 * lease = AckWait, MaxDeliver, msg-id de-duplication) and a results stream with one durable
 * consumer that hands results over one at a time in arrival order.
 */
import type { Logger } from '../logger.js';
import type { ResultMessage, WorkMessage } from '../transport.js';
import { DedupeWindow } from './dedupe.js';

export interface QueueSettings {
  readonly leaseMs: number;
  readonly maxDeliver: number;
  readonly dedupeWindowMs: number;
}

type WorkState = 'ready' | 'leased' | 'delayed';

interface WorkEntry {
  readonly seq: number;
  readonly runId: string;
  readonly msgId: string;
  readonly data: Uint8Array;
  deliveries: number;
  state: WorkState;
  /** Incremented on every delivery: only the current delivery may nak/extend. */
  token: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

type Waiter = (entry: WorkEntry) => void;

/** Resolves null when any of the signals aborts. */
function onAbort(signals: readonly AbortSignal[], fn: () => void): () => void {
  for (const s of signals) s.addEventListener('abort', fn, { once: true });
  return () => {
    for (const s of signals) s.removeEventListener('abort', fn);
  };
}

export class InProcWorkQueue {
  private seq = 0;
  private readonly entries = new Map<number, WorkEntry>();
  /** Redeliveries go first (as in JetStream), then fresh messages, both FIFO. */
  private readonly redeliver: WorkEntry[] = [];
  private readonly fresh: WorkEntry[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly dedupe: DedupeWindow;

  constructor(
    private readonly settings: QueueSettings,
    private readonly logger: Logger,
  ) {
    this.dedupe = new DedupeWindow(settings.dedupeWindowMs);
  }

  /** Number of messages not yet acked, termed, purged or dropped after maxDeliver. */
  get size(): number {
    return this.entries.size;
  }

  publish(runId: string, msgId: string, data: Uint8Array): void {
    if (this.dedupe.isDuplicate(msgId)) return;
    const entry: WorkEntry = {
      seq: ++this.seq,
      runId,
      msgId,
      data: data.slice(),
      deliveries: 0,
      state: 'ready',
      token: 0,
      timer: undefined,
    };
    this.entries.set(entry.seq, entry);
    this.fresh.push(entry);
    this.dispatch();
  }

  purge(runId: string): void {
    for (const entry of [...this.entries.values()]) {
      if (entry.runId === runId) this.remove(entry);
    }
  }

  /** Wait for the next work item; null when a signal aborts first. */
  pull(signals: readonly AbortSignal[]): Promise<WorkMessage | null> {
    if (signals.some((s) => s.aborted)) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: Waiter = (entry) => {
        off();
        resolve(this.deliver(entry));
      };
      const off = onAbort(signals, () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(null);
      });
      this.waiters.push(waiter);
      this.dispatch();
    });
  }

  close(): void {
    for (const entry of this.entries.values()) clearTimeout(entry.timer);
  }

  private next(): WorkEntry | undefined {
    for (const q of [this.redeliver, this.fresh]) {
      while (q.length > 0) {
        const e = q.shift()!;
        if (this.entries.get(e.seq) === e && e.state === 'ready') return e;
      }
    }
    return undefined;
  }

  private dispatch(): void {
    while (this.waiters.length > 0) {
      const entry = this.next();
      if (!entry) return;
      this.waiters.shift()!(entry);
    }
  }

  private deliver(entry: WorkEntry): WorkMessage {
    entry.deliveries += 1;
    entry.state = 'leased';
    const token = ++entry.token;
    this.arm(entry, this.settings.leaseMs, () => this.leaseExpired(entry, token));
    const current = () => this.entries.get(entry.seq) === entry && entry.token === token && entry.state === 'leased';
    return {
      data: entry.data.slice(),
      runId: entry.runId,
      deliveryCount: entry.deliveries,
      leaseMs: this.settings.leaseMs,
      maxDeliver: this.settings.maxDeliver,
      ack: () => {
        // Like JetStream, a late ack from an earlier delivery still completes the message.
        if (this.entries.get(entry.seq) === entry) this.remove(entry);
        return Promise.resolve();
      },
      nak: (delayMs = 0) => {
        if (!current()) return;
        clearTimeout(entry.timer);
        this.requeue(entry, delayMs);
      },
      working: () => {
        if (!current()) return;
        this.arm(entry, this.settings.leaseMs, () => this.leaseExpired(entry, token));
      },
      term: () => {
        if (this.entries.get(entry.seq) === entry) this.remove(entry);
      },
    };
  }

  private leaseExpired(entry: WorkEntry, token: number): void {
    if (this.entries.get(entry.seq) !== entry || entry.token !== token || entry.state !== 'leased') return;
    this.requeue(entry, 0);
  }

  private requeue(entry: WorkEntry, delayMs: number): void {
    if (entry.deliveries >= this.settings.maxDeliver) {
      this.logger.warn('work item dropped after maxDeliver deliveries', {
        msgId: entry.msgId,
        deliveries: entry.deliveries,
      });
      this.remove(entry);
      return;
    }
    if (delayMs > 0) {
      entry.state = 'delayed';
      this.arm(entry, delayMs, () => {
        if (this.entries.get(entry.seq) !== entry || entry.state !== 'delayed') return;
        this.makeReady(entry);
      });
    } else {
      entry.timer = undefined;
      this.makeReady(entry);
    }
  }

  private makeReady(entry: WorkEntry): void {
    entry.state = 'ready';
    entry.timer = undefined;
    this.redeliver.push(entry);
    this.dispatch();
  }

  private arm(entry: WorkEntry, ms: number, fn: () => void): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(fn, ms);
    entry.timer.unref();
  }

  private remove(entry: WorkEntry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    this.entries.delete(entry.seq);
  }
}

interface ResultEntry {
  readonly runId: string;
  readonly msgId: string;
  readonly data: Uint8Array;
}

/** One consumeResults() registration. */
interface ResultConsumer {
  readonly handler: (msg: ResultMessage) => Promise<void> | void;
  busy: Promise<void> | null;
  closed: boolean;
}

export class InProcResultQueue {
  private readonly pending: ResultEntry[] = [];
  private readonly consumers: ResultConsumer[] = [];
  private readonly dedupe: DedupeWindow;
  private turn = 0;

  constructor(
    settings: QueueSettings,
    private readonly logger: Logger,
  ) {
    this.dedupe = new DedupeWindow(settings.dedupeWindowMs);
  }

  publish(runId: string, msgId: string, data: Uint8Array): void {
    if (this.dedupe.isDuplicate(msgId)) return;
    this.pending.push({ runId, msgId, data: data.slice() });
    this.dispatch();
  }

  /** Register a handler; the returned function unregisters it after its in-flight message. */
  consume(handler: (msg: ResultMessage) => Promise<void> | void): () => Promise<void> {
    const consumer: ResultConsumer = { handler, busy: null, closed: false };
    this.consumers.push(consumer);
    queueMicrotask(() => this.dispatch());
    return async () => {
      if (consumer.closed) return;
      consumer.closed = true;
      const i = this.consumers.indexOf(consumer);
      if (i >= 0) this.consumers.splice(i, 1);
      await consumer.busy;
    };
  }

  private dispatch(): void {
    while (this.pending.length > 0) {
      const idle = this.pickIdle();
      if (!idle) return;
      const entry = this.pending.shift()!;
      idle.busy = this.handle(idle, entry);
    }
  }

  private pickIdle(): ResultConsumer | undefined {
    const n = this.consumers.length;
    for (let k = 0; k < n; k++) {
      const c = this.consumers[(this.turn + k) % n]!;
      if (!c.busy && !c.closed) {
        this.turn = (this.turn + k + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  private async handle(consumer: ResultConsumer, entry: ResultEntry): Promise<void> {
    try {
      await consumer.handler({ data: entry.data, runId: entry.runId, msgId: entry.msgId });
    } catch (err) {
      // Acked anyway: a handler that throws on a message would otherwise loop on it forever.
      this.logger.warn('result handler threw; result dropped', { msgId: entry.msgId, error: String(err) });
    } finally {
      consumer.busy = null;
      this.dispatch();
    }
  }
}

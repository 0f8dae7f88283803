/**
 * Parameter versions over core NATS (docs/architecture.md, data flow): `putParams` broadcasts the
 * bytes in chunks on `<prefix>.params.<run>.<version>.<index>.<count>.<totalBytes>`; `getParams`
 * serves a version from the chunks it assembled (one copy, into a fresh buffer at offset 0 of its
 * own ArrayBuffer, so an aligned TensorBundle decodes as a view) and falls back to the Object Store
 * copy (asked of the publisher, nats-param-store.ts) when a chunk is missing, the version does not
 * complete in time, or the process subscribed after the version went out. Core NATS is
 * at-most-once: the fallback is what makes this correct.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { CodecError, TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import { subjects } from '../subjects.js';

export interface ParamsBroadcastOptions {
  /** Broadcast parameter versions over core NATS (the store copy is kept either way). Default true. */
  readonly paramsBroadcast?: boolean;
  /** Largest broadcast chunk. Default 512 KiB (always below the server's max_payload). */
  readonly paramsChunkBytes?: number;
  /**
   * How long getParams waits for a version it has not seen a chunk of (it may still be on its way)
   * before reading the Object Store. Default 25 ms.
   */
  readonly paramsGraceMs?: number;
}

export interface CompiledParamsBroadcastOptions {
  readonly enabled: boolean;
  readonly chunkBytes: number;
  readonly graceMs: number;
}

export function compileParamsBroadcastOptions(o: ParamsBroadcastOptions = {}): CompiledParamsBroadcastOptions {
  const chunkBytes = o.paramsChunkBytes ?? 512 * 1024;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1024 || chunkBytes > 1024 * 1024 - 4096) {
    throw new TransportError(`NatsTransport option paramsChunkBytes must be an integer in [1024, 1 MiB - 4096], got ${chunkBytes}`);
  }
  const graceMs = o.paramsGraceMs ?? 25;
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new TransportError(`NatsTransport option paramsGraceMs must be >= 0, got ${graceMs}`);
  return { enabled: o.paramsBroadcast ?? true, chunkBytes, graceMs };
}

/** Runs a process follows at once (a worker caches 16 runs' θ itself). */
const MAX_RUNS = 16;
/** Complete versions kept per run (the worker caches the latest itself). */
const KEEP_VERSIONS = 2;
/** Largest version accepted from the wire (a sanity bound, not a limit of the protocol). */
const MAX_TOTAL_BYTES = 2 ** 31;
/** A version that has started arriving must complete within this (plus its size at 50 MB/s). */
const ASSEMBLY_BASE_MS = 250;

type Outcome = Uint8Array | null;

interface Assembly {
  readonly version: number;
  readonly total: number;
  readonly count: number;
  readonly chunk: number;
  readonly buf: Uint8Array;
  next: number;
  readonly waiters: ((r: Outcome) => void)[];
}

interface RunCache {
  readonly complete: Map<number, Uint8Array>;
  readonly assembling: Map<number, Assembly>;
  /** Highest version of which any chunk arrived. */
  highest: number;
  /** Waiters for a version no chunk of has arrived yet. */
  readonly expecting: Map<number, ((r: Outcome) => void)[]>;
}

const chunkSize = (total: number, count: number) => Math.ceil(total / count);

export class ParamsBroadcast {
  private readonly subs = new Map<string, Subscription>();
  private readonly runs = new Map<string, RunCache>();
  /** Runs this process publishes: it reads its own versions from the store, never subscribes. */
  private readonly publishing = new Set<string>();
  /** Counters (tests, metrics): versions served from the broadcast, fallbacks to the store, publisher restarts. */
  readonly stats = { served: 0, fallbacks: 0, lost: 0, restarts: 0 };

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    readonly options: CompiledParamsBroadcastOptions,
    private readonly log: Logger,
  ) {}

  private subject(runId: string): string {
    return subjects(this.prefix).params(runId);
  }

  /** Publish one version in chunks (views of `data`; the client copies them when it flushes). */
  publish(runId: string, version: number, data: Uint8Array): void {
    if (!this.options.enabled) return;
    this.publishing.add(runId);
    const total = data.byteLength;
    const maxChunk = Math.min(this.options.chunkBytes, (this.nc.info?.max_payload ?? 1024 * 1024) - 4096);
    const count = Math.max(1, Math.ceil(total / maxChunk));
    const chunk = chunkSize(total, count);
    const head = `${this.subject(runId)}.${version}.`;
    for (let i = 0; i < count; i++) {
      this.nc.publish(`${head}${i}.${count}.${total}`, data.subarray(i * chunk, Math.min(total, (i + 1) * chunk)));
    }
  }

  isPublisher(runId: string): boolean {
    return this.publishing.has(runId);
  }

  private cache(runId: string): RunCache {
    let c = this.runs.get(runId);
    if (!c) {
      c = { complete: new Map(), assembling: new Map(), highest: -1, expecting: new Map() };
      this.runs.set(runId, c);
    }
    return c;
  }

  /** Subscribe to a run's versions (first getParams of the run); false when broadcasting is off. */
  private ensureSubscribed(runId: string): boolean {
    if (!this.options.enabled || this.publishing.has(runId)) return false;
    const existing = this.subs.get(runId);
    if (existing) {
      // Least recently used last: beyond MAX_RUNS the oldest run's subscription and cache go.
      this.subs.delete(runId);
      this.subs.set(runId, existing);
      return true;
    }
    while (this.subs.size >= MAX_RUNS) {
      const [oldest, sub] = this.subs.entries().next().value as [string, Subscription];
      if (!this.nc.isClosed()) sub.unsubscribe();
      this.subs.delete(oldest);
      this.runs.delete(oldest);
    }
    const headLen = this.subject(runId).length + 1;
    const sub = this.nc.subscribe(`${this.subject(runId)}.>`, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.onChunk(runId, msg.subject.slice(headLen), msg.data);
        } catch (e) {
          this.log.warn('malformed parameter chunk dropped', { subject: msg.subject, error: e instanceof Error ? e.message : String(e) });
        }
      },
    });
    this.subs.set(runId, sub);
    this.cache(runId);
    return true;
  }

  private onChunk(runId: string, tokens: string, data: Uint8Array): void {
    const parts = tokens.split('.');
    if (parts.length !== 4 || !parts.every((p) => /^\d{1,15}$/.test(p))) throw new CodecError('bad subject tokens');
    const [version, index, count, total] = parts.map(Number) as [number, number, number, number];
    if (total > MAX_TOTAL_BYTES || count < 1 || index >= count || count > Math.max(1, total)) throw new CodecError('bad chunk header');
    const c = this.cache(runId);
    if (version < c.highest && index === 0 && !c.assembling.has(version)) {
      // One publisher sends versions in increasing order: a lower version starting means a new
      // publisher session (a coordinator restarted and resumed from a checkpoint). What was cached
      // belongs to the previous session: start over, else every resumed version would be dropped
      // as "older than the newest" and read from a store copy not yet written (issue 14, item 3).
      this.restart(c, version);
    }
    if (c.complete.has(version)) return;
    if (version > c.highest) {
      c.highest = version;
      // Every older version still assembling lost a chunk (one publisher sends in order).
      for (const a of c.assembling.values()) if (a.version < version) this.fail(c, a, 'a newer version started');
      for (const [v, ws] of c.expecting) {
        if (v < version) {
          c.expecting.delete(v);
          for (const w of ws) w(null);
        }
      }
    }
    let a = c.assembling.get(version);
    if (!a) {
      if (index !== 0) {
        // Joined in the middle of this version: it cannot complete here.
        this.resolveExpecting(c, version, null);
        return;
      }
      a = { version, total, count, chunk: chunkSize(total, count), buf: Buffer.allocUnsafeSlow(total), next: 0, waiters: c.expecting.get(version) ?? [] };
      c.expecting.delete(version);
      c.assembling.set(version, a);
    }
    if (a.total !== total || a.count !== count) throw new CodecError('chunk disagrees with its version', data.byteLength);
    if (index !== a.next) {
      if (index > a.next) this.fail(c, a, `chunk ${a.next} missing`);
      return;
    }
    const expected = index === count - 1 ? total - index * a.chunk : a.chunk;
    if (data.byteLength !== expected) {
      this.fail(c, a, `chunk ${index} has ${data.byteLength} bytes, expected ${expected}`);
      return;
    }
    a.buf.set(data, index * a.chunk);
    a.next += 1;
    if (a.next < count) return;
    c.assembling.delete(version);
    c.complete.set(version, a.buf);
    while (c.complete.size > KEEP_VERSIONS) {
      const oldest = Math.min(...c.complete.keys());
      c.complete.delete(oldest);
    }
    for (const w of a.waiters) w(a.buf);
  }

  /** A new publisher session starts at `version`: forget the previous session's versions. */
  private restart(c: RunCache, version: number): void {
    this.log.info('parameter versions restarted (new publisher session)', { from: c.highest, to: version });
    this.stats.restarts += 1;
    for (const a of [...c.assembling.values()]) this.fail(c, a, 'the publisher restarted');
    c.complete.clear();
    for (const [v, ws] of c.expecting) {
      if (v !== version) {
        c.expecting.delete(v);
        for (const w of ws) w(null);
      }
    }
    c.highest = version;
  }

  private fail(c: RunCache, a: Assembly, why: string): void {
    c.assembling.delete(a.version);
    this.stats.lost += 1;
    this.log.debug('parameter broadcast incomplete; the Object Store copy will be read', { version: a.version, why });
    for (const w of a.waiters) w(null);
  }

  private resolveExpecting(c: RunCache, version: number, r: Outcome): void {
    const ws = c.expecting.get(version);
    if (!ws) return;
    c.expecting.delete(version);
    for (const w of ws) w(r);
  }

  /**
   * The broadcast copy of a version, or null (read the Object Store): waits for a version that is
   * assembling (bounded by its size) or, when no chunk of it has arrived, for `graceMs` in case
   * it is still on its way.
   */
  async get(runId: string, version: number): Promise<Uint8Array | null> {
    if (!this.ensureSubscribed(runId)) return null;
    const c = this.cache(runId);
    let graceUsed = false;
    for (;;) {
      const hit = c.complete.get(version);
      if (hit) {
        this.stats.served += 1;
        return hit;
      }
      const a = c.assembling.get(version);
      let waitMs: number;
      let list: ((r: Outcome) => void)[];
      if (a) {
        waitMs = ASSEMBLY_BASE_MS + a.total / 50e3;
        list = a.waiters;
      } else if (!graceUsed && this.options.graceMs > 0) {
        // Not seen yet: newer than any (on its way), or older (a restarted publisher resuming
        // from a checkpoint; see restart()). A version that is really gone costs graceMs once.
        graceUsed = true;
        waitMs = this.options.graceMs;
        list = c.expecting.get(version) ?? [];
        c.expecting.set(version, list);
      } else {
        this.stats.fallbacks += 1;
        return null;
      }
      const r = await new Promise<Outcome | 'again'>((resolve) => {
        const done = (x: Outcome) => {
          clearTimeout(timer);
          resolve(x);
        };
        const timer = setTimeout(() => {
          const i = list.indexOf(done);
          if (i >= 0) list.splice(i, 1);
          // The grace ran out while the version started arriving: wait for it as assembling.
          resolve(!a && c.assembling.has(version) ? 'again' : (c.complete.get(version) ?? null));
        }, waitMs);
        list.push(done);
      });
      if (r === 'again') continue;
      if (r) this.stats.served += 1;
      else this.stats.fallbacks += 1;
      return r;
    }
  }

  /** The highest version of a run seen on the wire (-1: none). */
  highestSeen(runId: string): number {
    return this.runs.get(runId)?.highest ?? -1;
  }

  close(): void {
    for (const sub of this.subs.values()) {
      if (!this.nc.isClosed()) sub.unsubscribe();
    }
    this.subs.clear();
    for (const c of this.runs.values()) {
      for (const a of c.assembling.values()) for (const w of a.waiters) w(null);
      for (const ws of c.expecting.values()) for (const w of ws) w(null);
    }
    this.runs.clear();
  }
}

/**
 * When the durable put of a broadcast version starts: once the server has the chunks (a flush),
 * then after about the time the workers take to read them (1 ms + the bytes at 250 MB/s), so that
 * the put (hashing, a JetStream publish and ack per chunk) does not compete with the broadcast
 * for the server and this process. Measured on a loaded 2-core box: a put started at once made a
 * Conv4 version reach a worker in ~10 ms instead of ~2.6 ms. A late joiner that needs the store
 * copy sooner polls for it (getParams); whoever settles the put starts it at once.
 */
export function storeDelayMs(bytes: number): number {
  return Math.ceil(1 + bytes / 250e3);
}

interface PendingPut {
  readonly data: Uint8Array;
  readonly onStored: (() => void) | undefined;
  /** Resolves to null when stored, else to the error. */
  readonly done: Promise<unknown>;
  /** Start now (someone waits for it). */
  readonly go: () => void;
}

/**
 * Durable Object Store copies of broadcast versions, written in the background (durable puts,
 * versions a reader asked for). `settle` waits for them (before deleting the version, before a
 * checkpoint, at close) and re-puts one that failed, throwing when that fails too.
 */
export class PendingPuts {
  private readonly byRun = new Map<string, Map<number, PendingPut>>();

  constructor(
    private readonly store: (runId: string, version: number, data: Uint8Array) => Promise<void>,
    private readonly log: Logger,
  ) {}

  /** Store in the background once `after` settles (see storeDelayMs), or at once; `onStored` after it succeeded. */
  start(runId: string, version: number, data: Uint8Array, after: Promise<unknown> = Promise.resolve(), onStored?: () => void): void {
    let m = this.byRun.get(runId);
    if (!m) this.byRun.set(runId, (m = new Map<number, PendingPut>()));
    let go!: () => void;
    const started = new Promise<void>((r) => (go = r));
    after.then(go, go);
    const done = started
      .then(() => this.store(runId, version, data))
      .then(
      () => {
        onStored?.();
        return null;
      },
      (err: unknown) => {
        this.log.warn('background store of a parameter version failed; retried when settled', { run: runId, version, error: err instanceof Error ? err.message : String(err) });
        return err ?? new Error('put failed');
      },
    );
    m.set(version, { data, onStored, done, go });
  }

  has(runId: string, version: number): boolean {
    return this.byRun.get(runId)?.has(version) ?? false;
  }

  /** Wait for the pending puts of a run (only `version` when given). */
  async settle(runId: string, version?: number): Promise<void> {
    const m = this.byRun.get(runId);
    if (!m) return;
    const entries = [...m].filter(([v]) => version === undefined || v === version);
    for (const [, p] of entries) p.go();
    for (const [v, p] of entries) {
      const err = await p.done;
      if (err !== null) {
        await this.store(runId, v, p.data);
        p.onStored?.();
      }
      if (m.get(v) === p) m.delete(v);
    }
    if (m.size === 0 && this.byRun.get(runId) === m) this.byRun.delete(runId);
  }

  /** Settle every run; failures are logged, not thrown (close). */
  async settleAll(): Promise<void> {
    await Promise.all(
      [...this.byRun.keys()].map((runId) =>
        this.settle(runId).catch((err: unknown) =>
          this.log.error('a parameter version was not stored durably', { run: runId, error: err instanceof Error ? err.message : String(err) }),
        ),
      ),
    );
  }
}

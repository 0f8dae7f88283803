/**
 * The ParamStore role on NATS: θ versions broadcast over core NATS in chunks (nats-params.ts), the
 * live path; their durable Object Store copies (`params/<run>/<version>`) are off it. Part of
 * NatsTransport (nats.ts).
 *
 * - The publisher keeps each version it put until deleteParams, and writes its durable copy only
 *   when asked: `durable: true` (checkpoints, a run's end; in the background, settled before the
 *   next durable put of the run, a checkpoint and close), or when a reader that missed the
 *   broadcast (joined late, lost a chunk, reconnecting) asks for it on
 *   `<prefix>.hot.params.<run>.<version>`: the reply comes once the copy is written.
 * - A reader takes a version from the broadcast; failing that it asks the publisher and reads the
 *   Object Store (a copy written earlier — at a checkpoint, by a previous coordinator — is read
 *   even when no publisher answers).
 * - deleteParams drops the publisher's copy and the durable one it wrote, except the run's latest
 *   durable version; writing a durable version deletes the older ones this process wrote.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertRunId, subjects, type Subjects } from '../subjects.js';
import type { Closer, ParamStore, PutParamsOptions } from '../transport.js';
import { ParamsBroadcast, PendingPuts, storeDelayMs, type CompiledParamsBroadcastOptions } from './nats-params.js';
import { CHUNK_BYTES, type NatsResources } from './nats-resources.js';
import { assertIndex } from './nats-stores.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What the parameter store needs from its connection. */
export interface ParamHost {
  readonly log: Logger;
  readonly prefix: string;
  /** Longest a transient failure is retried (bounds the wait for a version asked for). */
  readonly retryMs: number;
  assertOpen(): void;
  retry<T>(what: string, fn: () => Promise<T>, whileClosing?: boolean): Promise<T>;
  /** The JetStream buckets (a light client throws). */
  res(): NatsResources;
  /** Answer requests (the Bus role's serve). */
  serve(subject: string, handler: (data: Uint8Array, subject: string) => Promise<Uint8Array>): Closer;
  /** A hot-path request (the Bus's long-lived reply subscription). */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

/** Counters (tests, metrics): durable copies written because a put said so, and because a reader asked. */
export interface ParamStoreStats {
  durablePuts: number;
  askedPuts: number;
}

export class NatsParamStore implements ParamStore {
  /** Parameter versions over core NATS. */
  readonly broadcast: ParamsBroadcast;
  readonly stats: ParamStoreStats = { durablePuts: 0, askedPuts: 0 };
  /** Durable copies being written in the background. */
  private readonly pendingPuts: PendingPuts;
  private readonly subj: Subjects;
  /** The versions this process published and still keeps, by run. */
  private readonly held = new Map<string, Map<number, Uint8Array>>();
  /** The durable copies this process wrote (and has not deleted), by run. */
  private readonly stored = new Map<string, Set<number>>();
  /** The latest version of each run written with `durable: true`: kept by deleteParams. */
  private readonly latestDurable = new Map<string, number>();
  private serving: Closer | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly h: ParamHost,
    options: CompiledParamsBroadcastOptions,
  ) {
    this.broadcast = new ParamsBroadcast(nc, h.prefix, options, h.log);
    this.pendingPuts = new PendingPuts((runId, version, data) => this.storeParams(runId, version, data), h.log);
    this.subj = subjects(h.prefix);
  }

  private async storeParams(runId: string, version: number, data: Uint8Array): Promise<void> {
    const name = `${runId}/${version}`;
    // Also while closing: close() settles the background puts before the connection drains.
    await this.h.retry(`put params ${name}`, () => this.h.res().params.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data), true);
    let s = this.stored.get(runId);
    if (!s) this.stored.set(runId, (s = new Set()));
    s.add(version);
  }

  /**
   * Broadcast the version over core NATS and keep it (for export and for readers that ask);
   * `durable`: also write its Object Store copy, in the background. Without broadcasting
   * (`paramsBroadcast: false`): the store put, awaited.
   */
  async putParams(runId: string, version: number, data: Uint8Array, options: PutParamsOptions = {}): Promise<void> {
    this.h.assertOpen();
    assertRunId(runId);
    assertIndex('params version', version);
    this.h.res(); // a light client refuses here
    if (!this.broadcast.options.enabled) return this.storeParams(runId, version, data);
    // Callers may reuse `data` once this returns; the chunks (until the client flushes them, which
    // it does not while disconnected), the kept copy and a durable put need it longer: one copy.
    const owned: Uint8Array = Buffer.allocUnsafeSlow(data.byteLength);
    owned.set(data);
    let held = this.held.get(runId);
    if (!held) this.held.set(runId, (held = new Map<number, Uint8Array>()));
    held.set(version, owned);
    this.serveAsks();
    this.broadcast.publish(runId, version, owned);
    if (options.durable) await this.putDurable(runId, version, owned);
  }

  /** The durable copy of a version, once the broadcast went out (see storeDelayMs); older ones of this process go. */
  private async putDurable(runId: string, version: number, owned: Uint8Array): Promise<void> {
    // The previous durable put of the run first (they stay in order).
    await this.pendingPuts.settle(runId);
    this.stats.durablePuts += 1;
    this.latestDurable.set(runId, version);
    const delayMs = storeDelayMs(owned.byteLength);
    const after = this.nc.flush().then(
      () => sleep(delayMs),
      () => undefined,
    );
    this.pendingPuts.start(runId, version, owned, after, () => this.pruneStored(runId, version));
  }

  /** After version `latest` of a run is durable: its older durable copies written here that no round still holds go. */
  private pruneStored(runId: string, latest: number): void {
    for (const v of [...(this.stored.get(runId) ?? [])]) {
      if (v < latest && !this.held.get(runId)?.has(v)) void this.deleteStored(runId, v);
    }
  }

  /** Serve readers asking for a version this process holds: write its durable copy, then reply. */
  private serveAsks(): void {
    if (this.serving) return;
    const stem = this.subj.hotParams('');
    this.serving = this.h.serve(this.subj.hotParamsAll(), async (_data, subject) => {
      const rest = subject.slice(stem.length);
      const dot = rest.lastIndexOf('.');
      const runId = rest.slice(0, dot);
      const version = Number(rest.slice(dot + 1));
      const data = this.held.get(runId)?.get(version);
      if (dot <= 0 || !data) throw new NotFoundError('params', `${runId}/${rest.slice(dot + 1)} (its publisher no longer holds it)`);
      if (!this.stored.get(runId)?.has(version)) {
        if (!this.pendingPuts.has(runId, version)) {
          this.stats.askedPuts += 1;
          this.pendingPuts.start(runId, version, data);
        }
        await this.pendingPuts.settle(runId, version);
      }
      return new Uint8Array(0);
    });
  }

  /**
   * The version from the broadcast when this process has it (the publisher: its own copy), else
   * from the Object Store, asking the publisher to write it there first.
   */
  async getParams(runId: string, version: number): Promise<Uint8Array> {
    this.h.assertOpen();
    const bc = this.broadcast;
    const name = `${runId}/${version}`;
    const own = this.held.get(runId)?.get(version);
    if (own) return own.slice();
    let asked: unknown = null;
    if (bc.isPublisher(runId)) await this.pendingPuts.settle(runId, version);
    else {
      const hit = await bc.get(runId, version);
      if (hit) return hit;
      // Missed the broadcast: the publisher writes the durable copy (the reply says when).
      try {
        await this.h.request(`${this.subj.hotParams(runId)}.${version}`, new Uint8Array(0), Math.min(this.h.retryMs, 30_000));
      } catch (err) {
        asked = err; // none answering (restarting, or it no longer holds it): a copy may be stored anyway
      }
    }
    const data = await this.h.retry(`get params ${name}`, () => this.h.res().params.getBlob(name));
    if (data) return data;
    throw new NotFoundError('params', asked === null ? name : `${name} (asking its publisher: ${errMessage(asked)})`);
  }

  async deleteParams(runId: string, version: number): Promise<void> {
    this.h.assertOpen();
    this.held.get(runId)?.delete(version);
    if (this.held.get(runId)?.size === 0) this.held.delete(runId);
    if (this.pendingPuts.has(runId, version)) await this.pendingPuts.settle(runId, version);
    if (this.latestDurable.get(runId) === version) return;
    if (this.stored.get(runId)?.has(version)) await this.deleteStored(runId, version);
  }

  private async deleteStored(runId: string, version: number): Promise<void> {
    this.stored.get(runId)?.delete(version);
    const name = `${runId}/${version}`;
    await this.h
      .retry(`delete params ${name}`, async () => {
        await this.h.res().params.delete(name).catch((err: unknown) => {
          if (!/not found/i.test(errMessage(err))) throw err;
        });
      })
      .catch((err: unknown) => this.h.log.warn('cannot delete a durable parameter version', { run: runId, version, error: errMessage(err) }));
  }

  /** Wait for the background durable puts of a run (before its checkpoint). */
  settle(runId: string): Promise<void> {
    return this.pendingPuts.settle(runId);
  }

  /** At close: the in-flight durable puts finish (failures logged), then the broadcast and the asks stop. */
  async close(boundMs: number): Promise<void> {
    await Promise.race([this.pendingPuts.settleAll(), new Promise<void>((r) => setTimeout(r, boundMs).unref())]);
    await this.serving?.close();
    this.broadcast.close();
  }
}

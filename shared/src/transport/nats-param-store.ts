/**
 * The ParamStore role on NATS: θ versions broadcast over core NATS in chunks (nats-params.ts) with
 * their durable Object Store copy (`params/<run>/<version>`) written in the background. Part of
 * NatsTransport (nats.ts).
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { NotFoundError } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertRunId } from '../subjects.js';
import type { ParamStore } from '../transport.js';
import { ParamsBroadcast, PendingPuts, storeDelayMs, type CompiledParamsBroadcastOptions } from './nats-params.js';
import { CHUNK_BYTES, type NatsResources } from './nats-resources.js';
import { assertIndex } from './nats-stores.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What the parameter store needs from its connection. */
export interface ParamHost {
  readonly log: Logger;
  readonly prefix: string;
  /** Longest a transient failure is retried (bounds the wait for a version still being stored). */
  readonly retryMs: number;
  assertOpen(): void;
  retry<T>(what: string, fn: () => Promise<T>, whileClosing?: boolean): Promise<T>;
  /** The JetStream buckets (a light client throws). */
  res(): NatsResources;
}

export class NatsParamStore implements ParamStore {
  /** Parameter versions over core NATS. */
  readonly broadcast: ParamsBroadcast;
  /** Their durable copies being stored in the background. */
  private readonly pendingPuts: PendingPuts;

  constructor(
    private readonly nc: NatsConnection,
    private readonly h: ParamHost,
    options: CompiledParamsBroadcastOptions,
  ) {
    this.broadcast = new ParamsBroadcast(nc, h.prefix, options, h.log);
    this.pendingPuts = new PendingPuts((runId, version, data) => this.storeParams(runId, version, data), h.log);
  }

  private async storeParams(runId: string, version: number, data: Uint8Array): Promise<void> {
    const name = `${runId}/${version}`;
    // Also while closing: close() settles the background puts before the connection drains.
    await this.h.retry(`put params ${name}`, () => this.h.res().params.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data), true);
  }

  /**
   * Broadcast the version over core NATS and store the durable copy in the background (settled
   * before the next version goes out, before deleteParams / putCheckpoint of the run, at close).
   * Without broadcasting (`paramsBroadcast: false`): the store put, awaited.
   */
  async putParams(runId: string, version: number, data: Uint8Array): Promise<void> {
    this.h.assertOpen();
    assertRunId(runId);
    assertIndex('params version', version);
    this.h.res(); // a light client refuses here
    // The previous version's durable copy first: a receiver that sees version t+1 can rely on t being stored.
    await this.pendingPuts.settle(runId);
    if (!this.broadcast.options.enabled) return this.storeParams(runId, version, data);
    // Callers may reuse `data` once this returns; the chunks (until the client flushes them, which
    // it does not while disconnected) and the background put need it longer: one copy.
    const owned: Uint8Array = Buffer.allocUnsafeSlow(data.byteLength);
    owned.set(data);
    this.broadcast.publish(runId, version, owned);
    const delayMs = storeDelayMs(owned.byteLength);
    const after = this.nc.flush().then(
      () => sleep(delayMs),
      () => undefined,
    );
    this.pendingPuts.start(runId, version, owned, after);
  }

  /** The broadcast copy when this process has it, else the Object Store (see nats-params.ts). */
  async getParams(runId: string, version: number): Promise<Uint8Array> {
    this.h.assertOpen();
    const bc = this.broadcast;
    if (bc.isPublisher(runId)) await this.pendingPuts.settle(runId, version);
    else {
      const hit = await bc.get(runId, version);
      if (hit) return hit;
    }
    const name = `${runId}/${version}`;
    // A version no newer one has been seen after may still be on its way into the store (its put
    // runs beside the broadcast): poll for it, bounded, before calling it absent.
    const deadline = Date.now() + Math.min(this.h.retryMs, 5000);
    for (let wait = 5; ; wait = Math.min(250, wait * 2)) {
      const data = await this.h.retry(`get params ${name}`, () => this.h.res().params.getBlob(name));
      if (data) return data;
      if (bc.isPublisher(runId) || bc.highestSeen(runId) > version || Date.now() + wait > deadline) break;
      await sleep(wait);
      this.h.assertOpen();
    }
    throw new NotFoundError('params', name);
  }

  async deleteParams(runId: string, version: number): Promise<void> {
    this.h.assertOpen();
    await this.pendingPuts.settle(runId);
    const name = `${runId}/${version}`;
    await this.h.retry(`delete params ${name}`, async () => {
      await this.h.res().params.delete(name).catch((err: unknown) => {
        if (!/not found/i.test(errMessage(err))) throw err;
      });
    });
  }

  /** Wait for the background durable puts of a run (before its checkpoint, a delete). */
  settle(runId: string): Promise<void> {
    return this.pendingPuts.settle(runId);
  }

  /** At close: the in-flight durable puts finish (failures logged), then the broadcast stops. */
  async close(boundMs: number): Promise<void> {
    await Promise.race([this.pendingPuts.settleAll(), new Promise<void>((r) => setTimeout(r, boundMs).unref())]);
    this.broadcast.close();
  }
}

/**
 * JetStream resources of a NatsTransport, created idempotently (several processes may race to
 * create them), and the blob side-channel for payloads above the inline limit.
 */
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { headers as natsHeaders, nanos, nuid, type MsgHdrs } from '@nats-io/transport-node';
import { TransportError } from '../errors.js';
import type { CompiledNatsTransportOptions } from './nats-options.js';

/** Header of a message whose payload lives in the blobs object store under this name. */
export const BLOB_HEADER = 'Metaloop-Blob';
/** Object store chunk size: well below the default max_payload of 1 MiB. */
export const CHUNK_BYTES = 512 * 1024;

export interface NatsResources {
  readonly runs: KV;
  readonly params: ObjectStore;
  readonly checkpoints: ObjectStore;
}

async function ensureStream(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }, manage: boolean): Promise<void> {
  if (!manage) {
    // A user of the stream (a worker, whose NATS role may not create streams): look before asking
    // to create, so that a running deployment logs no permission violation per worker start.
    const info = await jsm.streams.info(cfg.name).catch(() => null);
    if (info) return checkCompatible(info.config, cfg);
  }
  try {
    await jsm.streams.add(cfg);
  } catch (err) {
    // 10058: the stream exists with another config (e.g. an older duplicate window). Keep it
    // when it is compatible (same retention, same subjects); fail clearly when it is not.
    const info = await jsm.streams.info(cfg.name).catch(() => null);
    if (!info) throw err;
    checkCompatible(info.config, cfg, err);
  }
}

function checkCompatible(have: StreamConfig, want: Partial<StreamConfig> & { name: string }, cause?: unknown): void {
  const same =
    have.retention === want.retention &&
    JSON.stringify([...(have.subjects ?? [])].sort()) === JSON.stringify([...(want.subjects ?? [])].sort());
  if (!same) {
    throw new TransportError(
      `JetStream stream ${want.name} exists with an incompatible configuration (retention ${have.retention}, subjects ${have.subjects?.join(',')}): delete it or use another --prefix`,
      undefined,
      cause === undefined ? undefined : { cause },
    );
  }
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  cfg: Partial<ConsumerConfig> & { durable_name: string },
  manage: boolean,
): Promise<void> {
  if (!manage) {
    // A user of the consumer (a worker): keep the owner's lease and MaxDeliver; create only when missing.
    const info = await jsm.consumers.info(stream, cfg.durable_name).catch(() => null);
    if (info) return;
  }
  try {
    await jsm.consumers.add(stream, cfg);
  } catch (err) {
    // Exists with another lease or max_deliver (newer servers refuse create-over): update it.
    const info = await jsm.consumers.info(stream, cfg.durable_name).catch(() => null);
    if (!info) throw err;
    if (manage && (info.config.ack_wait !== cfg.ack_wait || info.config.max_deliver !== cfg.max_deliver)) {
      await jsm.consumers.update(stream, cfg.durable_name, { ack_wait: cfg.ack_wait, max_deliver: cfg.max_deliver });
    }
  }
}

/** Streams, consumers, the KV bucket and object stores; safe to call from many processes at once. */
export async function ensureResources(jsm: JetStreamManager, js: JetStreamClient, o: CompiledNatsTransportOptions): Promise<NatsResources> {
  if (o.manageConsumers) return createResources(jsm, js, o);
  // A worker may start before the coordinator, and its NATS role may not create streams: wait
  // (bounded) until the owner has created them instead of exiting.
  const deadline = Date.now() + OWNER_WAIT_MS;
  let lastLog = 0;
  for (;;) {
    try {
      return await createResources(jsm, js, o);
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      const waitable = /permission|authoriz|not found/i.test(text);
      if (!waitable || Date.now() > deadline) throw err;
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        o.logger.warn('waiting for the coordinator to create the JetStream resources', { error: text });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** How long a non-owner (worker) waits for the coordinator to create the JetStream resources. */
const OWNER_WAIT_MS = 5 * 60_000;

async function createResources(jsm: JetStreamManager, js: JetStreamClient, o: CompiledNatsTransportOptions): Promise<NatsResources> {
  const s = o.subjects;
  const dup = nanos(o.dedupeWindowMs);
  await ensureStream(jsm, {
    name: s.workStream,
    subjects: [s.workAll()],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: dup,
  }, o.manageConsumers);
  await ensureConsumer(jsm, s.workStream, {
    durable_name: s.workConsumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(o.leaseMs),
    max_deliver: o.maxDeliver,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 10_000,
  }, o.manageConsumers);
  await ensureStream(jsm, {
    name: s.resultsStream,
    subjects: [s.resultsAll()],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    duplicate_window: Math.min(dup, nanos(o.resultsMaxAgeMs)),
    max_age: nanos(o.resultsMaxAgeMs),
  }, o.manageConsumers);
  await ensureConsumer(jsm, s.resultsStream, {
    durable_name: s.resultsConsumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(60_000),
    max_deliver: -1,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 10_000,
  }, o.manageConsumers);
  const kvm = new Kvm(js);
  const objm = new Objm(js);
  const retryOpen = async <T>(create: () => Promise<T>, open: () => Promise<T>): Promise<T> => {
    try {
      return await create();
    } catch (err) {
      return open().catch(() => {
        throw err;
      });
    }
  };
  const runs = await retryOpen(
    () => kvm.create(s.runsBucket, { history: 1, storage: StorageType.File }),
    () => kvm.open(s.runsBucket),
  );
  const params = await retryOpen(
    () => objm.create(s.paramsBucket, { storage: StorageType.File }),
    () => objm.open(s.paramsBucket),
  );
  const checkpoints = await retryOpen(
    () => objm.create(s.checkpointsBucket, { storage: StorageType.File }),
    () => objm.open(s.checkpointsBucket),
  );
  return { runs, params, checkpoints };
}

/**
 * Payloads above `inlineMaxBytes` travel through an object store bucket (TTL = results max age):
 * the message carries only the blob name in a header. Created on first use.
 */
export class BlobChannel {
  private store: Promise<ObjectStore> | null = null;

  constructor(
    private readonly js: JetStreamClient,
    private readonly o: CompiledNatsTransportOptions,
  ) {}

  private bucket(): Promise<ObjectStore> {
    if (!this.store) {
      const objm = new Objm(this.js);
      const name = this.o.subjects.blobsBucket;
      this.store = objm
        .create(name, { storage: StorageType.File, ttl: nanos(this.o.resultsMaxAgeMs) })
        .catch(() => objm.open(name));
      this.store.catch(() => {
        this.store = null;
      });
    }
    return this.store;
  }

  /** The payload to publish and its headers (a blob pointer when `data` is too big). */
  async wrap(msgId: string, data: Uint8Array): Promise<{ payload: Uint8Array; headers: MsgHdrs | undefined }> {
    if (data.byteLength <= this.o.inlineMaxBytes) return { payload: data, headers: undefined };
    const name = await this.put(msgId, data);
    const h = natsHeaders();
    h.set(BLOB_HEADER, name);
    return { payload: new Uint8Array(0), headers: h };
  }

  /** The message's bytes: inline, or fetched from the blob store (null when the blob is gone). */
  async unwrap(data: Uint8Array, headers: MsgHdrs | undefined): Promise<Uint8Array | null> {
    const name = headers?.get(BLOB_HEADER);
    if (!name) return data;
    return this.get(name);
  }

  /** Forget the blob behind a handled message (best effort; the bucket TTL cleans leftovers). */
  async release(headers: MsgHdrs | undefined): Promise<void> {
    const name = headers?.get(BLOB_HEADER);
    if (!name) return;
    await this.delete(name);
  }

  // ---- the PayloadStash of direct-dispatch results (assignments.ts) ----

  get inlineMaxBytes(): number {
    return this.o.inlineMaxBytes;
  }

  /** Store `data` as a new blob named `<key>.<nuid>`; returns the name. */
  async put(key: string, data: Uint8Array): Promise<string> {
    const name = `${key}.${nuid.next()}`;
    const store = await this.bucket();
    await store.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data);
    return name;
  }

  /** A blob's bytes (null when it is gone). */
  async get(name: string): Promise<Uint8Array | null> {
    const store = await this.bucket();
    return store.getBlob(name);
  }

  /** Delete a blob (best effort). */
  async delete(name: string): Promise<void> {
    const store = await this.bucket();
    await store.delete(name).catch(() => undefined);
  }
}

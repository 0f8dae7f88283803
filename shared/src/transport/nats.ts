/**
 * NatsTransport: the Transport interface on NATS + JetStream (see DESIGN.md "Subjects").
 * Work: WorkQueue stream + one shared durable pull consumer (AckWait = lease, MaxDeliver).
 * Results: limits stream + the coordinator's durable consumer. Runs: KV. Params, checkpoints:
 * Object Store, with parameter versions also broadcast in chunks over core NATS (nats-params.ts).
 * Payloads above ~768 KiB go through a blobs object store (never > 1 MiB per message).
 */
import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { setSha256Backend } from '@nats-io/obj';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { ConnectionError, NotFoundError, PermissionError, TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertRunId } from '../subjects.js';
import type { Closer, ConsumeOptions, ResultMessage, Transport, WorkMessage } from '../transport.js';
import {
  compileNatsTransportOptions,
  connectError,
  connectionOptions,
  isTransient,
  requestError,
  type CompiledNatsTransportOptions,
  type NatsTransportOptions,
} from './nats-options.js';
import { handleResult, purgeSubject, toWorkMessage, type MessageContext } from './nats-messages.js';
import { compileParamsBroadcastOptions, ParamsBroadcast, PendingPuts, storeDelayMs, type CompiledParamsBroadcastOptions } from './nats-params.js';
import { BlobChannel, CHUNK_BYTES, ensureResources, type NatsResources } from './nats-resources.js';

const ERROR_HEADER = 'Metaloop-Error';
/** Results pulled per request (handled one at a time as they arrive). */
const RESULTS_BATCH = 64;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A wait that does not keep the process alive. */
const sleepUnref = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

function assertIndex(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TransportError(`${what} must be a non-negative integer, got ${n}`);
}

export class NatsTransport implements Transport {
  readonly kind = 'nats' as const;
  readonly address: string;
  readonly options: CompiledNatsTransportOptions;
  private readonly log: Logger;
  private readonly closing = new AbortController();
  private readonly pulls = new Set<Promise<unknown>>();
  private readonly closers = new Set<Closer>();
  private readonly blobsChannel: BlobChannel | null;
  private readonly ctx: MessageContext | null;
  /** Parameter versions over core NATS, and their durable copies being stored in the background. */
  readonly paramsBroadcast: ParamsBroadcast;
  private readonly pendingPuts: PendingPuts;
  private workConsumer: Promise<Consumer> | null = null;
  private leaseCache: { at: number; value: { leaseMs: number; maxDeliver: number } } | null = null;
  private reensuring: Promise<unknown> | null = null;
  private reconnected: { promise: Promise<void>; resolve: () => void } | null = null;
  private closePromise: Promise<void> | null = null;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsParts: { jsm: JetStreamManager; js: JetStreamClient; res: NatsResources } | null,
    o: CompiledNatsTransportOptions,
    bc: CompiledParamsBroadcastOptions,
  ) {
    this.options = o;
    this.address = o.servers.join(',');
    this.log = o.logger.child('nats');
    this.blobsChannel = jsParts ? new BlobChannel(jsParts.js, o) : null;
    this.ctx = this.blobsChannel ? { blobs: this.blobsChannel, log: this.log, address: this.address, prefix: o.prefix } : null;
    this.paramsBroadcast = new ParamsBroadcast(nc, o.prefix, bc, this.log);
    this.pendingPuts = new PendingPuts((runId, version, data) => this.storeParams(runId, version, data), this.log);
    void this.watchStatus();
  }

  /**
   * Connect and create (idempotently) every stream, consumer and bucket. With `jetstream: false`
   * a light client: core request/reply, publish and subscribe only (what the CLI role may do).
   */
  static async create(options: NatsTransportOptions = {}): Promise<NatsTransport> {
    const o = compileNatsTransportOptions(options);
    const bc = compileParamsBroadcastOptions(options);
    // Object Store chunks are hashed on put and get: node:crypto, not the pure-JS default (~30× faster).
    setSha256Backend('native');
    let nc: NatsConnection;
    try {
      nc = await connect(connectionOptions(o));
    } catch (err) {
      throw connectError(err, o);
    }
    if (!o.jetstream) return new NatsTransport(nc, null, o, bc);
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      const res = await ensureResources(jsm, js, o);
      return new NatsTransport(nc, { jsm, js, res }, o, bc);
    } catch (err) {
      await nc.close().catch(() => undefined);
      const url = o.servers.join(',');
      if (err instanceof TransportError) throw err;
      if (/jetstream not enabled/i.test(errMessage(err))) {
        throw new TransportError(`JetStream is not enabled on NATS at ${url}: start nats-server with -js (or jetstream {} in its config)`, url, { cause: err });
      }
      if (/permission|authoriz/i.test(errMessage(err))) {
        throw new PermissionError(`NATS at ${url} denied access to Metaloop's JetStream resources: ${errMessage(err)}`, url, { cause: err });
      }
      throw new TransportError(`cannot set up Metaloop's JetStream resources on ${url}: ${errMessage(err)}`, url, { cause: err });
    }
  }

  /** The JetStream side; a light client (`jetstream: false`) refuses every JetStream operation. */
  private get jsm(): JetStreamManager {
    return this.jetstreamParts().jsm;
  }
  private get js(): JetStreamClient {
    return this.jetstreamParts().js;
  }
  private get res(): NatsResources {
    return this.jetstreamParts().res;
  }
  private get blobs(): BlobChannel {
    this.jetstreamParts();
    return this.blobsChannel!;
  }
  private get msgContext(): MessageContext {
    this.jetstreamParts();
    return this.ctx!;
  }
  private jetstreamParts(): { jsm: JetStreamManager; js: JetStreamClient; res: NatsResources } {
    if (!this.jsParts) {
      throw new TransportError('this NATS client was opened without JetStream (jetstream: false): only request/reply, publish and subscribe', this.address);
    }
    return this.jsParts;
  }

  /** False for a light client (`jetstream: false`). */
  get hasJetStream(): boolean {
    return this.jsParts !== null;
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.log.warn('NATS disconnected; reconnecting', { server: s.server });
        if (!this.reconnected) {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => (resolve = r));
          this.reconnected = { promise, resolve };
        }
      } else if (s.type === 'reconnect') {
        this.log.warn('NATS reconnected', { server: s.server });
        this.reconnected?.resolve();
        this.reconnected = null;
      } else if (s.type === 'error') this.log.error('NATS error', { error: String(s.error) });
    }
    this.reconnected?.resolve();
  }

  /**
   * Requests sent while disconnected are buffered and, after a server restart, go unanswered
   * until their timeout: wait for the reconnect (bounded) before sending instead.
   */
  private async whenConnected(deadline: number): Promise<void> {
    const waiting = this.reconnected;
    if (!waiting) return;
    const left = deadline - Date.now();
    if (left > 0) await Promise.race([waiting.promise, sleepUnref(left)]);
  }

  /** After a consumer or stream vanished (deleted by an operator, server store wiped): recreate. */
  private async recover(err: unknown): Promise<void> {
    if (!/consumer not found|stream not found/i.test(errMessage(err))) return;
    this.reensuring ??= ensureResources(this.jsm, this.js, this.options)
      .then(
        () => this.log.warn('recreated missing JetStream resources', { error: errMessage(err) }),
        (e: unknown) => this.log.warn('cannot recreate JetStream resources', { error: errMessage(e) }),
      )
      .finally(() => {
        this.reensuring = null;
      });
    await this.reensuring;
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportError('transport is closed', this.address);
  }

  /** Run `fn`, retrying transient failures (NATS restarting) for up to retryMs. */
  private async retry<T>(what: string, fn: () => Promise<T>, whileClosing = false): Promise<T> {
    const deadline = Date.now() + this.options.retryMs;
    for (let attempt = 0; ; attempt++) {
      if (!whileClosing) this.assertOpen();
      await this.whenConnected(deadline);
      try {
        return await fn();
      } catch (err) {
        if (err instanceof TransportError || err instanceof NotFoundError) throw err;
        if (!isTransient(err) || Date.now() > deadline || (this.closed && !whileClosing)) {
          if (/permission|authoriz/i.test(errMessage(err))) {
            throw new PermissionError(`${what}: permission denied on ${this.address}: ${errMessage(err)}`, this.address, { cause: err });
          }
          throw new TransportError(`${what} failed on ${this.address}: ${errMessage(err)}`, this.address, { cause: err });
        }
        this.log.debug(`${what}: retrying`, { attempt, error: errMessage(err) });
        await sleep(Math.min(1000, 100 * 2 ** attempt));
      }
    }
  }

  // ---- work queue ----

  private async publishStream(subject: string, msgId: string, data: Uint8Array, what: string): Promise<void> {
    const { payload, headers } = await this.retry(`${what} (blob)`, () => this.blobs.wrap(msgId, data));
    await this.retry(what, () => this.js.publish(subject, payload, { msgID: msgId, ...(headers ? { headers } : {}) }));
  }

  async publishWork(runId: string, msgId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    await this.publishStream(this.options.subjects.work(runId), msgId, data, `publish work ${msgId}`);
  }

  private consumer(): Promise<Consumer> {
    if (!this.workConsumer) {
      const s = this.options.subjects;
      this.workConsumer = this.js.consumers.get(s.workStream, s.workConsumer);
      this.workConsumer.catch(() => {
        this.workConsumer = null;
      });
    }
    return this.workConsumer;
  }

  /** The work consumer's lease and MaxDeliver as the server has them (the owner's settings), cached. */
  private async leaseOf(): Promise<{ leaseMs: number; maxDeliver: number } | undefined> {
    // Refreshed every few seconds: the coordinator may change the lease after a worker started.
    const cached = this.leaseCache;
    if (cached && Date.now() - cached.at < 5000) return cached.value;
    try {
      const info = await (await this.consumer()).info(false);
      const maxDeliver = info.config.max_deliver ?? -1;
      const value = { leaseMs: Math.round((info.config.ack_wait ?? 0) / 1e6), maxDeliver: maxDeliver > 0 ? maxDeliver : Number.MAX_SAFE_INTEGER };
      this.leaseCache = { at: Date.now(), value };
      return value;
    } catch {
      return cached?.value;
    }
  }

  /** One pull of at most one message; tracked so close() can wait for it (see consumeWork). */
  private pullOne(getConsumer: () => Promise<Consumer>, expiresMs: number): Promise<JsMsg | null> {
    const p = getConsumer().then((c) => c.next({ expires: expiresMs }));
    this.pulls.add(p);
    const untrack = () => this.pulls.delete(p);
    p.then(untrack, untrack);
    return p;
  }

  consumeWork(options: ConsumeOptions = {}): AsyncIterable<WorkMessage> {
    this.assertOpen();
    const pollMs = Math.max(1000, options.pollMs ?? 1000);
    const stopped = () => this.closed || options.signal?.aborted === true;
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        let failures = 0;
        while (!stopped()) {
          let m: JsMsg | null;
          try {
            // A pull cannot be cancelled on the server: let it finish (≤ pollMs) rather than strand
            // a message on a dead inbox until its lease expires.
            m = await self.pullOne(() => self.consumer(), pollMs);
            failures = 0;
          } catch (err) {
            if (stopped()) return;
            failures += 1;
            self.log.debug('work pull failed; retrying', { error: errMessage(err) });
            await self.recover(err);
            await sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
            continue;
          }
          if (!m) continue;
          if (stopped()) {
            m.nak();
            return;
          }
          const msg = await toWorkMessage(m, self.msgContext, await self.leaseOf());
          if (msg) yield msg;
        }
      },
    };
  }

  async purgeWork(runId: string): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    const s = this.options.subjects;
    await this.retry(`purge work of ${runId}`, () => purgeSubject(this.nc, this.jsm, s.workStream, s.work(runId)));
  }

  // ---- results ----

  async publishResult(runId: string, msgId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    await this.publishStream(this.options.subjects.results(runId), msgId, data, `publish result ${msgId}`);
  }

  async consumeResults(handler: (msg: ResultMessage) => Promise<void> | void): Promise<Closer> {
    this.assertOpen();
    const s = this.options.subjects;
    let consumer: Promise<Consumer> | null = null;
    const getConsumer = () => {
      if (!consumer) {
        consumer = this.js.consumers.get(s.resultsStream, s.resultsConsumer);
        consumer.catch(() => {
          consumer = null;
        });
      }
      return consumer;
    };
    await this.retry('open the results consumer', getConsumer);
    const stop = new AbortController();
    const stopped = () => stop.signal.aborted || this.closed;
    const loop = (async () => {
      let failures = 0;
      while (!stopped()) {
        // One pull request for up to RESULTS_BATCH results (the results of a step arrive together),
        // handled as they arrive; it ends after 1 s or when full, then the next one goes out.
        let batch: Promise<void> | null = null;
        try {
          const messages = await getConsumer().then((c) => c.fetch({ max_messages: RESULTS_BATCH, expires: 1000 }));
          batch = (async () => {
            for await (const m of messages) {
              if (stopped()) m.nak();
              else await handleResult(m, handler, this.msgContext);
            }
          })();
          this.pulls.add(batch);
          await batch;
          failures = 0;
        } catch (err) {
          if (stopped()) return;
          failures += 1;
          this.log.debug('results pull failed; retrying', { error: errMessage(err) });
          await this.recover(err);
          await sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
        } finally {
          if (batch) this.pulls.delete(batch);
        }
      }
    })();
    return this.track(async () => {
      stop.abort();
      await loop;
    });
  }

  // ---- params / checkpoints (object stores) ----

  private async storeParams(runId: string, version: number, data: Uint8Array): Promise<void> {
    const name = `${runId}/${version}`;
    // Also while closing: close() settles the background puts before the connection drains.
    await this.retry(`put params ${name}`, () => this.res.params.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data), true);
  }

  /**
   * Broadcast the version over core NATS and store the durable copy in the background (settled
   * before the next version goes out, before deleteParams / putCheckpoint of the run, at close).
   * Without broadcasting (`paramsBroadcast: false`): the store put, awaited.
   */
  async putParams(runId: string, version: number, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    assertIndex('params version', version);
    this.jetstreamParts(); // a light client refuses here
    // The previous version's durable copy first: a receiver that sees version t+1 can rely on t being stored.
    await this.pendingPuts.settle(runId);
    if (!this.paramsBroadcast.options.enabled) return this.storeParams(runId, version, data);
    // Callers may reuse `data` once this returns; the chunks (until the client flushes them, which
    // it does not while disconnected) and the background put need it longer: one copy.
    const owned: Uint8Array = Buffer.allocUnsafeSlow(data.byteLength);
    owned.set(data);
    this.paramsBroadcast.publish(runId, version, owned);
    const delayMs = storeDelayMs(owned.byteLength);
    const after = this.nc.flush().then(
      () => sleep(delayMs),
      () => undefined,
    );
    this.pendingPuts.start(runId, version, owned, after);
  }

  /** The broadcast copy when this process has it, else the Object Store (see nats-params.ts). */
  async getParams(runId: string, version: number): Promise<Uint8Array> {
    this.assertOpen();
    const bc = this.paramsBroadcast;
    if (bc.isPublisher(runId)) await this.pendingPuts.settle(runId, version);
    else {
      const hit = await bc.get(runId, version);
      if (hit) return hit;
    }
    const name = `${runId}/${version}`;
    // A version no newer one has been seen after may still be on its way into the store (its put
    // runs beside the broadcast): poll for it, bounded, before calling it absent.
    const deadline = Date.now() + Math.min(this.options.retryMs, 5000);
    for (let wait = 5; ; wait = Math.min(250, wait * 2)) {
      const data = await this.retry(`get params ${name}`, () => this.res.params.getBlob(name));
      if (data) return data;
      if (bc.isPublisher(runId) || bc.highestSeen(runId) > version || Date.now() + wait > deadline) break;
      await sleep(wait);
      this.assertOpen();
    }
    throw new NotFoundError('params', name);
  }

  async deleteParams(runId: string, version: number): Promise<void> {
    this.assertOpen();
    await this.pendingPuts.settle(runId);
    const name = `${runId}/${version}`;
    await this.retry(`delete params ${name}`, async () => {
      await this.res.params.delete(name).catch((err: unknown) => {
        if (!/not found/i.test(errMessage(err))) throw err;
      });
    });
  }

  async putCheckpoint(runId: string, step: number, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    assertIndex('checkpoint step', step);
    // The run's parameter versions are durable before a checkpoint that follows them.
    await this.pendingPuts.settle(runId);
    const name = `${runId}/${step}`;
    await this.retry(`put checkpoint ${name}`, () => this.res.checkpoints.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data));
  }

  async getCheckpoint(runId: string, step: number): Promise<Uint8Array> {
    this.assertOpen();
    const name = `${runId}/${step}`;
    const data = await this.retry(`get checkpoint ${name}`, () => this.res.checkpoints.getBlob(name));
    if (!data) throw new NotFoundError('checkpoint', name);
    return data;
  }

  async listCheckpoints(runId: string): Promise<number[]> {
    this.assertOpen();
    const head = `${runId}/`;
    const infos = await this.retry(`list checkpoints of ${runId}`, () => this.res.checkpoints.list());
    return infos
      .filter((i) => !i.deleted && i.name.startsWith(head) && /^\d+$/.test(i.name.slice(head.length)))
      .map((i) => Number(i.name.slice(head.length)))
      .sort((a, b) => a - b);
  }

  async deleteCheckpoint(runId: string, step: number): Promise<void> {
    this.assertOpen();
    const name = `${runId}/${step}`;
    await this.retry(`delete checkpoint ${name}`, async () => {
      await this.res.checkpoints.delete(name).catch((err: unknown) => {
        if (!/not found/i.test(errMessage(err))) throw err;
      });
    });
  }

  // Stored as `<run>/history` in the checkpoints object store: listCheckpoints only lists digits.
  async putHistory(runId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    const name = `${runId}/history`;
    await this.retry(`put history ${name}`, () => this.res.checkpoints.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data));
  }

  async getHistory(runId: string): Promise<Uint8Array | null> {
    this.assertOpen();
    const name = `${runId}/history`;
    return this.retry(`get history ${name}`, () => this.res.checkpoints.getBlob(name));
  }

  // ---- run records (KV) ----

  async putRun(runId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    await this.retry(`put run ${runId}`, () => this.res.runs.put(runId, data));
  }

  async getRun(runId: string): Promise<Uint8Array | null> {
    this.assertOpen();
    const e = await this.retry(`get run ${runId}`, () => this.res.runs.get(runId));
    return e && e.operation === 'PUT' ? e.value : null;
  }

  async listRuns(): Promise<string[]> {
    this.assertOpen();
    return this.retry('list runs', async () => {
      const out: string[] = [];
      for await (const k of await this.res.runs.keys()) out.push(k);
      return out.sort();
    });
  }

  // ---- core pub/sub ----

  publish(subject: string, data: Uint8Array): void {
    this.assertOpen();
    if (data.byteLength > this.nc.info!.max_payload) {
      throw new TransportError(`message on ${subject} is ${data.byteLength} bytes, above the server's max_payload ${this.nc.info!.max_payload}`);
    }
    this.nc.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Closer {
    this.assertOpen();
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.log.warn('subscription error', { subject, error: errMessage(err) });
          return;
        }
        try {
          handler(msg.data, msg.subject);
        } catch (e) {
          this.log.warn('subscriber threw', { subject, error: errMessage(e) });
        }
      },
    });
    return this.track(async () => {
      if (!this.nc.isClosed()) sub.unsubscribe();
    });
  }

  // ---- request/reply ----

  serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array>): Closer {
    this.assertOpen();
    const sub = this.nc.subscribe(subject, {
      queue: `${this.options.prefix}-api`,
      callback: (err, msg) => {
        if (err) {
          this.log.warn('service subscription error', { subject, error: errMessage(err) });
          return;
        }
        void (async () => {
          try {
            msg.respond(await handler(msg.data));
          } catch (e) {
            const h = natsHeaders();
            h.set(ERROR_HEADER, errMessage(e).replace(/[\r\n]+/g, ' ').slice(0, 2000));
            try {
              msg.respond(new Uint8Array(0), { headers: h });
            } catch (e2) {
              this.log.warn('cannot reply', { subject, error: errMessage(e2) });
            }
          }
        })();
      },
    });
    return this.track(async () => {
      if (!this.nc.isClosed()) sub.unsubscribe();
    });
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.assertOpen();
    let reply;
    try {
      reply = await this.nc.request(subject, data, { timeout: timeoutMs });
    } catch (err) {
      // Unanswered because the server went away, not because no responder runs: say so.
      if (this.reconnected || this.nc.isClosed()) throw new ConnectionError(`lost the connection to NATS at ${this.address} (reconnecting)`, this.address, { cause: err });
      throw requestError(err, subject, timeoutMs, this.address);
    }
    const remote = reply.headers?.get(ERROR_HEADER);
    if (remote) throw new TransportError(`request on ${subject} failed in the responder: ${remote}`, this.address);
    return reply.data;
  }

  // ---- lifecycle ----

  private track(stop: () => Promise<void>): Closer {
    let done: Promise<void> | null = null;
    const closer: Closer = {
      close: () => {
        if (!done) {
          this.closers.delete(closer);
          done = stop().catch((err: unknown) => this.log.warn('close step failed', { error: errMessage(err) }));
        }
        return done;
      },
    };
    this.closers.add(closer);
    return closer;
  }

  /** Ends consumers (waiting for in-flight pulls, ≤ 1 poll), unsubscribes, drains and closes. */
  close(): Promise<void> {
    if (!this.closePromise) {
      this.closing.abort();
      this.closePromise = (async () => {
        // In-flight pulls end within one poll (≤ a few s even while disconnected): wait, bounded.
        const bounded = (ps: Promise<unknown>[]) => Promise.race([Promise.allSettled(ps), sleepUnref(5000)]);
        // Durable copies of broadcast parameter versions: in-flight puts finish on the open connection.
        await Promise.race([this.pendingPuts.settleAll(), sleepUnref(this.options.retryMs)]);
        this.paramsBroadcast.close();
        await bounded([...this.closers].map((c) => c.close()));
        await bounded([...this.pulls]);
        if (!this.nc.isClosed()) {
          await this.nc.drain().catch(() => this.nc.close());
        }
      })();
    }
    return this.closePromise;
  }
}

/**
 * NatsTransport: every transport role on NATS + JetStream (subjects and resources: subjects.ts;
 * the design: docs/architecture.md). The connection's state and retries live in
 * nats-connection.ts, the RunStore role in nats-stores.ts, the Bus in nats-bus.ts, θ broadcast in
 * nats-params.ts.
 * Work: WorkQueue stream + one shared durable pull consumer (AckWait = lease, MaxDeliver).
 * Results: limits stream + the coordinator's durable consumer. Runs: KV. Params, checkpoints:
 * Object Store, with parameter versions also broadcast in chunks over core NATS (nats-params.ts).
 * Payloads above ~768 KiB go through a blobs object store (never > 1 MiB per message).
 */
import type { Consumer, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { setSha256Backend } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import { LEASE_REFRESH_MS, leaseFromConsumer, type LeaseSettings } from '../lease.js';
import { assertRunId } from '../subjects.js';
import type { AssignedOptions, AssignedShard, Closer, ConsumeOptions, PutParamsOptions, ResultAck, ResultMessage, ServeResultsOptions, Transport, WorkMessage } from '../transport.js';
import { BusAssignments } from './assignments.js';
import {
  compileNatsTransportOptions,
  connectError,
  connectionOptions,
  type CompiledNatsTransportOptions,
  type NatsTransportOptions,
} from './nats-options.js';
import { handleResult, purgeSubject, toWorkMessage, type MessageContext } from './nats-messages.js';
import { compileParamsBroadcastOptions, type CompiledParamsBroadcastOptions, type ParamsBroadcast } from './nats-params.js';
import { NatsParamStore, type ParamStoreStats } from './nats-param-store.js';
import { errMessage, NatsLink, openJetStream, sleep, sleepUnref, type JetStreamParts } from './nats-connection.js';
import { BlobChannel, ensureResources, type NatsResources } from './nats-resources.js';
import { NatsBus } from './nats-bus.js';
import { NatsRunStore } from './nats-stores.js';

/** Results pulled per request (handled one at a time as they arrive). */
const RESULTS_BATCH = 64;


/**
 * Connect to NATS and set up Metaloop's JetStream resources: a connection playing every role
 * (`jetstream: false`: a light client, the Bus role only, what the CLI uses).
 */
export function connectNats(options: NatsTransportOptions = {}): Promise<NatsTransport> {
  return NatsTransport.create(options);
}

export class NatsTransport implements Transport {
  readonly kind = 'nats' as const;
  readonly address: string;
  readonly options: CompiledNatsTransportOptions;
  private readonly log: Logger;
  /** The connection's state: open/closing, reconnects, retries of transient failures (nats-connection.ts). */
  private readonly link: NatsLink;
  /** The hot path: direct assignment and request/reply results over this connection's bus. */
  private readonly hot: BusAssignments;
  private readonly pulls = new Set<Promise<unknown>>();
  private readonly closers = new Set<Closer>();
  private readonly blobsChannel: BlobChannel | null;
  private readonly ctx: MessageContext | null;
  /** θ versions: core-NATS broadcast + durable copies (nats-param-store.ts). */
  private readonly params: NatsParamStore;
  private readonly stores: NatsRunStore;
  private readonly bus: NatsBus;
  private workConsumer: Promise<Consumer> | null = null;
  private leaseCache: { at: number; value: LeaseSettings } | null = null;
  private reensuring: Promise<unknown> | null = null;
  private closePromise: Promise<void> | null = null;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsParts: JetStreamParts | null,
    o: CompiledNatsTransportOptions,
    bc: CompiledParamsBroadcastOptions,
  ) {
    this.options = o;
    this.address = o.servers.join(',');
    this.log = o.logger.child('nats');
    this.link = new NatsLink(nc, this.log, this.address, o.retryMs);
    this.blobsChannel = jsParts ? new BlobChannel(jsParts.js, o) : null;
    this.ctx = this.blobsChannel ? { blobs: this.blobsChannel, log: this.log, address: this.address, subjects: o.subjects } : null;
    this.params = new NatsParamStore(
      nc,
      {
        log: this.log,
        prefix: o.prefix,
        retryMs: o.retryMs,
        assertOpen: () => this.assertOpen(),
        retry: (what, fn, whileClosing) => this.retry(what, fn, whileClosing),
        res: () => this.res,
        serve: (subject, handler) => this.bus.serve(subject, handler),
        request: (subject, data, timeoutMs) => this.bus.hotRequest(subject, data, timeoutMs),
      },
      bc,
    );
    this.stores = new NatsRunStore({
      assertOpen: () => this.assertOpen(),
      retry: (what, fn) => this.retry(what, fn),
      res: () => this.res,
      settleParams: (runId) => this.params.settle(runId),
    });
    this.bus = new NatsBus(nc, {
      log: this.log,
      address: this.address,
      prefix: o.prefix,
      assertOpen: () => this.assertOpen(),
      track: (stop) => this.track(stop),
      reconnecting: () => this.link.reconnecting,
    });
    this.hot = new BusAssignments({
      bus: this,
      prefix: o.prefix,
      closing: this.link.closing,
      assertOpen: () => this.assertOpen(),
      // Results above the inline limit go through the `blobs` object store (a light client has none).
      stash: this.blobsChannel ?? undefined,
      request: (subject, data, timeoutMs) => this.bus.hotRequest(subject, data, timeoutMs),
      serveRaw: (subject, handler) => this.bus.serveRaw(subject, handler),
    });
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
    return new NatsTransport(nc, await openJetStream(nc, o), o, bc);
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
  private jetstreamParts(): JetStreamParts {
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
    return this.link.closed;
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
    this.link.assertOpen();
  }

  /** Run `fn`, retrying transient failures (NATS restarting) for up to retryMs. */
  private retry<T>(what: string, fn: () => Promise<T>, whileClosing = false): Promise<T> {
    return this.link.retry(what, fn, whileClosing);
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
  private async leaseOf(): Promise<LeaseSettings | undefined> {
    // Refreshed every few seconds: the coordinator may change the lease after a worker started.
    const cached = this.leaseCache;
    if (cached && Date.now() - cached.at < LEASE_REFRESH_MS) return cached.value;
    try {
      const info = await (await this.consumer()).info(false);
      const value = leaseFromConsumer(info.config.ack_wait, info.config.max_deliver);
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
    // The iterator is an object-literal async generator method, whose own `this` is the iterable.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
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

  // ---- direct assignment (the hot path, over the bus; checks and wire format in assignments.ts) ----

  assign(workerId: string, runId: string, shards: readonly AssignedShard[], session?: string): void {
    this.hot.assign(workerId, runId, shards, session);
  }

  consumeAssigned(workerId: string, options?: AssignedOptions): AsyncIterable<WorkMessage[]> {
    return this.hot.consumeAssigned(workerId, options);
  }

  sendResults(workerId: string, runId: string, results: readonly Uint8Array[], timeoutMs: number): Promise<ResultAck[]> {
    return this.hot.sendResults(workerId, runId, results, timeoutMs);
  }

  serveResults(handler: (msg: ResultMessage) => Promise<ResultAck | void> | ResultAck | void, options?: ServeResultsOptions): Closer {
    return this.hot.serveResults(handler, options);
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

  // ---- parameter versions (nats-param-store.ts) ----

  /** The θ broadcast of this connection (its stats: served, fallbacks, lost, restarts). */
  get paramsBroadcast(): ParamsBroadcast {
    return this.params.broadcast;
  }
  putParams(runId: string, version: number, data: Uint8Array, options?: PutParamsOptions): Promise<void> {
    return this.params.putParams(runId, version, data, options);
  }
  /** Durable copies written by this connection's parameter store (tests, benchmarks). */
  get paramStoreStats(): Readonly<ParamStoreStats> {
    return this.params.stats;
  }
  getParams(runId: string, version: number): Promise<Uint8Array> {
    return this.params.getParams(runId, version);
  }
  deleteParams(runId: string, version: number): Promise<void> {
    return this.params.deleteParams(runId, version);
  }

  // ---- run records, checkpoints, history (nats-stores.ts) ----

  putCheckpoint(runId: string, step: number, data: Uint8Array): Promise<void> {
    return this.stores.putCheckpoint(runId, step, data);
  }
  getCheckpoint(runId: string, step: number): Promise<Uint8Array> {
    return this.stores.getCheckpoint(runId, step);
  }
  listCheckpoints(runId: string): Promise<number[]> {
    return this.stores.listCheckpoints(runId);
  }
  deleteCheckpoint(runId: string, step: number): Promise<void> {
    return this.stores.deleteCheckpoint(runId, step);
  }
  putHistory(runId: string, data: Uint8Array): Promise<void> {
    return this.stores.putHistory(runId, data);
  }
  getHistory(runId: string): Promise<Uint8Array | null> {
    return this.stores.getHistory(runId);
  }
  putRun(runId: string, data: Uint8Array): Promise<void> {
    return this.stores.putRun(runId, data);
  }
  getRun(runId: string): Promise<Uint8Array | null> {
    return this.stores.getRun(runId);
  }
  listRuns(): Promise<string[]> {
    return this.stores.listRuns();
  }

  // ---- core pub/sub and request/reply (nats-bus.ts) ----

  publish(subject: string, data: Uint8Array): void {
    this.bus.publish(subject, data);
  }
  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Closer {
    return this.bus.subscribe(subject, handler);
  }
  serve(subject: string, handler: (data: Uint8Array, subject: string) => Promise<Uint8Array>): Closer {
    return this.bus.serve(subject, handler);
  }
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    return this.bus.request(subject, data, timeoutMs);
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
      this.link.close();
      this.closePromise = (async () => {
        // In-flight pulls end within one poll (≤ a few s even while disconnected): wait, bounded.
        const bounded = (ps: Promise<unknown>[]) => Promise.race([Promise.allSettled(ps), sleepUnref(5000)]);
        // Durable copies of broadcast parameter versions: in-flight puts finish on the open connection.
        await this.params.close(this.options.retryMs);
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

/**
 * NatsTransport: the Transport interface on NATS + JetStream (see DESIGN.md "Subjects").
 * Work: WorkQueue stream + one shared durable pull consumer (AckWait = lease, MaxDeliver).
 * Results: limits stream + the coordinator's durable consumer. Runs: KV. Params, checkpoints:
 * Object Store. Payloads above ~768 KiB go through a blobs object store (never > 1 MiB per message).
 */
import { jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { NotFoundError, PermissionError, TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import { assertRunId } from '../subjects.js';
import type { Closer, ConsumeOptions, ResultMessage, Transport, WorkMessage } from '../transport.js';
import {
  compileNatsTransportOptions,
  connectError,
  connectionOptions,
  isClosedError,
  isTransient,
  requestError,
  type CompiledNatsTransportOptions,
  type NatsTransportOptions,
} from './nats-options.js';
import { BlobChannel, CHUNK_BYTES, ensureResources, type NatsResources } from './nats-resources.js';

const ERROR_HEADER = 'Metaloop-Error';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
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
  private readonly blobs: BlobChannel;
  private workConsumer: Promise<Consumer> | null = null;
  private closePromise: Promise<void> | null = null;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly res: NatsResources,
    o: CompiledNatsTransportOptions,
  ) {
    this.options = o;
    this.address = o.servers.join(',');
    this.log = o.logger.child('nats');
    this.blobs = new BlobChannel(js, o);
    void this.watchStatus();
  }

  /** Connect and create (idempotently) every stream, consumer and bucket. */
  static async create(options: NatsTransportOptions = {}): Promise<NatsTransport> {
    const o = compileNatsTransportOptions(options);
    let nc: NatsConnection;
    try {
      nc = await connect(connectionOptions(o));
    } catch (err) {
      throw connectError(err, o);
    }
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      const res = await ensureResources(jsm, js, o);
      return new NatsTransport(nc, js, res, o);
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

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') this.log.warn(`NATS ${s.type}`, { server: s.server });
      else if (s.type === 'error') this.log.error('NATS error', { error: String(s.error) });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportError('transport is closed', this.address);
  }

  /** Run `fn`, retrying transient failures (NATS restarting) for up to retryMs. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.options.retryMs;
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      try {
        return await fn();
      } catch (err) {
        if (err instanceof TransportError || err instanceof NotFoundError) throw err;
        if (!isTransient(err) || Date.now() > deadline || this.closed) {
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

  /** One pull of at most one message; tracked so close() can wait for it (see consumeWork). */
  private pullOne(getConsumer: () => Promise<Consumer>, expiresMs: number): Promise<JsMsg | null> {
    const p = getConsumer().then((c) => c.next({ expires: expiresMs }));
    this.pulls.add(p);
    const untrack = () => this.pulls.delete(p);
    p.then(untrack, untrack);
    return p;
  }

  private runIdOf(subject: string, kind: 'work' | 'results'): string {
    const head = `${this.options.prefix}.${kind}.`;
    return subject.startsWith(head) ? subject.slice(head.length) : subject;
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
            await sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
            continue;
          }
          if (!m) continue;
          if (stopped()) {
            m.nak();
            return;
          }
          const msg = await self.toWorkMessage(m);
          if (msg) yield msg;
        }
      },
    };
  }

  private async toWorkMessage(m: JsMsg): Promise<WorkMessage | null> {
    let data: Uint8Array | null;
    try {
      data = await this.blobs.unwrap(m.data, m.headers);
    } catch (err) {
      this.log.warn('work blob unreadable; retrying later', { error: errMessage(err) });
      m.nak(1000);
      return null;
    }
    if (!data) {
      this.log.warn('work blob missing; work item dropped', { subject: m.subject });
      m.term();
      return null;
    }
    const headers = m.headers;
    return {
      data,
      runId: this.runIdOf(m.subject, 'work'),
      deliveryCount: m.info.deliveryCount,
      ack: async () => {
        // Double ack: when this resolves the server has the ack (or the item was purged).
        const ok = await m.ackAck().catch((err: unknown) => {
          if (isClosedError(err)) throw new TransportError('ack after the transport closed', this.address, { cause: err });
          throw new TransportError(`ack failed on ${this.address}: ${errMessage(err)}`, this.address, { cause: err });
        });
        if (ok) await this.blobs.release(headers);
      },
      nak: (delayMs?: number) => m.nak(delayMs && delayMs > 0 ? delayMs : undefined),
      working: () => m.working(),
      term: () => {
        m.term();
        void this.blobs.release(headers);
      },
    };
  }

  async purgeWork(runId: string): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    const s = this.options.subjects;
    // Not `streams.purge({ filter })`: on nats-server 2.9 a filtered purge moves the WorkQueue
    // consumer's floor past the purged sequences, silently skipping other runs' queued work.
    // Delete the run's messages one by one instead (found with MSG.GET next_by_subj).
    await this.retry(`purge work of ${runId}`, async () => {
      const jsm = await this.js.jetstreamManager();
      const api = `$JS.API.STREAM.MSG.GET.${s.workStream}`;
      const codec = { enc: new TextEncoder(), dec: new TextDecoder() };
      for (let seq = 0; ; ) {
        const reply = await this.nc.request(api, codec.enc.encode(JSON.stringify({ seq, next_by_subj: s.work(runId) })), {
          timeout: 5000,
        });
        const body = JSON.parse(codec.dec.decode(reply.data)) as { message?: { seq: number }; error?: { code: number; description?: string } };
        if (!body.message) {
          if (body.error?.code === 404) return;
          throw new TransportError(`purge work of ${runId}: ${body.error?.description ?? 'unexpected reply'}`, this.address);
        }
        await jsm.streams.deleteMessage(s.workStream, body.message.seq, false).catch((err: unknown) => {
          if (!/not found|no message/i.test(errMessage(err))) throw err;
        });
        seq = body.message.seq + 1;
      }
    });
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
        let m: JsMsg | null;
        try {
          m = await this.pullOne(getConsumer, 1000);
          failures = 0;
        } catch (err) {
          if (stopped()) return;
          failures += 1;
          this.log.debug('results pull failed; retrying', { error: errMessage(err) });
          await sleep(Math.min(2000, 100 * 2 ** Math.min(failures, 5)));
          continue;
        }
        if (!m) continue;
        if (stopped()) {
          m.nak();
          return;
        }
        await this.handleResult(m, handler);
      }
    })();
    return this.track(async () => {
      stop.abort();
      await loop;
    });
  }

  private async handleResult(m: JsMsg, handler: (msg: ResultMessage) => Promise<void> | void): Promise<void> {
    const msgId = m.headers?.get('Nats-Msg-Id') ?? '';
    let data: Uint8Array | null;
    try {
      data = await this.blobs.unwrap(m.data, m.headers);
    } catch (err) {
      this.log.warn('result blob unreadable; retrying later', { msgId, error: errMessage(err) });
      m.nak(1000);
      return;
    }
    if (data) {
      const keepAlive = setInterval(() => m.working(), 20_000);
      try {
        await handler({ data, runId: this.runIdOf(m.subject, 'results'), msgId });
      } catch (err) {
        // Acked anyway: a handler that throws on a message would otherwise loop on it forever.
        this.log.warn('result handler threw; result dropped', { msgId, error: errMessage(err) });
      } finally {
        clearInterval(keepAlive);
      }
    } else {
      this.log.warn('result blob missing; result dropped', { msgId });
    }
    try {
      await m.ackAck();
      await this.blobs.release(m.headers);
    } catch (err) {
      this.log.warn('result ack failed (it will be redelivered)', { msgId, error: errMessage(err) });
    }
  }

  // ---- params / checkpoints (object stores) ----

  async putParams(runId: string, version: number, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    assertIndex('params version', version);
    const name = `${runId}/${version}`;
    await this.retry(`put params ${name}`, () => this.res.params.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data));
  }

  async getParams(runId: string, version: number): Promise<Uint8Array> {
    this.assertOpen();
    const name = `${runId}/${version}`;
    const data = await this.retry(`get params ${name}`, () => this.res.params.getBlob(name));
    if (!data) throw new NotFoundError('params', name);
    return data;
  }

  async deleteParams(runId: string, version: number): Promise<void> {
    this.assertOpen();
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
        await Promise.allSettled([...this.closers].map((c) => c.close()));
        await Promise.allSettled([...this.pulls]);
        if (!this.nc.isClosed()) {
          await this.nc.drain().catch(() => this.nc.close());
        }
      })();
    }
    return this.closePromise;
  }
}

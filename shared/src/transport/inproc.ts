/**
 * InProcTransport: the Transport interface without any server, the embedded default of
 * `metaloop local`. Several transports (coordinator, workers) share one InProcBus; each closes
 * independently. Semantics follow JetStream (see inproc-queues.ts) and core NATS.
 */
/* eslint-disable @typescript-eslint/require-await -- the Transport methods stay `async` with no await so that a
   failed assertOpen()/assertRunId() rejects the returned promise (as NatsTransport does) instead of throwing. */
import { NotFoundError, RequestTimeoutError, TransportError } from '../errors.js';
import { DEFAULT_LEASE_MS, DEFAULT_MAX_DELIVER } from '../lease.js';
import { silentLogger, type Logger } from '../logger.js';
import { assertRunId, DEFAULT_PREFIX } from '../subjects.js';
import type { AssignedOptions, AssignedShard, Closer, ConsumeOptions, PutParamsOptions, ResultAck, ResultMessage, ServeResultsOptions, Transport, WorkMessage } from '../transport.js';
import { BusAssignments } from './assignments.js';
import { InProcResultQueue, InProcWorkQueue, type QueueSettings } from './inproc-queues.js';
import { assertSubject, subjectMatches } from './subject-match.js';

export interface InProcTransportOptions {
  /** Join this bus (share queues and stores with other transports); a new bus when absent. */
  readonly bus?: InProcBus;
  /** Lease of a work item (ignored when joining an existing bus). Default 30000. */
  readonly leaseMs?: number;
  /** Deliveries before a work item is dropped (ignored when joining a bus). Default 5. */
  readonly maxDeliver?: number;
  /** Message-id de-duplication window (ignored when joining a bus). Default 120000. */
  readonly dedupeWindowMs?: number;
  readonly logger?: Logger;
}

export interface CompiledInProcTransportOptions extends QueueSettings {
  readonly bus: InProcBus | undefined;
  readonly logger: Logger;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new TransportError(`${name} must be a positive integer, got ${String(value)}`);
  return v;
}

export function compileInProcTransportOptions(options: InProcTransportOptions = {}): CompiledInProcTransportOptions {
  return {
    bus: options.bus,
    leaseMs: positiveInt('leaseMs', options.leaseMs, DEFAULT_LEASE_MS),
    maxDeliver: positiveInt('maxDeliver', options.maxDeliver, DEFAULT_MAX_DELIVER),
    dedupeWindowMs: positiveInt('dedupeWindowMs', options.dedupeWindowMs, 120_000),
    logger: options.logger ?? silentLogger,
  };
}

interface Subscription {
  readonly pattern: string;
  readonly handler: (data: Uint8Array, subject: string) => void;
}

interface Service {
  readonly pattern: string;
  readonly handler: (data: Uint8Array, subject: string) => Promise<Uint8Array>;
}

/** The shared "server": queues, stores and subscriptions of every transport joined to it. */
export class InProcBus {
  readonly settings: QueueSettings;
  readonly work: InProcWorkQueue;
  readonly results: InProcResultQueue;
  readonly params = new Map<string, Uint8Array>();
  readonly checkpoints = new Map<string, Map<number, Uint8Array>>();
  readonly runs = new Map<string, Uint8Array>();
  readonly histories = new Map<string, Uint8Array>();
  readonly subscriptions = new Set<Subscription>();
  readonly services: Service[] = [];
  private serviceTurn = 0;

  constructor(options: Omit<InProcTransportOptions, 'bus'> = {}) {
    const o = compileInProcTransportOptions(options);
    this.settings = { leaseMs: o.leaseMs, maxDeliver: o.maxDeliver, dedupeWindowMs: o.dedupeWindowMs };
    this.work = new InProcWorkQueue(this.settings, o.logger);
    this.results = new InProcResultQueue(this.settings, o.logger);
  }

  /** Round-robin among matching services (a NATS queue group). */
  pickService(subject: string): Service | undefined {
    const matching = this.services.filter((s) => subjectMatches(s.pattern, subject));
    if (matching.length === 0) return undefined;
    const svc = matching[this.serviceTurn % matching.length];
    this.serviceTurn += 1;
    return svc;
  }
}

const paramsKey = (runId: string, version: number) => `${runId}/${version}`;

function assertVersion(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TransportError(`${what} must be a non-negative integer, got ${n}`);
}

/** A new in-process bus and a connection to it playing every role (more: `connect()` on it). */
export function createInProc(options: InProcTransportOptions = {}): Promise<InProcTransport> {
  return InProcTransport.create(options);
}

export class InProcTransport implements Transport {
  readonly kind = 'inproc' as const;
  readonly address = 'in-process';
  readonly bus: InProcBus;
  private readonly closing = new AbortController();
  /** The hot path: direct assignment and request/reply results over this connection's bus. */
  private readonly hot: BusAssignments;
  private readonly closers = new Set<Closer>();
  private closePromise: Promise<void> | null = null;

  private constructor(options: CompiledInProcTransportOptions) {
    this.bus = options.bus ?? new InProcBus(options);
    this.hot = new BusAssignments({ bus: this, prefix: DEFAULT_PREFIX, closing: this.closing.signal, assertOpen: () => this.assertOpen() });
  }

  static async create(options: InProcTransportOptions = {}): Promise<InProcTransport> {
    return new InProcTransport(compileInProcTransportOptions(options));
  }

  /** Another transport on the same bus (e.g. one per worker), closed independently. */
  connect(): InProcTransport {
    this.assertOpen();
    return new InProcTransport(compileInProcTransportOptions({ bus: this.bus }));
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  private assertOpen(): void {
    if (this.closed) throw new TransportError('transport is closed', this.address);
  }

  // ---- work queue ----

  async publishWork(runId: string, msgId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    this.bus.work.publish(runId, msgId, data);
  }

  consumeWork(options: ConsumeOptions = {}): AsyncIterable<WorkMessage> {
    this.assertOpen();
    const signals = [this.closing.signal, ...(options.signal ? [options.signal] : [])];
    const queue = this.bus.work;
    return {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          // Hand each message over on a new macrotask, as a network delivery would: otherwise
          // in-process workers and coordinator chain promises forever and starve timers and I/O
          // (progress lines, heartbeats, API requests) in `metaloop local --embedded`.
          await new Promise<void>((resolve) => setImmediate(resolve));
          const msg = await queue.pull(signals);
          if (!msg) return;
          yield msg;
        }
      },
    };
  }

  async purgeWork(runId: string): Promise<void> {
    this.assertOpen();
    this.bus.work.purge(runId);
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
    this.bus.results.publish(runId, msgId, data);
  }

  async consumeResults(handler: (msg: ResultMessage) => Promise<void> | void): Promise<Closer> {
    this.assertOpen();
    const stop = this.bus.results.consume(handler);
    return this.track(stop);
  }

  // ---- params ----

  /** In-process the bus's map is the durable copy: every version is kept there (`durable` changes nothing). */
  async putParams(runId: string, version: number, data: Uint8Array, _options?: PutParamsOptions): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    assertVersion('params version', version);
    this.bus.params.set(paramsKey(runId, version), data.slice());
  }

  async getParams(runId: string, version: number): Promise<Uint8Array> {
    this.assertOpen();
    const data = this.bus.params.get(paramsKey(runId, version));
    if (!data) throw new NotFoundError('params', paramsKey(runId, version));
    return data.slice();
  }

  async deleteParams(runId: string, version: number): Promise<void> {
    this.assertOpen();
    this.bus.params.delete(paramsKey(runId, version));
  }

  // ---- run records ----

  async putRun(runId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    this.bus.runs.set(runId, data.slice());
  }

  async getRun(runId: string): Promise<Uint8Array | null> {
    this.assertOpen();
    return this.bus.runs.get(runId)?.slice() ?? null;
  }

  async listRuns(): Promise<string[]> {
    this.assertOpen();
    return [...this.bus.runs.keys()].sort();
  }

  // ---- checkpoints ----

  async putCheckpoint(runId: string, step: number, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    assertVersion('checkpoint step', step);
    let byStep = this.bus.checkpoints.get(runId);
    if (!byStep) this.bus.checkpoints.set(runId, (byStep = new Map<number, Uint8Array>()));
    byStep.set(step, data.slice());
  }

  async getCheckpoint(runId: string, step: number): Promise<Uint8Array> {
    this.assertOpen();
    const data = this.bus.checkpoints.get(runId)?.get(step);
    if (!data) throw new NotFoundError('checkpoint', `${runId}/${step}`);
    return data.slice();
  }

  async listCheckpoints(runId: string): Promise<number[]> {
    this.assertOpen();
    return [...(this.bus.checkpoints.get(runId)?.keys() ?? [])].sort((a, b) => a - b);
  }

  async deleteCheckpoint(runId: string, step: number): Promise<void> {
    this.assertOpen();
    this.bus.checkpoints.get(runId)?.delete(step);
  }

  // ---- histories ----

  async putHistory(runId: string, data: Uint8Array): Promise<void> {
    this.assertOpen();
    assertRunId(runId);
    this.bus.histories.set(runId, data.slice());
  }

  async getHistory(runId: string): Promise<Uint8Array | null> {
    this.assertOpen();
    return this.bus.histories.get(runId)?.slice() ?? null;
  }

  // ---- core pub/sub ----

  publish(subject: string, data: Uint8Array): void {
    this.assertOpen();
    assertSubject(subject, false);
    for (const sub of this.bus.subscriptions) {
      if (!subjectMatches(sub.pattern, subject)) continue;
      const copy = data.slice();
      queueMicrotask(() => {
        if (!this.bus.subscriptions.has(sub)) return;
        try {
          sub.handler(copy, subject);
        } catch {
          // A throwing subscriber must not break the publisher (as with NATS callbacks).
        }
      });
    }
  }

  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Closer {
    this.assertOpen();
    assertSubject(subject, true);
    const sub: Subscription = { pattern: subject, handler };
    this.bus.subscriptions.add(sub);
    return this.track(async () => {
      this.bus.subscriptions.delete(sub);
    });
  }

  // ---- request/reply ----

  serve(subject: string, handler: (data: Uint8Array, subject: string) => Promise<Uint8Array>): Closer {
    this.assertOpen();
    assertSubject(subject, true);
    const svc: Service = { pattern: subject, handler };
    this.bus.services.push(svc);
    return this.track(async () => {
      const i = this.bus.services.indexOf(svc);
      if (i >= 0) this.bus.services.splice(i, 1);
    });
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.assertOpen();
    assertSubject(subject, false);
    const svc = this.bus.pickService(subject);
    if (!svc) throw new RequestTimeoutError(subject, timeoutMs);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RequestTimeoutError(subject, timeoutMs)), timeoutMs);
    });
    const reply = (async () => {
      await Promise.resolve(); // never run the handler synchronously inside request()
      try {
        return (await svc.handler(data.slice(), subject)).slice();
      } catch (err) {
        throw new TransportError(`request on ${subject} failed in the responder: ${(err as Error).message ?? String(err)}`, this.address, {
          cause: err,
        });
      }
    })();
    reply.catch(() => undefined); // a late failure after the timeout is not unhandled
    try {
      return await Promise.race([reply, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- lifecycle ----

  private track(stop: () => Promise<void>): Closer {
    let done: Promise<void> | null = null;
    const closer: Closer = {
      close: () => {
        if (!done) {
          this.closers.delete(closer);
          done = stop();
        }
        return done;
      },
    };
    this.closers.add(closer);
    return closer;
  }

  /** Ends this transport's consumers, subscriptions and services; the bus (and its data) stays. */
  close(): Promise<void> {
    if (!this.closePromise) {
      this.closing.abort();
      this.closePromise = Promise.allSettled([...this.closers].map((c) => c.close())).then(() => undefined);
    }
    return this.closePromise;
  }
}

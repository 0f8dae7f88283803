/**
 * The Assignments role on a Bus (core NATS or in-process): the hot path, one message per worker
 * per round each way. The coordinator sends a worker every shard it gives it of a run's round in
 * one `Assignment` on `<prefix>.assign.<worker>.<run>.<session>` and holds each shard's lease
 * itself (re-assigning when the worker leaves or its lease runs out); the worker returns their
 * results in one `ResultBatch` request on `<prefix>.hot.results.<run>.<worker>.<tag>.<n>` and the
 * coordinator's `ResultReply` acks each result (accepted or rejected, with the reason). No broker
 * state: what must survive a restart stays in JetStream.
 *
 * The reply may carry the worker's next assignment: when the worker has nothing else to do for the
 * coordinator (`holdReply`), its reply is held for up to `replyHoldMs` (default 500 ms), and an
 * `assign()` to that worker meanwhile rides on it instead of going as a message of its own (in
 * synchronous mode the next round is assigned as soon as the last result of a step is in, so the
 * reply and the next assignment are one message). A held reply is sent at once when an
 * assignment comes, when the hold ends, or at close; a worker waiting for it is idle anyway.
 *
 * Results that do not fit in one message go as several requests, each as big as fits inline
 * (NATS: 768 KiB, under max_payload; e.g. one Conv4 gradient each); one result above the inline
 * limit goes into the stash (NATS: the `blobs` object store) and its request carries only the
 * name; the coordinator reads it, hands the result over and deletes it once handled. Exactly-once accounting is the
 * coordinator's (one accepted result per shard), whichever way the bytes came.
 *
 * `<session>` names the coordinator session that assigned the shards. Once a consumer sees another
 * session assign work of a run, the older session is gone (a coordinator restarted and resumed the
 * run from a checkpoint, re-issuing every shard since): its shards still queued or waiting for a
 * local retry are dropped, and `stale()` says so to the ones being computed.
 *
 * A worker that gives a shard back (nak: a transient failure) retries it itself after the delay,
 * as a queue would redeliver it, up to `maxDeliver` deliveries; it then reports the failure
 * (worker.ts), or, when closing, drops it: its `draining` heartbeat makes the coordinator
 * re-assign every shard it held.
 */
import { randomBytes } from 'node:crypto';
import { TransportError } from '../errors.js';
import { metaloop } from '../gen/metaloop.js';
import { assertRunId, subjects, workerToken, type Subjects } from '../subjects.js';
import type { AssignedOptions, AssignedShard, Assignments, Bus, Closer, ResultAck, ResultMessage, ServeResultsOptions, WorkMessage } from '../transport.js';

/** Deliveries of an assigned shard on one worker before its failure is reported (as MaxDeliver). */
export const DIRECT_MAX_DELIVER = 5;

/** How long the coordinator holds a worker's result reply for its next assignment, by default. */
export const DEFAULT_REPLY_HOLD_MS = 500;

/** A coordinator session as one subject token. */
const SESSION = /^[A-Za-z0-9_-]{1,32}$/;

/** Superseded sessions remembered per run (a zombie coordinator's late shards stay dropped). */
const KEEP_DEAD = 8;

/**
 * Where a payload too big for one message goes (NATS: the `blobs` object store). Without one
 * (in-process) every payload travels inline.
 */
export interface PayloadStash {
  /** Payloads above this many bytes go into the stash. */
  readonly inlineMaxBytes: number;
  /** Store `data` under a fresh name starting with `key`; returns the name. */
  put(key: string, data: Uint8Array): Promise<string>;
  /** The stored bytes, or null when they are gone. */
  get(name: string): Promise<Uint8Array | null>;
  /** Forget them (best effort). */
  delete(name: string): Promise<void>;
}

/**
 * A stashed payload on the wire: this marker, then the name. No protobuf message starts with a
 * zero byte (field number 0 is invalid), so an encoded ResultBatch is never mistaken for one.
 */
const STASHED = new TextEncoder().encode('\0stash:');

function stashedName(data: Uint8Array): string | null {
  if (data.byteLength <= STASHED.byteLength || data[0] !== 0) return null;
  for (let i = 0; i < STASHED.byteLength; i++) if (data[i] !== STASHED[i]) return null;
  return new TextDecoder().decode(data.subarray(STASHED.byteLength));
}

/** Bytes `data` takes as one element of a repeated bytes field: tag, length varint, data. */
function framedSize(data: Uint8Array): number {
  let n = data.byteLength;
  let varint = 1;
  while (n >= 0x80) {
    n >>>= 7;
    varint++;
  }
  return 1 + varint + data.byteLength;
}

/** Consecutive results grouped so that each group's ResultBatch fits in `limit` bytes (a result too big alone: its own group). */
export function inlineGroups(results: readonly Uint8Array[], limit: number): Uint8Array[][] {
  const groups: Uint8Array[][] = [];
  let group: Uint8Array[] = [];
  let size = 0;
  for (const r of results) {
    const s = framedSize(r);
    if (group.length > 0 && size + s > limit) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push(r);
    size += s;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}

export interface BusAssignmentsOptions {
  readonly bus: Bus;
  readonly prefix: string;
  /** Aborts every consumer when the connection closes. */
  readonly closing: AbortSignal;
  /** Throws when the connection is closed (the transport's own check). */
  readonly assertOpen: () => void;
  /** Where results above its inline limit go; none: inline whatever the size. */
  readonly stash?: PayloadStash | undefined;
  /** Coordinator: hold a worker's result reply this long for its next assignment (0 = never). Default 500. */
  readonly replyHoldMs?: number;
  /** The hot path's request (NATS: one long-lived reply subscription, nats-bus.ts); default the bus's. */
  readonly request?: (subject: string, data: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;
  /**
   * Serve requests whose reply may be sent synchronously from elsewhere (NATS: nats-bus.ts
   * serveRaw), so that a reply carrying an assignment leaves in the same socket write as what the
   * coordinator published in that turn (θ, the step's event); default: the bus's serve.
   */
  readonly serveRaw?: (subject: string, handler: (data: Uint8Array, subject: string, reply: RawReply) => void) => Closer;
}

/** The reply to one request, sent when it is ready (once). */
export interface RawReply {
  respond(data: Uint8Array): void;
  /** Fail the request (its error travels back to the requester). */
  fail(err: unknown): void;
}

/** Sessions of one run as one consumer saw them. */
interface RunSessions {
  current: string;
  readonly dead: string[];
}

/** A worker's result reply being held for its next assignments (coordinator side). */
interface HeldReply {
  /** Send the reply now, with `assignment` when given (once; later calls publish theirs instead). */
  readonly release: (assignment?: Uint8Array) => boolean;
}

export class BusAssignments implements Assignments {
  private readonly subj: Subjects;
  private readonly bus: Bus;
  private readonly holdMs: number;
  private readonly request: (subject: string, data: Uint8Array, timeoutMs: number) => Promise<Uint8Array>;
  /** Worker side: the consumer of each worker id (by subject token), fed by subjects and replies. */
  private readonly consumers = new Map<string, (assignment: Uint8Array, fromSubject?: { runId: string; session: string }) => void>();
  /** Coordinator side: result replies being held, by worker token. */
  private readonly held = new Map<string, HeldReply>();
  /** Result requests of this connection: `<tag>.<n>` keeps their subjects unique. */
  private readonly tag = randomBytes(3).toString('hex');
  private sent = 0;

  constructor(private readonly o: BusAssignmentsOptions) {
    this.subj = subjects(o.prefix);
    this.bus = o.bus;
    this.holdMs = o.replyHoldMs ?? DEFAULT_REPLY_HOLD_MS;
    this.request = o.request ?? ((subject, data, timeoutMs) => o.bus.request(subject, data, timeoutMs));
  }

  // ---- coordinator: assignments out ----

  assign(workerId: string, runId: string, shards: readonly AssignedShard[], session = '0'): void {
    this.o.assertOpen();
    assertRunId(runId);
    if (!SESSION.test(session)) throw new TransportError(`invalid coordinator session ${JSON.stringify(session)}: 1-32 characters of A-Z, a-z, 0-9, '_' and '-'`);
    if (shards.length === 0) return;
    const data = metaloop.Assignment.encode({
      shards: shards.map((s) => s.data),
      attempts: shards.map((s) => s.attempt),
      runId,
      session,
    }).finish();
    const hold = this.held.get(workerToken(workerId));
    if (hold?.release(data)) return;
    this.bus.publish(`${this.subj.assign(workerId)}.${runId}.${session}`, data);
  }

  // ---- worker: assignments in ----

  consumeAssigned(workerId: string, options: AssignedOptions = {}): AsyncIterable<WorkMessage[]> {
    this.o.assertOpen();
    const token = workerToken(workerId);
    const stem = `${this.subj.assign(workerId)}.`;
    const maxDeliver = options.maxDeliver ?? DIRECT_MAX_DELIVER;
    const signal = AbortSignal.any([this.o.closing, ...(options.signal ? [options.signal] : [])]);
    const ready: WorkMessage[] = [];
    const runs = new Map<string, RunSessions>();
    const isDead = (runId: string, session: string) => runs.get(runId)?.dead.includes(session) ?? false;
    let wake: (() => void) | null = null;
    const push = (m: WorkMessage) => {
      if (signal.aborted || m.stale?.()) return;
      ready.push(m);
      wake?.();
    };
    /** Shards of `session` arrived: a different session of the run supersedes the one before. */
    const arrived = (runId: string, session: string, count: number): boolean => {
      const r = runs.get(runId);
      if (!r) {
        runs.set(runId, { current: session, dead: [] });
        return true;
      }
      if (r.dead.includes(session)) {
        options.onStale?.(runId, count); // a superseded session's late shards
        return false;
      }
      if (r.current !== session) {
        r.dead.push(r.current);
        if (r.dead.length > KEEP_DEAD) r.dead.shift();
        r.current = session;
        const before = ready.length;
        const kept = ready.filter((m) => !m.stale?.());
        ready.splice(0, before, ...kept);
        options.onStale?.(runId, before - kept.length);
      }
      return true;
    };
    const make = (data: Uint8Array, runId: string, session: string, deliveryCount: number): WorkMessage => ({
      data,
      runId,
      session,
      deliveryCount,
      maxDeliver,
      stale: () => isDead(runId, session),
      ack: async () => {},
      nak: (delayMs = 0) => {
        if (deliveryCount >= maxDeliver) return;
        const again = () => push(make(data, runId, session, deliveryCount + 1));
        if (delayMs > 0) setTimeout(again, delayMs).unref?.();
        else setImmediate(again);
      },
      working: () => {},
      term: () => {},
    });
    const deliver = (bytes: Uint8Array, fromSubject?: { runId: string; session: string }) => {
      let a: metaloop.Assignment;
      try {
        a = metaloop.Assignment.decode(bytes);
      } catch {
        return; // not an Assignment: dropped (the coordinator's lease re-assigns what was in it)
      }
      const { runId, session } = a;
      if (fromSubject && (fromSubject.runId !== runId || fromSubject.session !== session)) return;
      if (!runId || !SESSION.test(session) || a.shards.length === 0 || a.attempts.length !== a.shards.length) return;
      if (!arrived(runId, session, a.shards.length)) return;
      // Delivery count = the coordinator's attempt + 1 (+ this worker's own retries), as a queue
      // counts redeliveries: a shard re-assigned after its worker died reports delivery > 1.
      a.shards.forEach((data, i) => push(make(data, runId, session, a.attempts[i]! + 1)));
    };
    const sub: Closer = this.bus.subscribe(`${stem}>`, (data, subject) => {
      const [runId, session, ...extra] = subject.slice(stem.length).split('.');
      if (!runId || !session || extra.length > 0) return;
      deliver(data, { runId, session });
    });
    this.consumers.set(token, deliver);
    const consumers = this.consumers;
    return {
      async *[Symbol.asyncIterator]() {
        const onAbort = () => wake?.();
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          for (;;) {
            while (ready.length === 0 && !signal.aborted) await new Promise<void>((r) => (wake = r));
            wake = null;
            if (signal.aborted) return;
            // A new macrotask per batch, as a network delivery would (see InProcTransport.consumeWork).
            await new Promise<void>((r) => setImmediate(r));
            // The first ready shard and every other of its run and session ready now: one batch.
            const first = ready.shift();
            if (!first) continue;
            const batch = [first];
            for (let i = 0; i < ready.length; ) {
              const m = ready[i]!;
              if (m.runId === first.runId && m.session === first.session) {
                batch.push(m);
                ready.splice(i, 1);
              } else i++;
            }
            const live = batch.filter((m) => !m.stale?.());
            if (live.length > 0) yield live;
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
          ready.length = 0;
          if (consumers.get(token) === deliver) consumers.delete(token);
          await sub.close();
        }
      },
    };
  }

  // ---- worker: results out ----

  /**
   * The results in as few requests as fit inline (NATS: 768 KiB each; sent in the same turn, so in
   * one socket write), a result too big alone through the stash; the acks in order.
   */
  async sendResults(workerId: string, runId: string, results: readonly Uint8Array[], timeoutMs: number): Promise<ResultAck[]> {
    this.o.assertOpen();
    assertRunId(runId);
    if (results.length === 0) return [];
    const token = workerToken(workerId);
    const groups = inlineGroups(results, this.o.stash?.inlineMaxBytes ?? Infinity);
    const acks = await Promise.all(groups.map((g) => this.sendBatch(token, runId, g, timeoutMs)));
    return acks.flat();
  }

  /** One ResultBatch request; its reply's acks (assignments riding on it go to the consumer). */
  private async sendBatch(token: string, runId: string, results: readonly Uint8Array[], timeoutMs: number): Promise<ResultAck[]> {
    const n = ++this.sent;
    const subject = `${this.subj.hotResults(runId)}.${token}.${this.tag}.${n}`;
    const data = metaloop.ResultBatch.encode({ results: results as Uint8Array[] }).finish();
    const stash = this.o.stash;
    let reply: Uint8Array;
    if (!stash || data.byteLength <= stash.inlineMaxBytes) {
      reply = await this.request(subject, data, timeoutMs);
    } else {
      const name = await stash.put(`${runId}.${token}.${this.tag}.${n}`, data);
      const pointer = new Uint8Array(STASHED.byteLength + name.length);
      pointer.set(STASHED);
      pointer.set(new TextEncoder().encode(name), STASHED.byteLength);
      try {
        reply = await this.request(subject, pointer, timeoutMs);
      } catch (err) {
        // Not taken: the worker sends them again (a new stash entry); this one is litter.
        await stash.delete(name).catch(() => undefined);
        throw err;
      }
    }
    let decoded: metaloop.ResultReply;
    try {
      decoded = metaloop.ResultReply.decode(reply);
    } catch (err) {
      throw new TransportError(`the reply to results ${subject} is not a ResultReply: ${(err as Error).message}`);
    }
    if (decoded.acks.length !== results.length) {
      throw new TransportError(`the reply to results ${subject} acks ${decoded.acks.length} results, ${results.length} were sent`);
    }
    // Assignments that rode on the reply go to this worker's consumer, as if they came on its subject.
    const deliver = this.consumers.get(token);
    if (deliver) for (const a of decoded.assignments) deliver(a);
    return decoded.acks.map((a) => (a.accepted ? { accepted: true } : { accepted: false, reason: a.reason ?? '', detail: a.detail ?? '' }));
  }

  // ---- coordinator: results in ----

  serveResults(handler: (msg: ResultMessage) => Promise<ResultAck | void> | ResultAck | void, options: ServeResultsOptions = {}): Closer {
    this.o.assertOpen();
    const holdFor = options.holdReply ?? (() => true);
    const stem = this.subj.hotResults('');
    const stash = this.o.stash;
    const serveRaw =
      this.o.serveRaw ??
      ((subject: string, h: (data: Uint8Array, subject: string, reply: RawReply) => void): Closer =>
        this.bus.serve(subject, (data, subj) => new Promise<Uint8Array>((respond, fail) => h(data, subj, { respond, fail }))));
    const served = serveRaw(this.subj.hotResultsAll(), (data, subject, reply) => {
      void (async () => {
        const rest = (subject ?? '').slice(stem.length);
        const [runId = '', token = ''] = rest.split('.', 2);
        const name = stash ? stashedName(data) : null;
        let bytes = data;
        if (stash && name !== null) {
          const got = await stash.get(name);
          // The error travels back in the reply: the worker's send fails and it sends the results again.
          if (!got) throw new TransportError(`results ${rest}: their stashed payload ${name} is gone`);
          bytes = got;
        }
        let acks: ResultAck[];
        try {
          acks = await this.handleBatch(bytes, runId, rest, handler);
        } finally {
          if (stash && name !== null) await stash.delete(name).catch(() => undefined);
        }
        const encoded = acks.map((a) => ({ accepted: a.accepted, reason: a.reason ?? '', detail: a.detail ?? '' }));
        const send = (assignments: Uint8Array[]) => reply.respond(metaloop.ResultReply.encode({ acks: encoded, assignments }).finish());
        // Held only while the worker has nothing else to do (it waits for this reply).
        if (holdFor(token)) this.hold(token, send);
        else send([]);
      })().catch((err: unknown) => reply.fail(err));
    });
    return {
      close: async () => {
        this.releaseAll();
        await served.close();
        this.releaseAll();
      },
    };
  }

  private releaseAll(): void {
    for (const h of [...this.held.values()]) h.release();
  }

  /** One handler call per result of a batch (an undecodable batch: one call with its bytes, rejected there). */
  private async handleBatch(
    bytes: Uint8Array,
    runId: string,
    rest: string,
    handler: (msg: ResultMessage) => Promise<ResultAck | void> | ResultAck | void,
  ): Promise<ResultAck[]> {
    let results: Uint8Array[];
    try {
      results = metaloop.ResultBatch.decode(bytes).results;
    } catch {
      results = [bytes];
    }
    if (results.length === 0) results = [bytes];
    const acks: ResultAck[] = [];
    for (let i = 0; i < results.length; i++) {
      const ack = await handler({ data: results[i]!, runId, msgId: `${rest}.${i}` });
      acks.push(ack ?? { accepted: true });
    }
    return acks;
  }

  /**
   * Hold the reply to worker `token` for up to replyHoldMs: `send` goes at once, synchronously,
   * with the first assignment made for that worker meanwhile (in the same turn as whatever else
   * the coordinator published then), or without one when the hold ends.
   */
  private hold(token: string, send: (assignments: Uint8Array[]) => void): void {
    if (this.holdMs <= 0 || !token || this.o.closing.aborted) return send([]);
    // A reply already held for this worker (it sent another batch meanwhile) goes now.
    this.held.get(token)?.release();
    let sent = false;
    const entry: HeldReply = {
      release: (assignment) => {
        if (sent) return false;
        sent = true;
        clearTimeout(timer);
        if (this.held.get(token) === entry) this.held.delete(token);
        send(assignment ? [assignment] : []);
        return true;
      },
    };
    this.held.set(token, entry);
    const timer = setTimeout(() => entry.release(), this.holdMs);
    timer.unref?.();
  }
}

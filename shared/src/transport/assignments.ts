/**
 * The Assignments role on a Bus (core NATS or in-process): the hot path of one round trip per
 * shard. The coordinator publishes a shard to one worker's subject
 * `<prefix>.assign.<worker>.<run>.<attempt>.<session>` and holds the lease itself (re-assigning
 * when the worker leaves or its lease runs out); the worker sends its ShardResult as one request
 * on `<prefix>.hot.results.<msgId>` and the coordinator's reply is the ack. No broker state: what
 * must survive a restart stays in JetStream.
 *
 * A result above the stash's inline limit (NATS: 768 KiB, under max_payload) goes into the stash
 * (NATS: the `blobs` object store) and the request carries only its name; the coordinator reads
 * it, hands it over and deletes it once handled. Exactly-once accounting is the coordinator's
 * (one accepted result per shard), whichever way the bytes came.
 *
 * `<session>` names the coordinator session that assigned the shard. Once a consumer sees another
 * session assign work of a run, the older session is gone (a coordinator restarted and resumed the
 * run from a checkpoint, re-issuing every shard since): its shards still queued or waiting for a
 * local retry are dropped, and `stale()` says so to the one being computed.
 *
 * A worker that gives a shard back (nak: a transient failure) retries it itself after the delay,
 * as a queue would redeliver it, up to `maxDeliver` deliveries; it then reports the failure
 * (worker.ts `fail()`), or, when closing, drops it: its `draining` heartbeat makes the
 * coordinator re-assign every shard it held.
 */
import { TransportError } from '../errors.js';
import { assertRunId, subjects, type Subjects } from '../subjects.js';
import type { AssignedOptions, Assignments, Bus, Closer, ResultMessage, WorkMessage } from '../transport.js';

/** Deliveries of an assigned shard on one worker before its failure is reported (as MaxDeliver). */
export const DIRECT_MAX_DELIVER = 5;

/** A coordinator session as one subject token. */
const SESSION = /^[A-Za-z0-9_-]{1,32}$/;

/** Superseded sessions remembered per run (a zombie coordinator's late shards stay dropped). */
const KEEP_DEAD = 8;

/**
 * Where a result too big for one message goes (NATS: the `blobs` object store). Without one
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
 * zero byte (field number 0 is invalid), so an encoded ShardResult is never mistaken for one.
 */
const STASHED = new TextEncoder().encode('\0stash:');

function stashedName(data: Uint8Array): string | null {
  if (data.byteLength <= STASHED.byteLength || data[0] !== 0) return null;
  for (let i = 0; i < STASHED.byteLength; i++) if (data[i] !== STASHED[i]) return null;
  return new TextDecoder().decode(data.subarray(STASHED.byteLength));
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
}

/** Sessions of one run as one consumer saw them. */
interface RunSessions {
  current: string;
  readonly dead: string[];
}

export class BusAssignments implements Assignments {
  private readonly subj: Subjects;
  private readonly bus: Bus;

  constructor(private readonly o: BusAssignmentsOptions) {
    this.subj = subjects(o.prefix);
    this.bus = o.bus;
  }

  assign(workerId: string, runId: string, attempt: number, data: Uint8Array, session = '0'): void {
    this.o.assertOpen();
    assertRunId(runId);
    if (!SESSION.test(session)) throw new TransportError(`invalid coordinator session ${JSON.stringify(session)}: 1-32 characters of A-Z, a-z, 0-9, '_' and '-'`);
    this.bus.publish(`${this.subj.assign(workerId)}.${runId}.${attempt}.${session}`, data);
  }

  consumeAssigned(workerId: string, options: AssignedOptions = {}): AsyncIterable<WorkMessage> {
    this.o.assertOpen();
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
    /** A shard of `session` arrived: a different session of the run supersedes the one before. */
    const arrived = (runId: string, session: string): boolean => {
      const r = runs.get(runId);
      if (!r) {
        runs.set(runId, { current: session, dead: [] });
        return true;
      }
      if (r.dead.includes(session)) return false; // a superseded session's late shard
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
    const sub: Closer = this.bus.subscribe(`${stem}>`, (data, subject) => {
      const [runId, attempt, session, ...extra] = subject.slice(stem.length).split('.');
      const n = Number(attempt);
      if (!runId || !session || extra.length > 0 || !Number.isInteger(n) || n < 0) return;
      if (!arrived(runId, session)) {
        options.onStale?.(runId, 1);
        return;
      }
      // Delivery count = the coordinator's attempt + 1 (+ this worker's own retries), as a queue
      // counts redeliveries: a shard re-assigned after its worker died reports delivery > 1.
      push(make(data, runId, session, n + 1));
    });
    return {
      async *[Symbol.asyncIterator]() {
        const onAbort = () => wake?.();
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          for (;;) {
            while (ready.length === 0 && !signal.aborted) await new Promise<void>((r) => (wake = r));
            wake = null;
            if (signal.aborted) return;
            // A new macrotask per message, as a network delivery would (see InProcTransport.consumeWork).
            await new Promise<void>((r) => setImmediate(r));
            const next = ready.shift();
            if (next && !next.stale?.()) yield next;
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
          ready.length = 0;
          await sub.close();
        }
      },
    };
  }

  async sendResult(runId: string, msgId: string, data: Uint8Array, timeoutMs: number): Promise<void> {
    this.o.assertOpen();
    assertRunId(runId);
    // The msgId starts with the run id (`<run>.<step>.<shard>…`).
    const subject = `${this.subj.hotResults(runId)}.${msgId.startsWith(`${runId}.`) ? msgId.slice(runId.length + 1) : msgId}`;
    const stash = this.o.stash;
    if (!stash || data.byteLength <= stash.inlineMaxBytes) {
      await this.bus.request(subject, data, timeoutMs);
      return;
    }
    const name = await stash.put(msgId, data);
    const pointer = new Uint8Array(STASHED.byteLength + name.length);
    pointer.set(STASHED);
    pointer.set(new TextEncoder().encode(name), STASHED.byteLength);
    try {
      await this.bus.request(subject, pointer, timeoutMs);
    } catch (err) {
      // Not taken: the worker sends it again (a new stash entry); this one is litter.
      await stash.delete(name).catch(() => undefined);
      throw err;
    }
  }

  serveResults(handler: (msg: ResultMessage) => Promise<void> | void): Closer {
    this.o.assertOpen();
    const stem = this.subj.hotResults('');
    const stash = this.o.stash;
    return this.bus.serve(this.subj.hotResultsAll(), async (data, subject) => {
      const rest = (subject ?? '').slice(stem.length);
      const dot = rest.indexOf('.');
      const runId = dot > 0 ? rest.slice(0, dot) : rest;
      const name = stash ? stashedName(data) : null;
      if (!stash || name === null) {
        await handler({ data, runId, msgId: rest });
        return new Uint8Array(0);
      }
      const bytes = await stash.get(name);
      // The error travels back in the reply: the worker's send fails and it sends the result again.
      if (!bytes) throw new TransportError(`result ${rest}: its stashed payload ${name} is gone`);
      try {
        await handler({ data: bytes, runId, msgId: rest });
      } finally {
        await stash.delete(name).catch(() => undefined);
      }
      return new Uint8Array(0);
    });
  }
}

/**
 * The Bus role on core NATS: publish/subscribe (events, heartbeats) and request/reply (the control
 * API; a responder's error travels back in a header and is thrown by request()). This is all a
 * light client (`jetstream: false`, the CLI) uses. Part of NatsTransport (nats.ts).
 *
 * The hot path's requests (results, parameter versions asked for) go through `hotRequest`: one
 * long-lived reply subscription for all of them (`<inbox>.<n>`), a map from token to waiter and no
 * per-request objects beyond a timer; an Error is made only when a request fails. (nats.js'
 * request() builds a RequestError and a TimeoutError up front for every request, for their stack
 * traces: ~3 % of a worker's CPU when it was the hot path, issue 29.)
 */
import { createInbox, headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { ConnectionError, RequestTimeoutError, TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Bus, Closer } from '../transport.js';
import type { RawReply } from './assignments.js';
import { requestError } from './nats-options.js';

const ERROR_HEADER = 'Metaloop-Error';
/** nats-server's default max_payload (1 MiB), until the server's INFO says otherwise. */
const NATS_DEFAULT_MAX_PAYLOAD = 1024 * 1024;
const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What the bus needs from its connection. */
export interface BusHost {
  readonly log: Logger;
  readonly address: string;
  readonly prefix: string;
  assertOpen(): void;
  /** Register a subscription's cleanup with the connection (closed with it). */
  track(stop: () => Promise<void>): Closer;
  /** True while the connection is lost (reconnecting) or closed. */
  reconnecting(): boolean;
}

interface Waiter {
  readonly subject: string;
  readonly timeoutMs: number;
  readonly resolve: (data: Uint8Array) => void;
  readonly reject: (err: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

export class NatsBus implements Bus {
  /** The hot path's reply subscription, made on its first request. */
  private replies: { readonly inbox: string; readonly sub: Subscription; readonly waiting: Map<string, Waiter> } | null = null;
  private requests = 0;
  /** The server's max_payload as last seen: `nc.info` is undefined while the client reconnects. */
  private knownMaxPayload: number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly h: BusHost,
  ) {
    this.knownMaxPayload = nc.info?.max_payload ?? NATS_DEFAULT_MAX_PAYLOAD;
  }

  /** The limit a message is checked against (messages published while reconnecting are buffered by nats.js). */
  private maxPayload(): number {
    const now = this.nc.info?.max_payload;
    if (now) this.knownMaxPayload = now;
    return this.knownMaxPayload;
  }

  // ---- core pub/sub ----

  publish(subject: string, data: Uint8Array): void {
    this.h.assertOpen();
    if (data.byteLength > this.maxPayload()) {
      throw new TransportError(`message on ${subject} is ${data.byteLength} bytes, above the server's max_payload ${this.maxPayload()}`);
    }
    this.nc.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Closer {
    this.h.assertOpen();
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.h.log.warn('subscription error', { subject, error: errMessage(err) });
          return;
        }
        try {
          handler(msg.data, msg.subject);
        } catch (e) {
          this.h.log.warn('subscriber threw', { subject, error: errMessage(e) });
        }
      },
    });
    // async so that a throwing unsubscribe() becomes a rejection, which track() catches and logs.
    // eslint-disable-next-line @typescript-eslint/require-await
    return this.h.track(async () => {
      if (!this.nc.isClosed()) sub.unsubscribe();
    });
  }

  // ---- request/reply ----

  serve(subject: string, handler: (data: Uint8Array, subject: string) => Promise<Uint8Array>): Closer {
    return this.serveRaw(subject, (data, subj, reply) => {
      handler(data, subj).then(
        (r) => reply.respond(r),
        (e: unknown) => reply.fail(e),
      );
    });
  }

  /**
   * Serve requests, each answered once through its `reply` whenever it is ready — synchronously
   * from wherever it is sent (the hot path holds result replies for the next assignment,
   * assignments.ts). A failure travels back in a header; request() throws it.
   */
  serveRaw(subject: string, handler: (data: Uint8Array, subject: string, reply: RawReply) => void): Closer {
    this.h.assertOpen();
    const sub = this.nc.subscribe(subject, {
      queue: `${this.h.prefix}-api`,
      callback: (err, msg) => {
        if (err) {
          this.h.log.warn('service subscription error', { subject, error: errMessage(err) });
          return;
        }
        let answered = false;
        const send = (data: Uint8Array, h?: ReturnType<typeof natsHeaders>) => {
          if (answered) return;
          answered = true;
          try {
            msg.respond(data, h ? { headers: h } : undefined);
          } catch (e) {
            this.h.log.warn('cannot reply', { subject, error: errMessage(e) });
          }
        };
        const reply: RawReply = {
          respond: (data) => send(data),
          fail: (e) => {
            const h = natsHeaders();
            h.set(ERROR_HEADER, errMessage(e).replace(/[\r\n]+/g, ' ').slice(0, 2000));
            send(new Uint8Array(0), h);
          },
        };
        try {
          handler(msg.data, msg.subject, reply);
        } catch (e) {
          reply.fail(e);
        }
      },
    });
    // async so that a throwing unsubscribe() becomes a rejection, which track() catches and logs.
    // eslint-disable-next-line @typescript-eslint/require-await
    return this.h.track(async () => {
      if (!this.nc.isClosed()) sub.unsubscribe();
    });
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.h.assertOpen();
    let reply;
    try {
      reply = await this.nc.request(subject, data, { timeout: timeoutMs });
    } catch (err) {
      // Unanswered because the server went away, not because no responder runs: say so.
      if (this.h.reconnecting()) throw new ConnectionError(`lost the connection to NATS at ${this.h.address} (reconnecting)`, this.h.address, { cause: err });
      throw requestError(err, subject, timeoutMs, this.h.address);
    }
    const remote = reply.headers?.get(ERROR_HEADER);
    if (remote) throw new TransportError(`request on ${subject} failed in the responder: ${remote}`, this.h.address);
    return reply.data;
  }

  // ---- the hot path's request/reply ----

  /**
   * A request on the hot path (see the file comment): the same contract as request() — the reply's
   * data, a responder's error as TransportError, RequestTimeoutError when nobody answers in time
   * (no responder: at once), ConnectionError while reconnecting.
   */
  hotRequest(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    this.h.assertOpen();
    const r = this.replySubscription();
    const token = (++this.requests).toString(36);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        r.waiting.delete(token);
        reject(this.unanswered(subject, timeoutMs));
      }, timeoutMs);
      r.waiting.set(token, { subject, timeoutMs, resolve, reject, timer });
      try {
        if (data.byteLength > this.maxPayload()) {
          throw new TransportError(`request on ${subject} is ${data.byteLength} bytes, above the server's max_payload ${this.maxPayload()}`);
        }
        this.nc.publish(subject, data, { reply: `${r.inbox}.${token}` });
      } catch (err) {
        clearTimeout(timer);
        r.waiting.delete(token);
        reject(err instanceof TransportError ? err : new TransportError(`request on ${subject} failed: ${errMessage(err)}`, this.h.address, { cause: err }));
      }
    });
  }

  private unanswered(subject: string, timeoutMs: number): Error {
    if (this.h.reconnecting()) return new ConnectionError(`lost the connection to NATS at ${this.h.address} (reconnecting)`, this.h.address);
    return new RequestTimeoutError(subject, timeoutMs);
  }

  private replySubscription(): NonNullable<NatsBus['replies']> {
    if (this.replies) return this.replies;
    const inbox = createInbox();
    const waiting = new Map<string, Waiter>();
    const head = inbox.length + 1;
    const sub = this.nc.subscribe(`${inbox}.*`, {
      callback: (err, msg: Msg) => {
        if (err) return;
        const token = msg.subject.slice(head);
        const w = waiting.get(token);
        if (!w) return; // timed out already
        waiting.delete(token);
        clearTimeout(w.timer);
        // No responder: the server's 503 status at once (the connection asks for it).
        if (msg.data.length === 0 && msg.headers?.code === 503) return w.reject(this.unanswered(w.subject, w.timeoutMs));
        const remote = msg.headers?.get(ERROR_HEADER);
        if (remote) return w.reject(new TransportError(`request on ${w.subject} failed in the responder: ${remote}`, this.h.address));
        w.resolve(msg.data);
      },
    });
    this.replies = { inbox, sub, waiting };
    // async so that a throwing unsubscribe() becomes a rejection, which track() catches and logs.
    // eslint-disable-next-line @typescript-eslint/require-await
    this.h.track(async () => {
      if (!this.nc.isClosed()) sub.unsubscribe();
      for (const w of waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new TransportError(`request on ${w.subject}: the connection closed`, this.h.address));
      }
      waiting.clear();
    });
    return this.replies;
  }
}

/**
 * The Bus role on core NATS: publish/subscribe (events, heartbeats) and request/reply (the control
 * API; a responder's error travels back in a header and is thrown by request()). This is all a
 * light client (`jetstream: false`, the CLI) uses. Part of NatsTransport (nats.ts).
 */
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { ConnectionError, TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Bus, Closer } from '../transport.js';
import { requestError } from './nats-options.js';

const ERROR_HEADER = 'Metaloop-Error';
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

export class NatsBus implements Bus {
  constructor(
    private readonly nc: NatsConnection,
    private readonly h: BusHost,
  ) {}

  // ---- core pub/sub ----

  publish(subject: string, data: Uint8Array): void {
    this.h.assertOpen();
    if (data.byteLength > this.nc.info!.max_payload) {
      throw new TransportError(`message on ${subject} is ${data.byteLength} bytes, above the server's max_payload ${this.nc.info!.max_payload}`);
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
    this.h.assertOpen();
    const sub = this.nc.subscribe(subject, {
      queue: `${this.h.prefix}-api`,
      callback: (err, msg) => {
        if (err) {
          this.h.log.warn('service subscription error', { subject, error: errMessage(err) });
          return;
        }
        void (async () => {
          try {
            msg.respond(await handler(msg.data, msg.subject));
          } catch (e) {
            const h = natsHeaders();
            h.set(ERROR_HEADER, errMessage(e).replace(/[\r\n]+/g, ' ').slice(0, 2000));
            try {
              msg.respond(new Uint8Array(0), { headers: h });
            } catch (e2) {
              this.h.log.warn('cannot reply', { subject, error: errMessage(e2) });
            }
          }
        })();
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
}

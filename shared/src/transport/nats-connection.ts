/**
 * A NATS connection's state for NatsTransport: open or closing, disconnected and waiting for the
 * reconnect (from the connection's status stream), and the retry of transient failures (NATS
 * restarting) with the error mapping every role uses; plus opening the JetStream side.
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { NotFoundError, PermissionError, TransportError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isTransient, type CompiledNatsTransportOptions } from './nats-options.js';
import { ensureResources, type NatsResources } from './nats-resources.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A wait that does not keep the process alive. */
export const sleepUnref = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
export const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The JetStream side of a connection (none for a light client). */
export interface JetStreamParts {
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly res: NatsResources;
}

/** Open JetStream on `nc` and create (idempotently) every stream, consumer and bucket; errors say what to do. */
export async function openJetStream(nc: NatsConnection, o: CompiledNatsTransportOptions): Promise<JetStreamParts> {
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const res = await ensureResources(jsm, js, o);
    return { jsm, js, res };
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

/** Open/closing, reconnect waits and retries of one NATS connection. */
export class NatsLink {
  private readonly closer = new AbortController();
  private reconnected: { promise: Promise<void>; resolve: () => void } | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly address: string,
    private readonly retryMs: number,
  ) {
    void this.watchStatus();
  }

  /** Aborted once the transport closes. */
  get closing(): AbortSignal {
    return this.closer.signal;
  }

  get closed(): boolean {
    return this.closer.signal.aborted;
  }

  /** Disconnected and waiting for the reconnect, or closed. */
  get reconnecting(): boolean {
    return this.reconnected !== null || this.nc.isClosed();
  }

  close(): void {
    this.closer.abort();
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

  assertOpen(): void {
    if (this.closed) throw new TransportError('transport is closed', this.address);
  }

  /** Run `fn`, retrying transient failures (NATS restarting) for up to retryMs. */
  async retry<T>(what: string, fn: () => Promise<T>, whileClosing = false): Promise<T> {
    const deadline = Date.now() + this.retryMs;
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
}

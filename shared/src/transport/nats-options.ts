/** NatsTransport options: what users pass, the compiled form, env vars, and NATS error mapping. */
import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type Authenticator, type ConnectionOptions } from '@nats-io/transport-node';
import { ConnectionError, PermissionError, RequestTimeoutError, TransportError } from '../errors.js';
import { DEFAULT_LEASE_MS, DEFAULT_MAX_DELIVER } from '../lease.js';
import { silentLogger, type Logger } from '../logger.js';
import { DEFAULT_PREFIX, subjects, type Subjects } from '../subjects.js';
import type { ParamsBroadcastOptions } from './nats-params.js';

export interface NatsTlsOptions {
  /** CA certificate file (PEM) to verify the server. */
  readonly ca?: string;
  /** Client certificate file (PEM), for mutual TLS. */
  readonly cert?: string;
  /** Client key file (PEM). */
  readonly key?: string;
}

/** Parameter broadcast options (paramsBroadcast, paramsChunkBytes, paramsGraceMs): nats-params.ts. */
export interface NatsTransportOptions extends ParamsBroadcastOptions {
  /** Server URL(s). Default `nats://127.0.0.1:4222`. */
  readonly servers?: string | readonly string[];
  /** Subject prefix. Default `metaloop`. */
  readonly prefix?: string;
  /** Connection name shown by the server's monitoring. */
  readonly name?: string;
  /** Work lease (consumer AckWait). Default 30000. */
  readonly leaseMs?: number;
  /** Deliveries of a work item before it is dropped (consumer MaxDeliver). Default 5. */
  readonly maxDeliver?: number;
  /** Msg-id de-duplication window of the work and results streams. Default 120000. */
  readonly dedupeWindowMs?: number;
  /** Give up connecting after this long. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Reconnect attempts after a lost connection; -1 = forever (default). */
  readonly maxReconnectAttempts?: number;
  readonly reconnectTimeWaitMs?: number;
  /** How long publishes and store operations retry through a NATS outage. Default 20000. */
  readonly retryMs?: number;
  /** Results older than this are dropped from the results stream. Default 1 day. */
  readonly resultsMaxAgeMs?: number;
  /** Work items and results larger than this go through the Object Store. Default 768 KiB. */
  readonly inlineMaxBytes?: number;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** A `.creds` file (JWT + nkey seed) or a file holding only an nkey seed (`SU…`). */
  readonly credsFile?: string;
  readonly tls?: NatsTlsOptions;
  readonly logger?: Logger;
  /**
   * false: a light client without JetStream (request/reply, publish, subscribe only), e.g. the
   * CLI, whose NATS role has no JetStream rights. Default true.
   */
  readonly jetstream?: boolean;
  /**
   * Whether this process owns the consumers' configuration (lease, MaxDeliver): an owner updates
   * an existing consumer to its options; a user (workers) creates a missing one but never changes
   * an existing one. Default true (the coordinator); workers pass false.
   */
  readonly manageConsumers?: boolean;
}

export interface CompiledNatsTransportOptions {
  readonly servers: readonly string[];
  readonly prefix: string;
  readonly subjects: Subjects;
  readonly name: string;
  readonly leaseMs: number;
  readonly maxDeliver: number;
  readonly dedupeWindowMs: number;
  readonly connectTimeoutMs: number;
  readonly maxReconnectAttempts: number;
  readonly reconnectTimeWaitMs: number;
  readonly retryMs: number;
  readonly resultsMaxAgeMs: number;
  readonly inlineMaxBytes: number;
  readonly user: string | undefined;
  readonly pass: string | undefined;
  readonly token: string | undefined;
  readonly credsFile: string | undefined;
  readonly tls: NatsTlsOptions | undefined;
  readonly logger: Logger;
  readonly jetstream: boolean;
  readonly manageConsumers: boolean;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) throw new TransportError(`NatsTransport option ${name} must be a positive integer, got ${String(value)}`);
  return v;
}

export function compileNatsTransportOptions(options: NatsTransportOptions = {}): CompiledNatsTransportOptions {
  const raw = options.servers ?? 'nats://127.0.0.1:4222';
  const servers = (typeof raw === 'string' ? raw.split(',') : [...raw]).map((s) => s.trim()).filter(Boolean);
  if (servers.length === 0) throw new TransportError('NatsTransport option servers is empty: give a URL like nats://127.0.0.1:4222');
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const maxReconnectAttempts = options.maxReconnectAttempts ?? -1;
  if (!Number.isInteger(maxReconnectAttempts) || maxReconnectAttempts < -1) {
    throw new TransportError(`NatsTransport option maxReconnectAttempts must be -1 (forever) or >= 0, got ${maxReconnectAttempts}`);
  }
  if (options.token && (options.user || options.pass)) {
    throw new TransportError('NatsTransport: give either token or user/pass, not both');
  }
  if ((options.user === undefined) !== (options.pass === undefined)) {
    throw new TransportError('NatsTransport: user and pass go together');
  }
  const inlineMaxBytes = positiveInt('inlineMaxBytes', options.inlineMaxBytes, 768 * 1024);
  if (inlineMaxBytes > 1024 * 1024 - 4096) throw new TransportError('NatsTransport option inlineMaxBytes must stay below 1 MiB minus headers (max_payload)');
  return {
    servers,
    prefix,
    subjects: subjects(prefix),
    name: options.name ?? `metaloop-${process.pid}`,
    leaseMs: positiveInt('leaseMs', options.leaseMs, DEFAULT_LEASE_MS),
    maxDeliver: positiveInt('maxDeliver', options.maxDeliver, DEFAULT_MAX_DELIVER),
    dedupeWindowMs: positiveInt('dedupeWindowMs', options.dedupeWindowMs, 120_000),
    connectTimeoutMs: positiveInt('connectTimeoutMs', options.connectTimeoutMs, 5_000),
    maxReconnectAttempts,
    reconnectTimeWaitMs: positiveInt('reconnectTimeWaitMs', options.reconnectTimeWaitMs, 1_000),
    retryMs: positiveInt('retryMs', options.retryMs, 20_000),
    resultsMaxAgeMs: positiveInt('resultsMaxAgeMs', options.resultsMaxAgeMs, 24 * 3600_000),
    inlineMaxBytes,
    user: options.user,
    pass: options.pass,
    token: options.token,
    credsFile: options.credsFile,
    tls: options.tls,
    logger: options.logger ?? silentLogger,
    jetstream: options.jetstream ?? true,
    manageConsumers: options.manageConsumers ?? true,
  };
}

function readFileOrThrow(what: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new TransportError(`cannot read NATS ${what} file ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
}

/** Options for `connect()` of @nats-io/transport-node. */
export function connectionOptions(o: CompiledNatsTransportOptions): ConnectionOptions {
  const authenticator: Authenticator[] = [];
  if (o.credsFile) {
    const bytes = readFileOrThrow('creds', o.credsFile);
    const text = new TextDecoder().decode(bytes).trim();
    authenticator.push(/^SU[A-Z2-7]+$/.test(text) ? nkeyAuthenticator(new TextEncoder().encode(text)) : credsAuthenticator(bytes));
  }
  const tls = o.tls
    ? {
        ...(o.tls.ca ? { caFile: o.tls.ca } : {}),
        ...(o.tls.cert ? { certFile: o.tls.cert } : {}),
        ...(o.tls.key ? { keyFile: o.tls.key } : {}),
      }
    : undefined;
  return {
    servers: [...o.servers],
    name: o.name,
    timeout: o.connectTimeoutMs,
    maxReconnectAttempts: o.maxReconnectAttempts,
    reconnectTimeWait: o.reconnectTimeWaitMs,
    // No stack-trace Error objects made up front for every request (nats.js' default; a JetStream
    // put or get is several requests): errors still name what failed.
    noAsyncTraces: true,
    ...(o.user !== undefined ? { user: o.user, pass: o.pass } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
    ...(authenticator.length > 0 ? { authenticator } : {}),
    ...(tls ? { tls } : {}),
  };
}

const errName = (err: unknown): string => (err instanceof Error ? err.name : '');
const errMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function isAuthError(err: unknown): boolean {
  return (
    ['AuthorizationError', 'UserAuthenticationExpiredError', 'PermissionViolationError'].includes(errName(err)) ||
    /authoriz|authenticat|permission/i.test(errMessage(err))
  );
}

/** A failed connect() as a one-line ConnectionError / PermissionError naming the URL. */
export function connectError(err: unknown, o: CompiledNatsTransportOptions): TransportError {
  const url = o.servers.join(',');
  if (isAuthError(err)) {
    return new PermissionError(
      `NATS at ${url} refused the credentials (${errMessage(err)}): check --nats-user/--nats-password/--nats-token/--nats-creds or METALOOP_NATS_USER, METALOOP_NATS_PASSWORD, METALOOP_NATS_TOKEN, METALOOP_NATS_CREDS`,
      url,
      { cause: err },
    );
  }
  const reason = errMessage(err).replace(/\s+/g, ' ');
  return new ConnectionError(
    `cannot connect to NATS at ${url} (${reason}): check that nats-server is running and reachable there, or pass --nats URL / set METALOOP_NATS_URL`,
    url,
    { cause: err },
  );
}

/** Worth retrying after a reconnect: timeouts, no responders, JetStream 503, disconnects. */
export function isTransient(err: unknown): boolean {
  const name = errName(err);
  if (['TimeoutError', 'NoRespondersError', 'RequestError', 'ConnectionError', 'DrainingConnectionError'].includes(name)) {
    return name !== 'DrainingConnectionError';
  }
  return /timeout|timed out|no responders|503|temporarily unavailable|disconnect|reconnect|connection (lost|refused)|stale/i.test(
    errMessage(err),
  );
}

export function isClosedError(err: unknown): boolean {
  return ['ClosedConnectionError', 'DrainingConnectionError'].includes(errName(err)) || /connection (closed|draining)/i.test(errMessage(err));
}

/** Map a NATS request failure to RequestTimeoutError (no responders or no reply in time). */
export function requestError(err: unknown, subject: string, timeoutMs: number, url: string): Error {
  const name = errName(err);
  const causeName = err instanceof Error ? errName(err.cause) : '';
  if (['TimeoutError', 'NoRespondersError'].includes(name) || ['TimeoutError', 'NoRespondersError'].includes(causeName) || name === 'RequestError') {
    return new RequestTimeoutError(subject, timeoutMs);
  }
  if (isAuthError(err)) return new PermissionError(`not allowed to request ${subject} on ${url}: ${errMessage(err)}`, url, { cause: err });
  return new TransportError(`request on ${subject} failed: ${errMessage(err)}`, url, { cause: err });
}

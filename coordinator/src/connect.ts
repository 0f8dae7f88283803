/** Connection settings of the CLI (flags and METALOOP_NATS_* env) and the NATS transport they open. */
import { NatsTransport, type Logger, type NatsTransportOptions, type Transport } from '@metaloop/shared';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export interface NatsSettings {
  readonly url: string;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly token?: string | undefined;
  readonly creds?: string | undefined;
  readonly tlsCa?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
}

/** The same settings as METALOOP_* environment variables (for child processes). */
export function natsEnv(s: NatsSettings, prefix: string): Record<string, string> {
  const env: Record<string, string> = { METALOOP_NATS_URL: s.url, METALOOP_PREFIX: prefix };
  const set = (k: string, v: string | undefined) => {
    if (v) env[k] = v;
  };
  set('METALOOP_NATS_USER', s.user);
  set('METALOOP_NATS_PASSWORD', s.password);
  set('METALOOP_NATS_TOKEN', s.token);
  set('METALOOP_NATS_CREDS', s.creds);
  set('METALOOP_NATS_TLS_CA', s.tlsCa);
  set('METALOOP_NATS_TLS_CERT', s.tlsCert);
  set('METALOOP_NATS_TLS_KEY', s.tlsKey);
  return env;
}

/**
 * Open a NatsTransport (streams, consumers and buckets are created when missing). A server that
 * cannot be reached is a ConnectionError naming the URL; refused credentials a PermissionError.
 * `extra`: more transport options, e.g. `{ jetstream: false }` for the CLI's light client (its
 * NATS role may only call the API) or the coordinator's `leaseMs` / `maxDeliver`.
 */
export async function connectNats(
  s: NatsSettings,
  prefix: string,
  logger: Logger,
  name: string,
  extra: Partial<NatsTransportOptions> = {},
): Promise<Transport> {
  const options: NatsTransportOptions = {
    ...extra,
    servers: s.url,
    prefix,
    name,
    logger,
    ...(s.user !== undefined || s.password !== undefined ? { user: s.user ?? '', pass: s.password ?? '' } : {}),
    ...(s.token ? { token: s.token } : {}),
    ...(s.creds ? { credsFile: s.creds } : {}),
    ...(s.tlsCa || s.tlsCert || s.tlsKey
      ? { tls: { ...(s.tlsCa ? { ca: s.tlsCa } : {}), ...(s.tlsCert ? { cert: s.tlsCert } : {}), ...(s.tlsKey ? { key: s.tlsKey } : {}) } }
      : {}),
  };
  return NatsTransport.create(options);
}

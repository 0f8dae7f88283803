/** Connection settings of the CLI (flags and METALOOP_NATS_* env) and the NATS transport they open. */
import { ConnectionError, type Logger, type Transport } from '@metaloop/shared';

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

/** Open a NatsTransport; a server that cannot be reached is a ConnectionError naming the URL. */
export async function connectNats(s: NatsSettings, logger: Logger, name: string): Promise<Transport> {
  void logger;
  void name;
  throw new ConnectionError(`cannot connect to NATS at ${s.url}: NatsTransport is not available yet`, s.url);
}

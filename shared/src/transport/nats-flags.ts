/**
 * The one mapping of the NATS command-line flags and METALOOP_* environment variables to
 * NatsTransportOptions, used by every CLI (`metaloop`, `metaloop-coordinator`, `metaloop-worker`),
 * and back to environment variables for child processes (`metaloop local` starts workers).
 */
import type { NatsTlsOptions, NatsTransportOptions } from './nats-options.js';

/** Where every CLI connects when neither --nats nor METALOOP_NATS_URL says otherwise. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** The NATS flags every CLI takes (commander's camelCase names of --nats, --prefix, --nats-*). */
export interface NatsFlags {
  readonly nats?: string | undefined;
  readonly prefix?: string | undefined;
  readonly natsUser?: string | undefined;
  readonly natsPassword?: string | undefined;
  readonly natsToken?: string | undefined;
  readonly natsCreds?: string | undefined;
  readonly natsTlsCa?: string | undefined;
  readonly natsTlsCert?: string | undefined;
  readonly natsTlsKey?: string | undefined;
}

/** Each flag and the environment variable that stands for it. */
const ENV: ReadonlyArray<readonly [keyof NatsFlags, string]> = [
  ['nats', 'METALOOP_NATS_URL'],
  ['prefix', 'METALOOP_PREFIX'],
  ['natsUser', 'METALOOP_NATS_USER'],
  ['natsPassword', 'METALOOP_NATS_PASSWORD'],
  ['natsToken', 'METALOOP_NATS_TOKEN'],
  ['natsCreds', 'METALOOP_NATS_CREDS'],
  ['natsTlsCa', 'METALOOP_NATS_TLS_CA'],
  ['natsTlsCert', 'METALOOP_NATS_TLS_CERT'],
  ['natsTlsKey', 'METALOOP_NATS_TLS_KEY'],
];

/**
 * Connection options of the NATS flags; a flag not given (or empty) falls back to its
 * METALOOP_* variable in `env`, and what neither sets is left out (the transport's defaults:
 * nats://127.0.0.1:4222, prefix `metaloop`). A user or a password alone sets both (the other empty).
 */
export function natsOptionsFromFlags(flags: NatsFlags, env: NodeJS.ProcessEnv = process.env): NatsTransportOptions {
  const get = (k: keyof NatsFlags): string | undefined => {
    const flag = flags[k];
    if (flag !== undefined && flag !== '') return flag;
    const v = env[ENV.find(([f]) => f === k)![1]];
    return v === undefined || v === '' ? undefined : v;
  };
  const [url, prefix, user, pass, token, creds] = [get('nats'), get('prefix'), get('natsUser'), get('natsPassword'), get('natsToken'), get('natsCreds')];
  const [ca, cert, key] = [get('natsTlsCa'), get('natsTlsCert'), get('natsTlsKey')];
  const tls: NatsTlsOptions = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
  return {
    ...(url ? { servers: url } : {}),
    ...(prefix ? { prefix } : {}),
    ...(user !== undefined || pass !== undefined ? { user: user ?? '', pass: pass ?? '' } : {}),
    ...(token ? { token } : {}),
    ...(creds ? { credsFile: creds } : {}),
    ...(Object.keys(tls).length > 0 ? { tls } : {}),
  };
}

/** The flags as METALOOP_* environment variables (for a child process); unset flags are left out. */
export function natsFlagsToEnv(flags: NatsFlags): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, name] of ENV) {
    const v = flags[k];
    if (v) env[name] = v;
  }
  return env;
}

/**
 * The one mapping of the NATS command-line flags and METALOOP_* environment variables to
 * NatsTransportOptions, used by every CLI (`metaloop`, `metaloop-coordinator`, `metaloop-worker`),
 * and back to environment variables for child processes (`metaloop local` starts workers).
 */
import { DEFAULT_PREFIX } from '../subjects.js';
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

/** One NATS flag as every CLI declares it (commander: `new Option(flags, description).env(env)`). */
export interface NatsFlagSpec {
  readonly key: keyof NatsFlags;
  readonly flags: string;
  readonly description: string;
  readonly env: string;
  readonly default?: string;
}

/** The NATS flags of every CLI, each with its help and the environment variable that stands for it. */
export const NATS_FLAG_SPECS: readonly NatsFlagSpec[] = [
  { key: 'nats', flags: '--nats <url>', description: 'NATS server URL(s), comma separated', env: 'METALOOP_NATS_URL', default: DEFAULT_NATS_URL },
  { key: 'prefix', flags: '--prefix <prefix>', description: 'subject prefix', env: 'METALOOP_PREFIX', default: DEFAULT_PREFIX },
  { key: 'natsUser', flags: '--nats-user <user>', description: 'NATS user', env: 'METALOOP_NATS_USER' },
  { key: 'natsPassword', flags: '--nats-password <password>', description: 'NATS password', env: 'METALOOP_NATS_PASSWORD' },
  { key: 'natsToken', flags: '--nats-token <token>', description: 'NATS token', env: 'METALOOP_NATS_TOKEN' },
  { key: 'natsCreds', flags: '--nats-creds <file>', description: 'NATS .creds (or nkey seed) file', env: 'METALOOP_NATS_CREDS' },
  { key: 'natsTlsCa', flags: '--nats-tls-ca <file>', description: 'CA certificate (PEM) to verify the server', env: 'METALOOP_NATS_TLS_CA' },
  { key: 'natsTlsCert', flags: '--nats-tls-cert <file>', description: 'client certificate (PEM)', env: 'METALOOP_NATS_TLS_CERT' },
  { key: 'natsTlsKey', flags: '--nats-tls-key <file>', description: 'client key (PEM)', env: 'METALOOP_NATS_TLS_KEY' },
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
    const v = env[NATS_FLAG_SPECS.find((f) => f.key === k)!.env];
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
  for (const { key, env: name } of NATS_FLAG_SPECS) {
    const v = flags[key];
    if (v) env[name] = v;
  }
  return env;
}

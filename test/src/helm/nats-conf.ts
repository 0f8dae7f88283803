/**
 * The nats.conf that the official NATS chart renders into its ConfigMap: read it (users and
 * permissions), rewrite the few lines that cannot run on loopback here, resolve a rendered
 * container's environment as the kubelet would, and decide what a permission block allows.
 */
import assert from 'node:assert/strict';
import type { K8sObject } from './harness.js';

/** One `key: value` of the rendered config that the chart wrote unquoted (`<< X >>` in values). */
export interface RawValue {
  readonly raw: string;
}

export interface Permission {
  readonly allow?: string[];
  readonly deny?: string[];
}
export interface UserPermissions {
  readonly publish?: Permission | string[];
  readonly subscribe?: Permission | string[];
  readonly allow_responses?: boolean | { max?: number; expires?: string };
}
export interface ConfUser {
  readonly user: string;
  readonly password: string | RawValue;
  readonly permissions?: UserPermissions;
}

/** The parts of the rendered config the tests read. */
export interface RenderedNatsConf {
  readonly text: string;
  readonly doc: Record<string, unknown>;
  readonly users: ConfUser[];
}

/**
 * The chart formats its config as pretty JSON, then unquotes `"<< X >>"` (nats.formatConfig), so
 * values like `$SERVER_NAME` or `10Gi` are bare. Parse it back, keeping those as `{ raw }`.
 */
export function parseRenderedConf(text: string): RenderedNatsConf {
  const lines = text.split('\n').map((line) => {
    const m = /^(\s*(?:"(?:[^"\\]|\\.)*":\s*)?)(.*?)(,?)\s*$/.exec(line);
    if (!m) return line;
    const [, head = '', value = '', comma = ''] = m;
    if (value === '' || /^[[{\]}]$/.test(value) || value === '{}' || value === '[]') return line;
    try {
      JSON.parse(value);
      return line;
    } catch {
      return `${head}${JSON.stringify({ raw: value })}${comma}`;
    }
  });
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(lines.join('\n')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`the rendered nats.conf is not the chart's JSON format: ${(err as Error).message}\n${text}`);
  }
  const auth = doc['authorization'] as { users?: ConfUser[] } | undefined;
  return { text, doc, users: auth?.users ?? [] };
}

/** The `nats.conf` of the NATS chart's ConfigMap among the rendered objects. */
export function natsConfOf(objs: K8sObject[]): RenderedNatsConf {
  const maps = objs.filter((o) => o.kind === 'ConfigMap' && typeof (o['data'] as Record<string, unknown> | undefined)?.['nats.conf'] === 'string');
  assert.equal(maps.length, 1, `expected one ConfigMap with nats.conf, got ${maps.map((m) => m.metadata.name).join(', ') || 'none'}`);
  return parseRenderedConf((maps[0]!['data'] as Record<string, string>)['nats.conf']!);
}

/** A textual rewrite of the rendered config, with the reason it is needed here. */
export interface Rewrite {
  readonly what: string;
  readonly from: RegExp;
  readonly to: string;
  readonly why: string;
}

/**
 * Applies each rewrite to exactly one line (fails naming the rewrite when its line is missing or
 * repeated, so a change in the chart cannot slip through unrewritten), returns the new text.
 */
export function applyRewrites(text: string, rewrites: readonly Rewrite[]): string {
  let out = text;
  for (const r of rewrites) {
    const global = new RegExp(r.from.source, r.from.flags.includes('g') ? r.from.flags : `${r.from.flags}g`);
    const hits = out.match(global)?.length ?? 0;
    assert.equal(hits, 1, `rewrite "${r.what}": ${r.from} should match one line of the rendered nats.conf, matched ${hits}:\n${out}`);
    out = out.replace(r.from, r.to);
  }
  return out;
}

/** What the kubelet would give a container: values, $(VAR) expansion, Secret keys, pod fields. */
export function resolveEnv(
  env: ReadonlyArray<{ name: string; value?: string; valueFrom?: Record<string, unknown> }>,
  objs: K8sObject[],
  pod: { name: string; namespace: string },
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    if (e.value !== undefined) {
      out[e.name] = e.value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, v: string) => out[v] ?? all);
      continue;
    }
    const ref = e.valueFrom?.['secretKeyRef'] as { name: string; key: string } | undefined;
    const field = (e.valueFrom?.['fieldRef'] as { fieldPath: string } | undefined)?.fieldPath;
    if (ref) {
      const secret = objs.find((s) => s.kind === 'Secret' && s.metadata.name === ref.name);
      assert.ok(secret, `env ${e.name} reads Secret ${ref.name}, which the chart does not render (rendered Secrets: ${objs.filter((s) => s.kind === 'Secret').map((s) => s.metadata.name).join(', ') || 'none'})`);
      const data = (secret['data'] ?? {}) as Record<string, string>;
      const b64 = data[ref.key];
      assert.ok(b64 !== undefined, `env ${e.name} reads key ${ref.key} of Secret ${ref.name}, which has only ${Object.keys(data).join(', ')}`);
      out[e.name] = Buffer.from(b64, 'base64').toString('utf8');
    } else if (field === 'metadata.name') {
      out[e.name] = pod.name;
    } else if (field === 'metadata.namespace') {
      out[e.name] = pod.namespace;
    } else {
      assert.fail(`env ${e.name}: cannot resolve ${JSON.stringify(e.valueFrom)} outside a cluster`);
    }
  }
  return out;
}

/**
 * NATS subject matching as nats-server's sublist does it for permissions: the tokens of `subject`
 * are taken literally (a subscription's own `*` or `>` is just a token), `*` in the pattern takes
 * one token, `>` one or more.
 */
export function covers(pattern: string, subject: string): boolean {
  const pt = pattern.split('.');
  const st = subject.split('.');
  for (let i = 0; i < pt.length; i++) {
    const a = pt[i];
    if (a === '>') return st.length > i;
    const b = st[i];
    if (b === undefined) return false;
    if (a !== '*' && a !== b) return false;
  }
  return pt.length === st.length;
}

function lists(p: Permission | string[] | undefined): { allow: string[] | null; deny: string[] } {
  if (p === undefined) return { allow: null, deny: [] };
  if (Array.isArray(p)) return { allow: p, deny: [] };
  return { allow: p.allow ?? null, deny: p.deny ?? [] };
}

/**
 * Whether `perms` lets a client publish to (or subscribe to) `subject`, as nats-server decides it:
 * allowed when an allow pattern covers it (or there is no allow list) and no deny pattern covers
 * it. (A wildcard subscription that merely overlaps a deny pattern is accepted by the server, which
 * then filters the denied messages: not modelled; our roles have no deny lists.)
 */
export function permits(perms: UserPermissions | undefined, op: 'publish' | 'subscribe', subject: string): boolean {
  const { allow, deny } = lists(perms?.[op]);
  const allowed = allow === null || allow.some((p) => covers(p, subject));
  const denied = deny.some((p) => covers(p, subject));
  return allowed && !denied;
}

/**
 * Helpers of the tests that install the chart on a real API server (@metaloop/testing/kube): helm
 * pointed at the cluster, the chart copy with the NATS release Chart.yaml's constraint selects,
 * the prometheus-operator CRDs of test/fixtures/crds, and small readers of what the server holds.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import semver from 'semver';
import { parse as parseYaml } from 'yaml';
import type { KubeCluster } from '@metaloop/testing/kube';
import { CHART_DIR, helm, makeTestChart, REPO_ROOT, vendoredNatsCharts, type HelmResult, type TestChart } from './harness.js';

export const CRD_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'crds');
export const GPU_VALUES = path.join(CHART_DIR, 'examples', 'gpu-cluster.yaml');

/** A temp copy of the chart with the newest unpacked NATS release that Chart.yaml's constraint allows. */
export async function chartWithNats(): Promise<TestChart & { natsVersion: string }> {
  const chartYaml = parseYaml(await readFile(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as { dependencies?: { name: string; version: string }[] };
  const constraint = chartYaml.dependencies?.find((d) => d.name === 'nats')?.version ?? '';
  const vendored = await vendoredNatsCharts();
  const version = semver.maxSatisfying(
    vendored.map((v) => v.version),
    constraint,
  );
  const nats = vendored.find((v) => v.version === version);
  assert.ok(nats, `no unpacked NATS chart satisfies Chart.yaml's "${constraint}" (have ${vendored.map((v) => v.version).join(', ')})`);
  return { ...(await makeTestChart({ nats })), natsVersion: nats.version };
}

/** helm against the cluster (cluster-admin kubeconfig), killed after 5 minutes (above the tests' `--timeout 3m`). */
export function helmOn(bin: string, cluster: KubeCluster, args: readonly string[]): Promise<HelmResult> {
  return helm(bin, [...args, '--kubeconfig', cluster.kubeconfig], 5 * 60_000);
}

export function ok(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout.slice(-2000)}`);
  return r.stdout;
}

/** Installs the prometheus-operator CRDs (server-side apply) and waits until they are served. */
export async function installPrometheusOperatorCrds(cluster: KubeCluster): Promise<string[]> {
  ok(await cluster.kubectl(['apply', '--server-side', '-f', CRD_DIR]), 'kubectl apply of the prometheus-operator CRDs');
  const names = ['servicemonitors', 'podmonitors', 'prometheusrules'].map((p) => `crd/${p}.monitoring.coreos.com`);
  // Polled rather than `kubectl wait`, which errors out on a CRD whose status has no conditions yet.
  type Crd = { status?: { conditions?: { type: string; status: string }[] } };
  for (const name of names) {
    await until(`${name} Established`, 60_000, async () => (await cluster.json<Crd>(['get', name])).status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
  }
  return names;
}

export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { kind: string; name: string }[];
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
}
export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  [k: string]: unknown;
}
export interface List<T = Obj> {
  items: T[];
}
export interface Pod extends Obj {
  spec: { nodeName?: string; containers: { name: string; resources?: { limits?: Record<string, string> } }[] };
  status: { phase?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}
export interface Event extends Obj {
  reason: string;
  message: string;
  involvedObject: { kind: string; name: string };
  type: string;
  lastTimestamp?: string;
  eventTime?: string;
  count?: number;
}

export const pods = async (c: KubeCluster, ns: string, selector: string): Promise<Pod[]> => (await c.json<List<Pod>>(['get', 'pods', '-n', ns, '-l', selector])).items;

/** Pods that exist and are not being deleted, by phase. */
export function byPhase(list: readonly Pod[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of list) (out[p.status.phase ?? '?'] ??= []).push(p.metadata.name);
  return out;
}

/** Polls `pred` every 250 ms until it returns a value other than undefined/false; throws naming `what`. */
export async function until<T>(what: string, timeoutMs: number, pred: () => Promise<T | undefined | false>, detail?: () => Promise<string>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${await detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Events of one object, oldest first, as `reason: message` lines. */
export async function eventsOf(c: KubeCluster, ns: string, kind: string, name: string): Promise<Event[]> {
  const list = await c.json<List<Event>>(['get', 'events', '-n', ns, '--field-selector', `involvedObject.kind=${kind},involvedObject.name=${name}`]);
  return list.items.sort((a, b) => (a.lastTimestamp ?? a.eventTime ?? '').localeCompare(b.lastTimestamp ?? b.eventTime ?? ''));
}

/** Every object of every listable namespaced kind in `ns` (events excluded): `Kind/name` strings. */
export async function everythingIn(c: KubeCluster, ns: string): Promise<string[]> {
  const kinds = ok(await c.kubectl(['api-resources', '--verbs=list', '--namespaced', '-o', 'name']), 'kubectl api-resources')
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s && s !== 'events' && s !== 'events.events.k8s.io');
  const list = await c.json<List>(['get', kinds.join(','), '-n', ns, '--ignore-not-found']);
  return list.items.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

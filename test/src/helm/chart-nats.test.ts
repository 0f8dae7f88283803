/**
 * The chart as users install it: helm/metaloop with the official NATS chart as its dependency
 * (a release unpacked from ../shared/vendor/helm-charts into a temp copy's charts/nats/, the one
 * Chart.yaml's version constraint selects) and the DEFAULT values (nats.enabled: true).
 *
 * Then a real nats-server runs the nats.conf of the rendered ConfigMap, rewritten only where
 * loopback on this machine needs it (REWRITES below says what and why), with the environment the
 * rendered StatefulSet gives its container (passwords from the rendered Secret). Against it: each
 * role may use exactly the product subjects (shared/src/subjects.ts) that the rendered config
 * grants it, is refused what it must not do, and a whole run completes with coordinator and worker
 * processes given the NATS settings of the rendered Deployments and the CLI those of NOTES.txt.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { API_VERBS, findNatsServer, subjects } from '@metaloop/shared';
import { parse as parseYaml } from 'yaml';
import { freePort, SINUSOID, waitFor, type Proc } from '@metaloop/testing';
import { apiClient, metaloopCli, sinusoidSets, startCoordinator, startWorker, waitWorkers } from '@metaloop/testing/cluster';
import { CHART_DIR, helm, installHelm, makeTestChart, parseManifests, validateObject, vendoredNatsCharts, type K8sObject, type TestChart, type VendoredChart } from './harness.js';
import { applyRewrites, natsConfOf, permits, resolveEnv, type ConfUser, type RawValue, type RenderedNatsConf, type Rewrite } from './nats-conf.js';

/** The release and namespace of deploy/README.md's `helm install metaloop helm/metaloop -n metaloop`. */
const RELEASE = 'metaloop';
const NAMESPACE = 'metaloop';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: Record<string, unknown>;
}
interface PodSpec {
  containers: Array<{ name: string; env?: EnvVar[]; args?: string[] }>;
  volumes?: Array<{ name: string; configMap?: { name: string } }>;
}
const podSpec = (o: K8sObject) => (o['spec'] as { template: { spec: PodSpec } }).template.spec;
const containerOf = (o: K8sObject, name?: string) => {
  const c = podSpec(o).containers.find((x) => name === undefined || x.name === name);
  assert.ok(c, `${o.kind}/${o.metadata.name} has no container ${name ?? ''}`);
  return c;
};
function one(objs: K8sObject[], kind: string, pred: (o: K8sObject) => boolean = () => true): K8sObject {
  const hits = objs.filter((o) => o.kind === kind && pred(o));
  assert.equal(hits.length, 1, `expected one ${kind}, got ${hits.map((o) => o.metadata.name).join(', ') || 'none'}`);
  return hits[0]!;
}

interface Rendered {
  readonly chart: VendoredChart;
  readonly release: string;
  readonly objs: K8sObject[];
  readonly conf: RenderedNatsConf;
}

let helmBin = '';
let vendored: VendoredChart[] = [];
let constraint = '';
let statuses: Array<{ version: string; status: string }> = [];
let chosen: Rendered;
const chartCopies: TestChart[] = [];

/** `helm dependency list` status of the NATS dependency when `nats` is unpacked in charts/nats/. */
async function dependencyStatus(nats: VendoredChart): Promise<string> {
  const copy = await makeTestChart({ nats });
  chartCopies.push(copy);
  const r = await helm(helmBin, ['dependency', 'list', copy.dir]);
  assert.equal(r.code, 0, `helm dependency list:\n${r.stderr}`);
  const row = r.stdout.split('\n').find((l) => /^nats\s/.test(l));
  assert.ok(row, `helm dependency list shows no nats row:\n${r.stdout}`);
  return row.trim().split(/\s{2,}|\t+/).pop()?.trim() ?? '';
}

/** (lint --strict +) template with the default values; every object validated against its schema. */
async function render(nats: VendoredChart, release = RELEASE, lint = true): Promise<Rendered> {
  const copy = await makeTestChart({ nats });
  chartCopies.push(copy);
  if (lint) {
    const l = await helm(helmBin, ['lint', copy.dir, '--strict', '--namespace', NAMESPACE]);
    assert.equal(l.code, 0, `helm lint --strict with NATS chart ${nats.version} and the default values:\n${l.stdout}\n${l.stderr}`);
  }
  const tpl = await helm(helmBin, ['template', release, copy.dir, '--namespace', NAMESPACE]);
  assert.equal(tpl.code, 0, `helm template with NATS chart ${nats.version} and the default values:\n${tpl.stderr}`);
  const objs = parseManifests(tpl.stdout);
  for (const o of objs) await validateObject(o);
  return { chart: nats, release, objs, conf: natsConfOf(objs) };
}

// ---------------------------------------------------------------- the server the chart configures

const natsStatefulSet = (objs: K8sObject[]) => one(objs, 'StatefulSet', (o) => o.metadata.labels?.['app.kubernetes.io/name'] === 'nats');

/**
 * What must change to run the rendered config on loopback here, and nothing else. Each rewrite
 * must match exactly one line of the rendered text (else the test fails naming it).
 */
function rewrites(o: { port: number | string; monitorPort: number | string; dir: string }): Rewrite[] {
  return [
    { what: 'client port', from: /"port": 4222/, to: `"host": "127.0.0.1",\n  "port": ${o.port}`, why: '4222 may be taken on a shared machine; listen on loopback only, not on all interfaces' },
    { what: 'monitoring port', from: /"http_port": 8222/, to: `"http": "127.0.0.1:${o.monitorPort}"`, why: '8222 may be taken; loopback only' },
    { what: 'pid file', from: /"pid_file": "\/var\/run\/nats\/nats\.pid"/, to: `"pid_file": ${JSON.stringify(path.join(o.dir, 'nats.pid'))}`, why: '/var/run/nats is an emptyDir volume in the pod; a temp dir here' },
    { what: 'JetStream store', from: /"store_dir": "\/data"/, to: `"store_dir": ${JSON.stringify(path.join(o.dir, 'jetstream'))}`, why: '/data is the PVC mount in the pod; a fresh temp dir here' },
  ];
}

interface RunningServer {
  readonly url: string;
  readonly monitorUrl: string;
  readonly log: () => string;
  stop(): Promise<void>;
}
const servers: RunningServer[] = [];

/** nats-server with only `-c <rewritten rendered config>` and the StatefulSet container's env. */
async function startRenderedServer(r: Rendered): Promise<RunningServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'metaloop-chart-nats-'));
  const port = await freePort();
  const monitorPort = await freePort();
  const text = applyRewrites(r.conf.text, rewrites({ port, monitorPort, dir }));
  const conf = path.join(dir, 'nats.conf');
  await writeFile(conf, text);
  const sts = natsStatefulSet(r.objs);
  const env = resolveEnv(containerOf(sts, 'nats').env ?? [], r.objs, { name: `${sts.metadata.name}-0`, namespace: NAMESPACE });
  const proc: ChildProcess = spawn(findNatsServer(), ['-c', conf], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  let exited = '';
  proc.once('error', (err) => (exited = `could not start nats-server (apt-get install nats-server): ${err.message}`));
  proc.once('exit', (code, sig) => (exited ||= `exited (${sig ?? code})`));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      const gone = new Promise((res) => proc.once('exit', res));
      process.kill(proc.pid, 'SIGTERM');
      await gone;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const server = { url: `nats://127.0.0.1:${port}`, monitorUrl: `http://127.0.0.1:${monitorPort}`, log: () => log, stop };
  servers.push(server);
  const deadline = Date.now() + 15_000;
  while (!log.includes('Server is ready')) {
    if (exited) throw new Error(`nats-server with the rendered nats.conf ${exited}:\n${log}\n--- config ---\n${text}`);
    if (Date.now() > deadline) throw new Error(`nats-server with the rendered nats.conf did not become ready:\n${log}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  return server;
}

// ---------------------------------------------------------------- roles and probes

type Role = 'coordinator' | 'worker' | 'cli';
const ROLES: Role[] = ['coordinator', 'worker', 'cli'];
const RUN = 'probe-run';

interface RoleCreds {
  readonly user: string;
  readonly password: string;
}

/** Credentials of each role as the chart hands them out: Deployment env for the processes, the Secret (NOTES.txt) for the CLI. */
function roleCreds(r: Rendered): Record<Role, RoleCreds> {
  const values = parseYaml(readFileSync(path.join(CHART_DIR, 'values.yaml'), 'utf8')) as {
    auth: { cliUser: string; keys: { cliPassword: string } };
  };
  const processEnv = (component: string) => {
    const d = one(r.objs, 'Deployment', (o) => o.metadata.labels?.['app.kubernetes.io/component'] === component);
    const env = resolveEnv(containerOf(d).env ?? [], r.objs, { name: `${d.metadata.name}-0`, namespace: NAMESPACE });
    return { user: env['METALOOP_NATS_USER'] ?? '', password: env['METALOOP_NATS_PASSWORD'] ?? '' };
  };
  // NOTES.txt reads the CLI password from the Secret the coordinator reads its own from.
  const coordinator = one(r.objs, 'Deployment', (o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'coordinator');
  const secretName = (containerOf(coordinator).env?.find((e) => e.name === 'METALOOP_NATS_PASSWORD')?.valueFrom?.['secretKeyRef'] as { name?: string } | undefined)?.name;
  const secret = one(r.objs, 'Secret', (o) => o.metadata.name === secretName);
  const cliPassword = Buffer.from((secret['data'] as Record<string, string>)[values.auth.keys.cliPassword] ?? '', 'base64').toString('utf8');
  return { coordinator: processEnv('coordinator'), worker: processEnv('worker'), cli: { user: values.auth.cliUser, password: cliPassword } };
}

function userOf(r: Rendered, name: string): ConfUser {
  const u = r.conf.users.find((x) => x.user === name);
  assert.ok(u, `the rendered nats.conf has no user ${name} (users: ${r.conf.users.map((x) => x.user).join(', ')})`);
  return u;
}

/** Every subject the product's subject definitions produce, with sample arguments. */
function productSubjects(prefix: string): string[] {
  const s = subjects(prefix);
  const out: string[] = API_VERBS.map((v) => s.api(v));
  const samples = [RUN, 'probe-worker', '7', '3'];
  for (const [name, fn] of Object.entries(s)) {
    if (typeof fn !== 'function' || name === 'api') continue;
    const make = fn as (...a: string[]) => string;
    out.push(make(...samples.slice(0, make.length)));
  }
  return [...new Set(out)];
}

/**
 * JetStream API and storage subjects of the product's streams (`*Stream` names of subjects.ts),
 * KV bucket `runsBucket` and object stores (the other `*Bucket` names).
 */
function jetStreamSubjects(prefix: string): string[] {
  const names = Object.entries(subjects(prefix)).filter((e): e is [string, string] => typeof e[1] === 'string');
  const kv = names.filter(([k]) => k === 'runsBucket').map(([, v]) => v);
  const obj = names.filter(([k]) => k.endsWith('Bucket') && k !== 'runsBucket').map(([, v]) => v);
  const streams = [...names.filter(([k]) => k.endsWith('Stream')).map(([, v]) => v), ...kv.map((b) => `KV_${b}`), ...obj.map((b) => `OBJ_${b}`)];
  return [
    '$JS.API.INFO',
    ...streams.flatMap((x) => [`$JS.API.STREAM.INFO.${x}`, `$JS.API.STREAM.DELETE.${x}`, `$JS.API.STREAM.PURGE.${x}`, `$JS.API.STREAM.MSG.GET.${x}`, `$JS.API.CONSUMER.CREATE.${x}`]),
    ...kv.map((b) => `$KV.${b}.${RUN}`),
    ...obj.map((b) => `$O.${b}.M.probe`),
  ];
}

/**
 * `subjects(prefix)[name](...args)` as a list: empty when subjects.ts has no such subject (the
 * expectations below then skip it, so that subject families can come and go).
 */
function subjectOf(prefix: string, name: string, ...args: string[]): string[] {
  const fn = (subjects(prefix) as unknown as Record<string, unknown>)[name];
  return typeof fn === 'function' ? [(fn as (...a: string[]) => string)(...args)] : [];
}

interface Decisions {
  readonly publish: Map<string, boolean>;
  readonly subscribe: Map<string, boolean>;
}

/**
 * Publishes to and subscribes to each subject on one connection of `creds`, and reads which the
 * server refused (it answers each refusal with a Permissions Violation naming the subject; a flush
 * round trip returns after all of them).
 */
async function probe(url: string, creds: RoleCreds, pubs: string[], subs: string[]): Promise<Decisions> {
  const nc = await connect({ servers: url, user: creds.user, pass: creds.password, reconnect: false });
  const refused = { publish: new Set<string>(), subscribe: new Set<string>() };
  const watcher = (async () => {
    for await (const s of nc.status()) {
      if (s.type !== 'error') continue;
      const m = /Permissions Violation for (Publish|Subscription) to "([^"]+)"/.exec(String(s.error));
      if (m) refused[m[1] === 'Publish' ? 'publish' : 'subscribe'].add(m[2]!);
    }
  })();
  try {
    for (const p of pubs) nc.publish(p, new Uint8Array([0]));
    for (const s of subs) nc.subscribe(s);
    await nc.flush();
    // The errors are on the wire before the flush's PONG; give the status iterator a moment.
    await new Promise((res) => setTimeout(res, 200));
  } finally {
    await nc.close();
    await watcher;
  }
  return {
    publish: new Map(pubs.map((p) => [p, !refused.publish.has(p)])),
    subscribe: new Map(subs.map((s) => [s, !refused.subscribe.has(s)])),
  };
}

/**
 * Each role's password as the server reads it (a `$VAR` of nats.conf, set in the NATS container's
 * env from a Secret) equals the one the chart gives that role's processes (and NOTES.txt's CLI).
 */
function assertPasswordWiring(r: Rendered): void {
  const sts = natsStatefulSet(r.objs);
  const creds = roleCreds(r);
  const serverEnv = resolveEnv(containerOf(sts, 'nats').env ?? [], r.objs, { name: `${sts.metadata.name}-0`, namespace: NAMESPACE });
  for (const role of ROLES) {
    const u = userOf(r, creds[role].user);
    const raw = (u.password as RawValue).raw;
    assert.match(raw ?? '', /^\$[A-Z_]+$/, `user ${u.user}: the password should be a variable the server reads from its env, got ${JSON.stringify(u.password)}`);
    const fromServer = serverEnv[raw.slice(1)];
    assert.ok(fromServer && fromServer.length >= 16, `release ${r.release}, user ${u.user}: ${raw} is not set (or short) in the NATS container's env`);
    assert.equal(fromServer, creds[role].password, `release ${r.release}, user ${u.user}: the server's password (${raw}) is not the one the ${role} gets`);
  }
}

// ---------------------------------------------------------------- tests

before(async () => {
  helmBin = await installHelm();
  vendored = await vendoredNatsCharts();
  const chartYaml = parseYaml(readFileSync(path.join(CHART_DIR, 'Chart.yaml'), 'utf8')) as {
    dependencies?: Array<{ name: string; version: string }>;
  };
  const dep = chartYaml.dependencies?.find((d) => d.name === 'nats');
  assert.ok(dep, 'helm/metaloop/Chart.yaml has no nats dependency');
  constraint = dep.version;
  statuses = [];
  for (const v of vendored) statuses.push({ version: v.version, status: await dependencyStatus(v) });
  const ok = vendored.filter((v) => statuses.find((s) => s.version === v.version)?.status === 'unpacked');
  const newest = ok[ok.length - 1];
  assert.ok(newest, `no unpacked NATS chart satisfies Chart.yaml's nats "${constraint}": ${statuses.map((s) => `${s.version}: ${s.status}`).join(', ')}`);
  chosen = await render(newest);
});

after(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  for (const c of chartCopies) await c.cleanup();
});

describe('helm/metaloop with the official NATS chart, default values', { timeout: 600_000 }, () => {
  it("resolves Chart.yaml's NATS version constraint to an unpacked release, as `helm dependency update` would", (t) => {
    t.diagnostic(`Chart.yaml nats "${constraint}"; helm dependency list with each release unpacked: ${statuses.map((s) => `${s.version} ${s.status}`).join(', ')}; rendering ${chosen.chart.version}`);
    for (const s of statuses) assert.match(s.status, /^(unpacked|wrong version)$/, `helm dependency list could not judge NATS chart ${s.version}: ${s.status}`);
    const newer = vendored.filter((v) => v.version !== chosen.chart.version && statuses.find((s) => s.version === v.version)?.status === 'wrong version');
    if (newer.length > 0) t.diagnostic(`unpacked but outside "${constraint}": ${newer.map((v) => v.version).join(', ')}`);
  });

  it('renders a NATS server, its config and Service that the coordinator, workers and Secret are wired to', (t) => {
    const { objs, conf } = chosen;
    t.diagnostic(`rendered: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
    const sts = natsStatefulSet(objs);
    const configVolume = podSpec(sts).volumes?.find((v) => v.configMap)?.configMap?.name;
    one(objs, 'ConfigMap', (o) => o.metadata.name === configVolume && typeof (o['data'] as Record<string, string>)['nats.conf'] === 'string');
    assert.deepEqual(containerOf(sts, 'nats').args, ['--config', '/etc/nats-config/nats.conf']);

    // The NATS URL of the processes names the subchart's client Service and port.
    const coordinator = one(objs, 'Deployment', (o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'coordinator');
    const url = new URL(containerOf(coordinator).env?.find((e) => e.name === 'METALOOP_NATS_URL')?.value ?? '');
    const [svcName, svcNs] = url.hostname.split('.');
    const svc = one(objs, 'Service', (o) => o.metadata.name === svcName);
    assert.equal(svcNs, NAMESPACE);
    const ports = (svc['spec'] as { ports: Array<{ name: string; port: number }> }).ports;
    assert.equal(ports.find((p) => p.name === 'nats')?.port, Number(url.port), `Service ${svcName} ports: ${JSON.stringify(ports)}`);

    // JetStream on, with the file store on the PVC the StatefulSet mounts.
    const js = conf.doc['jetstream'] as { store_dir?: string } | undefined;
    assert.ok(js?.store_dir, `the rendered nats.conf has no JetStream file store:\n${conf.text}`);
    assert.ok(((sts['spec'] as { volumeClaimTemplates?: unknown[] }).volumeClaimTemplates ?? []).length > 0, 'no JetStream PVC');

    assertPasswordWiring(chosen);
  });

  it('wires the NATS server to this chart\'s Secret under another release name too', async () => {
    for (const release of ['ml', 'team-metaloop']) assertPasswordWiring(await render(chosen.chart, release, false));
  });

  it('renders the same nats.conf with every unpacked NATS chart release (the dependency can move between them)', (t) => {
    return (async () => {
      for (const v of vendored.filter((x) => x.version !== chosen.chart.version)) {
        const other = await render(v);
        const image = (r: Rendered) => (containerOf(natsStatefulSet(r.objs), 'nats') as { image?: string }).image;
        t.diagnostic(`NATS chart ${v.version}: image ${image(other)}; ${chosen.chart.version}: image ${image(chosen)}`);
        assert.equal(other.conf.text, chosen.conf.text, `NATS chart ${v.version} renders another nats.conf than ${chosen.chart.version} from our values`);
      }
    })();
  });

  it('runs in nats-server: JetStream on from the config alone; no or wrong credentials refused', async (t) => {
    for (const r of rewrites({ port: '<free port>', monitorPort: '<free port>', dir: '<temp dir>' })) t.diagnostic(`rewrite ${r.what}: ${r.from.source} -> ${r.to.replace(/\n\s*/g, ' ')} (${r.why})`);
    const server = await startRenderedServer(chosen);
    const creds = roleCreds(chosen);
    const nc = await connect({ servers: server.url, user: creds.coordinator.user, pass: creds.coordinator.password, reconnect: false });
    try {
      const info = await nc.request('$JS.API.INFO', new Uint8Array(), { timeout: 5000 });
      assert.doesNotMatch(info.string(), /"error"/, `JetStream answers with an error: ${info.string()}`);
    } finally {
      await nc.close();
    }
    await assert.rejects(connect({ servers: server.url, reconnect: false }), /authoriz/i);
    for (const role of ROLES) {
      await assert.rejects(connect({ servers: server.url, user: creds[role].user, pass: 'wrong', reconnect: false }), /authoriz/i, role);
    }
    const health = await fetch(`${server.monitorUrl}/healthz`);
    assert.equal(health.status, 200, 'the startup probe path /healthz');
    await server.stop();
  });

  it('lets each role use exactly the product subjects and JetStream APIs the rendered config grants it', async (t) => {
    const server = await startRenderedServer(chosen);
    const creds = roleCreds(chosen);
    const prefix = subjects().prefix;
    // Publishing goes to literal subjects only; subscriptions also take the product's wildcards.
    const pubs = [...productSubjects(prefix).filter((x) => !/(^|\.)[*>](\.|$)/.test(x)), ...jetStreamSubjects(prefix)];
    const subs = [...productSubjects(prefix), '_INBOX.probe'];
    const rows: string[] = [];
    for (const role of ROLES) {
      const perms = userOf(chosen, creds[role].user).permissions;
      assert.ok(perms, `user ${creds[role].user} has no permissions in the rendered nats.conf: it could do anything`);
      const live = await probe(server.url, creds[role], pubs, subs);
      for (const op of ['publish', 'subscribe'] as const) {
        for (const [subject, allowed] of live[op]) {
          assert.equal(allowed, permits(perms, op, subject), `${role} ${op} ${subject}: the server ${allowed ? 'allows' : 'refuses'} it, the rendered config says the opposite`);
        }
        rows.push(`${role} may ${op}: ${[...live[op]].filter(([, a]) => a).map(([s]) => s).join(' ') || '(nothing)'}`);
      }
    }
    for (const r of rows) t.diagnostic(r);
    await server.stop();
  });

  it('refuses each role what it must not do', async () => {
    const server = await startRenderedServer(chosen);
    const creds = roleCreds(chosen);
    const s = subjects();
    const sub = (name: string, ...args: string[]) => subjectOf(s.prefix, name, ...args);
    const apis = API_VERBS.map((v) => s.api(v));
    const js = jetStreamSubjects(s.prefix);
    // The hot path (direct dispatch): a worker's shards in one message, their results as one
    // request; a parameter version a worker missed, asked of the coordinator.
    const assign = sub('assign', 'probe-worker').map((x) => `${x}.${RUN}.0`);
    const hot = sub('hotResults', RUN).map((x) => `${x}.probe-worker.abc.1`);
    const ask = sub('hotParams', RUN).map((x) => `${x}.7`);
    // Writes a worker must not make. The object store `blobs` (payloads above the inline limit) is
    // read and written by both sides: deleting an object purges its chunks (STREAM.PURGE.OBJ_blobs).
    const writes = js.filter((x) => /^\$JS\.API\.STREAM\.DELETE\.|^\$JS\.API\.STREAM\.PURGE\.(?!OBJ_blobs$)|^\$KV\.|^\$O\.(?!blobs\.)/.test(x));
    const expect: Record<Role, { pub: string[]; sub: string[]; noPub: string[]; noSub: string[] }> = {
      // The CLI: the control API and progress events, no JetStream at all.
      cli: {
        pub: apis,
        sub: [...sub('eventsAll'), ...sub('events', RUN)],
        noPub: [...sub('work', RUN), ...sub('results', RUN), ...sub('events', RUN), ...sub('heartbeat'), ...sub('params', RUN), ...assign, ...hot, ...ask, ...js],
        noSub: [...apis, ...sub('workAll'), ...sub('resultsAll'), ...sub('heartbeat'), ...sub('paramsAll'), ...sub('assignAll'), ...sub('hotResultsAll'), ...sub('hotParamsAll')],
      },
      // Workers: results, heartbeats and parameters; they neither serve nor call the API, nor
      // hand out work, nor change run records, checkpoints, parameters or streams.
      worker: {
        pub: [...sub('results', RUN), ...sub('heartbeat'), ...hot, ...ask],
        sub: [...sub('params', RUN).map((x) => `${x}.>`), ...sub('assign', 'probe-worker').map((x) => `${x}.>`)],
        noPub: [...apis, ...sub('work', RUN), ...sub('events', RUN), ...sub('params', RUN), ...assign, ...writes],
        noSub: [...apis, ...sub('resultsAll'), ...sub('heartbeat'), ...sub('eventsAll'), ...sub('hotResultsAll'), ...sub('hotParamsAll')],
      },
      // The coordinator: serves the API, sees heartbeats, publishes events and parameters; it
      // cannot forge a worker's results or heartbeats.
      coordinator: {
        pub: [...sub('events', RUN), ...sub('params', RUN), ...assign, '$JS.API.INFO'],
        sub: [...apis, ...sub('heartbeat'), ...sub('hotResultsAll'), ...sub('hotParamsAll')],
        noPub: [...sub('results', RUN), ...sub('heartbeat'), ...hot],
        noSub: [],
      },
    };
    for (const role of ROLES) {
      const e = expect[role];
      assert.ok(e.pub.length > 0 && e.sub.length > 0 && e.noPub.length > 0, `${role}: the expectations lost their subjects (renamed in subjects.ts?)`);
      const live = await probe(server.url, creds[role], [...e.pub, ...e.noPub], [...e.sub, ...e.noSub]);
      for (const x of e.pub) assert.equal(live.publish.get(x), true, `${role} must be allowed to publish ${x}`);
      for (const x of e.sub) assert.equal(live.subscribe.get(x), true, `${role} must be allowed to subscribe to ${x}`);
      for (const x of e.noPub) assert.equal(live.publish.get(x), false, `${role} must be refused publishing ${x}`);
      for (const x of e.noSub) assert.equal(live.subscribe.get(x), false, `${role} must be refused subscribing to ${x}`);
    }
    await server.stop();
  });

  it('completes a whole run through it: coordinator and worker processes, submitted with the CLI', async (t) => {
    const server = await startRenderedServer(chosen);
    const procs: Proc[] = [];
    const describeProcs = () => `${procs.map((p) => p.tail(15)).join('\n')}\n--- nats-server ---\n${server.log().split('\n').slice(-15).join('\n')}`;
    try {
      const natsEnvOf = (component: string) => {
        const d = one(chosen.objs, 'Deployment', (o) => o.metadata.labels?.['app.kubernetes.io/component'] === component);
        const env = resolveEnv(containerOf(d).env ?? [], chosen.objs, { name: `${d.metadata.name}-0`, namespace: NAMESPACE });
        const picked = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('METALOOP_NATS_') || k === 'METALOOP_PREFIX'));
        return { ...picked, METALOOP_NATS_URL: server.url };
      };
      const cli = roleCreds(chosen).cli;
      const cliEnv = { METALOOP_NATS_URL: server.url, METALOOP_NATS_USER: cli.user, METALOOP_NATS_PASSWORD: cli.password };
      // Coordinator first: it creates the streams and buckets. (A worker that starts earlier asks
      // to create them itself, is refused, and retries until they exist.)
      const coordinator = await startCoordinator('coordinator', server.url, { env: natsEnvOf('coordinator') });
      procs.push(coordinator.proc);
      // Waits through a light client with the CLI's credentials (a CLI process per poll is slow).
      const api = await apiClient(server.url, { user: cli.user, pass: cli.password });
      try {
        await waitFor('the coordinator to answer the CLI role', 60_000, async () => (await api.client.list(true)) !== undefined, describeProcs);
        procs.push(startWorker('chart-w1', server.url, { env: natsEnvOf('worker') }));
        await waitWorkers(api.client, 1, 60_000, describeProcs);
      } finally {
        await api.close();
      }
      const steps = 6;
      const started = Date.now();
      const r = await metaloopCli(['submit', SINUSOID, ...sinusoidSets(steps).flatMap((x) => ['--set', x]), '--watch', '--json'], cliEnv, 240_000);
      assert.equal(r.code, 0, `metaloop submit --watch:\n${r.stdout}\n${r.stderr}\n${describeProcs()}`);
      const last = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
      assert.equal(last['status'], 'succeeded', r.stdout);
      const status = await metaloopCli(['status', String(last['runId']), '--json'], cliEnv);
      assert.equal(status.code, 0, status.stderr);
      const rec = JSON.parse(status.stdout.trim().split('\n').pop() ?? '{}') as { state?: string; step?: number; seconds?: number; paramsSha256?: string; workers?: Array<{ id: string; shardsDone: number }> };
      assert.equal(rec.state, 'succeeded');
      assert.equal(rec.step, steps);
      t.diagnostic(`run ${String(last['runId'])}: ${rec.state} at step ${rec.step}/${steps}, ${rec.seconds} s of training, submit --watch took ${Date.now() - started} ms; θ sha256 ${rec.paramsSha256}; workers ${JSON.stringify(rec.workers?.map((w) => [w.id, w.shardsDone]))}`);
      assert.doesNotMatch(server.log(), /Violation/, 'a role was refused something during the run (see the nats-server log above)');
    } finally {
      await Promise.allSettled(procs.map((p) => p.stop(3000)));
      await server.stop();
    }
  });
});


/**
 * A real Kubernetes control plane for the cluster tests (no container engine): scripts/kube-up.sh
 * starts etcd, kube-apiserver (127.0.0.1, RBAC, service-account tokens), controller-manager,
 * scheduler and kwok with fake GPU and CPU nodes; scripts/kube-down.sh stops them by pid. The
 * binaries come from scripts/kube-build.sh (built once from the Go module proxy, cached by version).
 *
 * One cluster per test file, shared by its tests: `useKubeCluster()` at the file's top level starts
 * it in `before` and stops it in `after`; its processes are also SIGKILLed by pid if the test
 * process exits without `after` running.
 */
import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import { ROOT } from './paths.js';
import type { Ran } from './run-cli.js';

const execFileP = promisify(execFile);

export const KUBE_UP = join(ROOT, 'scripts/kube-up.sh');
export const KUBE_DOWN = join(ROOT, 'scripts/kube-down.sh');

/** The fake nodes kube-up.sh registers: name → GPUs (0: a CPU node, untainted). */
export const KUBE_NODES: Readonly<Record<string, { gpus: number; product?: string }>> = {
  'gpu-a100-0': { gpus: 2, product: 'NVIDIA-A100-SXM4-80GB' },
  'gpu-h100-0': { gpus: 2, product: 'NVIDIA-H100-80GB-HBM3' },
  'gpu-t4-0': { gpus: 1, product: 'Tesla-T4' },
  'cpu-0': { gpus: 0 },
  'cpu-1': { gpus: 0 },
};

export interface KubectlOptions {
  /** Written to kubectl's standard input (e.g. with `-f -`). */
  input?: string;
  /** Another kubeconfig (default: the cluster-admin one). */
  kubeconfig?: string;
  timeoutMs?: number;
}

/** One line of the API server's audit log (metadata level): requests of ServiceAccounts outside kube-system. */
export interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code: number };
}

export interface ApiAnswer {
  status: number;
  body: string;
}

export interface KubeCluster {
  readonly dir: string;
  /** cluster-admin (system:masters) kubeconfig. */
  readonly kubeconfig: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly caFile: string;
  readonly kubectlBin: string;
  /** Pids of etcd, the API server, controller-manager, scheduler and kwok. */
  readonly pids: readonly number[];
  /** The API server's audit log (JSON lines). */
  readonly auditLog: string;
  /** Seconds kube-up.sh took (build or cache look-up included). */
  readonly startSeconds: number;
  /** Runs kubectl (never throws on a non-zero exit: see `code`). */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<Ran>;
  /** Runs kubectl `args` with `-o json` and parses the answer; throws with kubectl's stderr on failure. */
  json<T>(args: readonly string[], options?: KubectlOptions): Promise<T>;
  /** A kubeconfig file that authenticates with `token` (e.g. a ServiceAccount's, from `kubectl create token`). */
  tokenKubeconfig(name: string, token: string, namespace: string): Promise<string>;
  /** The audit log's completed requests made by `username` (e.g. `system:serviceaccount:ns:name`). */
  audit(username: string): Promise<AuditEvent[]>;
  /** One raw HTTPS request to the API server with a bearer token (no client-side logic in between). */
  request(token: string, method: string, path: string, body?: unknown, contentType?: string): Promise<ApiAnswer>;
  /** Stops every process by pid and removes the state folder (idempotent); resolves to kube-down's CPU summary. */
  stop(): Promise<string>;
}

function parseEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function killPids(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/**
 * Starts the control plane (builds the binaries first when they are not cached: minutes). Throws
 * with kube-up.sh's output (build log or the components' log tails) when it cannot.
 */
export async function startKubeCluster(options: { timeoutMs?: number } = {}): Promise<KubeCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'metaloop-kube-'));
  const t0 = Date.now();
  let stdout: string;
  try {
    ({ stdout } = await execFileP('bash', [KUBE_UP, dir], { timeout: options.timeoutMs ?? 40 * 60_000, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' }));
  } catch (err) {
    const e = err as { message: string; stderr?: string; stdout?: string };
    await execFileP('bash', [KUBE_DOWN, dir]).catch(() => undefined);
    throw new Error(`scripts/kube-up.sh could not start the Kubernetes control plane: ${e.message}\n${(e.stderr ?? '').slice(-8000)}`);
  }
  const env = parseEnv(stdout);
  const pids: number[] = [];
  for (const f of await readdir(join(dir, 'pids'))) {
    if (!f.endsWith('.pid')) continue;
    const pid = Number((await readFile(join(dir, 'pids', f), 'utf8')).trim());
    if (Number.isInteger(pid) && pid > 0) pids.push(pid);
  }
  const onExit = () => killPids(pids);
  process.on('exit', onExit);
  const kubeconfig = env['KUBECONFIG'] ?? join(dir, 'admin.kubeconfig');
  const kubectlBin = env['KUBECTL'] ?? '';
  const server = env['KUBE_SERVER'] ?? '';
  const caFile = env['KUBE_CA'] ?? '';
  const auditLog = env['KUBE_AUDIT_LOG'] ?? join(dir, 'logs', 'audit.jsonl');
  const ca = await readFile(caFile);

  const kubectl = async (args: readonly string[], o: KubectlOptions = {}): Promise<Ran> =>
    new Promise((resolve) => {
      const child = execFile(
        kubectlBin,
        ['--kubeconfig', o.kubeconfig ?? kubeconfig, ...args],
        { timeout: o.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
        (err, out, errOut) => {
          const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
          resolve({ code, stdout: out, stderr: errOut || (err && code !== 0 && !errOut ? err.message : '') });
        },
      );
      if (o.input !== undefined) child.stdin?.end(o.input);
      else child.stdin?.end();
    });

  let stopped = false;
  return {
    dir,
    kubeconfig,
    server,
    caFile,
    kubectlBin,
    pids,
    auditLog,
    startSeconds: (Date.now() - t0) / 1000,
    kubectl,
    async json<T>(args: readonly string[], o: KubectlOptions = {}): Promise<T> {
      const r = await kubectl([...args, '-o', 'json'], o);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    async tokenKubeconfig(name: string, token: string, namespace: string): Promise<string> {
      const file = join(dir, `${name}.kubeconfig`);
      const kc = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'metaloop-test', cluster: { server, 'certificate-authority': caFile } }],
        users: [{ name, user: { token } }],
        contexts: [{ name, context: { cluster: 'metaloop-test', user: name, namespace } }],
        'current-context': name,
      };
      await writeFile(file, JSON.stringify(kc, null, 2), { mode: 0o600 });
      return file;
    },
    async audit(username: string): Promise<AuditEvent[]> {
      const text = await readFile(auditLog, 'utf8').catch(() => '');
      return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as AuditEvent)
        .filter((e) => e.stage === 'ResponseComplete' && e.user.username === username);
    },
    request(token: string, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiAnswer> {
      const url = new URL(path, server);
      const data = body === undefined ? undefined : JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = request(url, { method, ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(data ? { 'content-type': contentType } : {}) }, timeout: 30_000 }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
        req.on('error', reject);
        req.end(data);
      });
    },
    async stop(): Promise<string> {
      if (stopped) return '';
      stopped = true;
      let summary = '';
      try {
        const { stderr } = await execFileP('bash', [KUBE_DOWN, dir], { timeout: 120_000 });
        summary = stderr.trim();
      } catch {
        killPids(pids);
      }
      process.off('exit', onExit);
      return summary;
    },
  };
}

/** The cluster of a test file: `cluster()` inside tests; `await cluster.ready()` in the file's own hooks. */
export interface FileKubeCluster {
  (): KubeCluster;
  /** Resolves once the control plane is up (hooks may run in any order: await this in yours). */
  ready(): Promise<KubeCluster>;
}

/**
 * One control plane for the calling test file: started in `before` (which fails loudly, with the
 * build or start log, when it cannot), stopped in `after`. Call at the file's top level.
 */
export function useKubeCluster(): FileKubeCluster {
  let cluster: KubeCluster | undefined;
  let starting: Promise<KubeCluster> | undefined;
  const ready = () =>
    (starting ??= startKubeCluster().then((c) => {
      cluster = c;
      return c;
    }));
  before(async () => {
    await ready();
  });
  after(async () => {
    await starting?.catch(() => undefined);
    const summary = await cluster?.stop();
    // What the control plane cost this file (its processes are not children the test runner counts).
    if (summary) process.stderr.write(`# ${summary}\n`);
  });
  const get = (() => {
    if (!cluster) throw new Error('the Kubernetes control plane did not start (see the before hook)');
    return cluster;
  }) as FileKubeCluster;
  get.ready = ready;
  return get;
}

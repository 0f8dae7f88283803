/**
 * Helpers of the chart tests: a real helm (scripts/install-helm.sh), a temporary copy of the chart,
 * either without its NATS dependency or with the official NATS chart unpacked into its `charts/`
 * (the chart repository is unreachable here; ../shared/vendor/helm-charts holds the releases), and
 * validation of every rendered object against the Kubernetes schemas of kubernetes-models.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments, parse as parseYaml, stringify as stringifyYaml } from 'yaml';

const execFileP = promisify(execFile);

/** Repository root (test/dist/helm/ -> ../../..). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CHART_DIR = path.join(REPO_ROOT, 'helm', 'metaloop');
export const HELM_VERSION = 'v3.22.0';

/** Installs (or finds the cached) helm; throws with the script's output when it cannot. */
export async function installHelm(): Promise<string> {
  const script = path.join(REPO_ROOT, 'scripts', 'install-helm.sh');
  try {
    const { stdout } = await execFileP('bash', [script], {
      env: { ...process.env, HELM_VERSION },
      timeout: 20 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const bin = stdout.trim().split('\n').pop() ?? '';
    await access(bin);
    return bin;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`helm ${HELM_VERSION} could not be installed by scripts/install-helm.sh: ${e.message}\n${e.stderr ?? ''}`);
  }
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function helm(bin: string, args: string[], timeoutMs = 120_000): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await execFileP(bin, args, {
      timeout: timeoutMs,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, HELM_CACHE_HOME: path.join(tmpdir(), 'metaloop-helm-cache') },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export interface TestChart {
  readonly dir: string;
  /** Fixture files put into the copy because the chart's files/ lacked them (originals not written yet). */
  readonly fixtures: string[];
  cleanup(): Promise<void>;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** A minimal valid rule file / dashboard, used only when the chart's copies do not exist yet. */
const FIXTURE_RULES = {
  groups: [
    {
      name: 'metaloop-fixture',
      rules: [{ alert: 'MetaloopFixture', expr: 'vector(0) > 1', for: '5m', labels: { severity: 'warning' }, annotations: { summary: 'fixture' } }],
    },
  ],
};
const FIXTURE_DASHBOARD = { title: 'Metaloop (fixture)', uid: 'metaloop', panels: [], schemaVersion: 39 };

/** One release of the official NATS chart, unpacked. */
export interface VendoredChart {
  readonly version: string;
  readonly dir: string;
}

/**
 * The unpacked NATS chart releases: `shared/vendor/helm-charts/nats-<version>/` in the team folder
 * beside the clone (`../shared` in CI; the nearest such folder up from the repo root, for
 * worktrees one level deeper), or $METALOOP_HELM_CHARTS_DIR. Throws saying where it looked.
 */
export async function vendoredNatsCharts(): Promise<VendoredChart[]> {
  const candidates: string[] = [];
  if (process.env['METALOOP_HELM_CHARTS_DIR']) candidates.push(process.env['METALOOP_HELM_CHARTS_DIR']);
  for (let dir = path.dirname(REPO_ROOT); ; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, 'shared', 'vendor', 'helm-charts'));
    if (path.dirname(dir) === dir) break;
  }
  for (const root of candidates) {
    const entries = await readdir(root).catch(() => null);
    if (!entries) continue;
    const charts: VendoredChart[] = [];
    for (const e of entries.filter((n) => /^nats-\d+\.\d+\.\d+$/.test(n))) {
      const meta = parseYaml(await readFile(path.join(root, e, 'Chart.yaml'), 'utf8')) as { name?: string; version?: string };
      if (meta.name !== 'nats' || `nats-${meta.version}` !== e) throw new Error(`${path.join(root, e)}/Chart.yaml says ${meta.name} ${meta.version}: not the NATS chart its folder names`);
      charts.push({ version: meta.version ?? e.slice(5), dir: path.join(root, e) });
    }
    if (charts.length > 0) return charts.sort((a, b) => compareVersions(a.version, b.version));
  }
  throw new Error(
    `the official NATS chart is not unpacked beside the repository: looked for nats-<version>/ in ${candidates.join(', ')}. ` +
      'Unpack nats-io/k8s helm/charts/nats releases into ../shared/vendor/helm-charts/ (or set METALOOP_HELM_CHARTS_DIR).',
  );
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * Copies the chart to a temp dir. Without `nats`, removes its `dependencies:` (rendered with
 * nats.enabled=false + externalNats.url); with `nats`, keeps them and unpacks that NATS chart
 * release into the copy's `charts/nats/`, as `helm dependency update` would. Never writes into
 * the tracked tree.
 */
export async function makeTestChart(options: { nats?: VendoredChart } = {}): Promise<TestChart> {
  const root = await mkdtemp(path.join(tmpdir(), 'metaloop-chart-'));
  const dir = path.join(root, 'metaloop');
  await cp(CHART_DIR, dir, { recursive: true, dereference: true });
  if (options.nats) {
    await rm(path.join(dir, 'charts'), { recursive: true, force: true });
    await mkdir(path.join(dir, 'charts'));
    await cp(options.nats.dir, path.join(dir, 'charts', 'nats'), { recursive: true, dereference: true });
  } else {
    const chartYamlPath = path.join(dir, 'Chart.yaml');
    const chartYaml = parseYaml(await readFile(chartYamlPath, 'utf8')) as Record<string, unknown>;
    delete chartYaml['dependencies'];
    await writeFile(chartYamlPath, stringifyYaml(chartYaml));
  }
  const fixtures: string[] = [];
  const rules = path.join(dir, 'files', 'metaloop-rules.yaml');
  if (!(await exists(rules))) {
    await writeFile(rules, stringifyYaml(FIXTURE_RULES));
    fixtures.push('files/metaloop-rules.yaml');
  }
  const dashboard = path.join(dir, 'files', 'metaloop.json');
  if (!(await exists(dashboard))) {
    await writeFile(dashboard, JSON.stringify(FIXTURE_DASHBOARD, null, 2));
    fixtures.push('files/metaloop.json');
  }
  return { dir, fixtures, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** Parses `helm template` output; throws on YAML errors or documents without apiVersion/kind. */
export function parseManifests(text: string): K8sObject[] {
  const out: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) continue;
    const obj = value as Partial<K8sObject>;
    if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      throw new Error(`rendered document lacks apiVersion/kind/metadata.name: ${JSON.stringify(value).slice(0, 200)}`);
    }
    out.push(obj as K8sObject);
  }
  return out;
}

interface ModelClass {
  new (data: unknown): { validate(): void };
}

/** Module of kubernetes-models (or the prometheus-operator models) for an apiVersion. */
function modelModule(apiVersion: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

/** Validates one object against its Kubernetes (or prometheus-operator CRD) schema; throws naming the object. */
export async function validateObject(obj: K8sObject): Promise<void> {
  const where = `${obj.kind}/${obj.metadata.name} (${obj.apiVersion})`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modelModule(obj.apiVersion))) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${where}: no schema for apiVersion ${obj.apiVersion}: ${(err as Error).message}`);
  }
  const Model = mod[obj.kind] as ModelClass | undefined;
  if (typeof Model !== 'function') throw new Error(`${where}: kind ${obj.kind} is not part of ${obj.apiVersion}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new Error(`${where} fails its schema: ${(err as Error).message}`);
  }
}

export async function writeValues(dir: string, name: string, values: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, stringifyYaml(values));
  return file;
}

export interface RolePermissions {
  publish: string[];
  subscribe: string[];
  allowResponses: boolean;
}

function braceBlock(text: string, start: number): string {
  const i = text.indexOf('{', start);
  if (start < 0 || i < 0) throw new Error('permissions.conf: block not found');
  let depth = 0;
  for (let j = i; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return text.slice(i, j + 1);
  }
  throw new Error('permissions.conf: unbalanced braces');
}

/** The allow lists of each role in deploy/nats/permissions.conf (a small reader for that file's shape). */
export function parsePermissionsConf(text: string): Record<'coordinator' | 'worker' | 'cli', RolePermissions> {
  const plain = text
    .split('\n')
    .map((l) => l.replace(/#.*$/, ''))
    .join('\n');
  const strings = (s: string) => [...s.matchAll(/"([^"]+)"/g)].map((m) => m[1] as string);
  const role = (name: string): RolePermissions => {
    const b = braceBlock(plain, plain.search(new RegExp(`^${name}\\s*=`, 'm')));
    return {
      publish: strings(braceBlock(b, b.indexOf('publish'))),
      subscribe: strings(braceBlock(b, b.indexOf('subscribe'))),
      allowResponses: /allow_responses\s*=\s*true/.test(b),
    };
  };
  return { coordinator: role('COORDINATOR'), worker: role('WORKER'), cli: role('CLI') };
}

/**
 * Helpers of the observability acceptance test: child processes with captured logs, killed by pid;
 * a real Prometheus with its own config and TSDB; PromQL over the HTTP API; the expressions of the
 * Grafana dashboard with its variables substituted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function requireExecutable(path: string, what: string, install: string): string {
  try {
    accessSync(path, fsConstants.X_OK);
    return path;
  } catch {
    throw new Error(`${what} not found at ${path}: ${install}`);
  }
}

/** A child process whose output is kept (last lines) for failure messages. */
export class Proc {
  readonly child: ChildProcess;
  private readonly lines: string[] = [];
  exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
  ) {
    this.child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        this.lines.push(line);
        if (this.lines.length > 200) this.lines.shift();
        if (process.env.METALOOP_TEST_VERBOSE) process.stderr.write(`[${name}] ${line}\n`);
      }
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = { code, signal };
        resolve();
      });
      this.child.once('error', (err) => {
        this.lines.push(`spawn error: ${err.message}`);
        this.exited = { code: -1, signal: null };
        resolve();
      });
    });
  }

  /** `name exited with …` once the process is gone, else undefined. */
  exitReason(): string | undefined {
    return this.exited ? `${this.name} exited (code ${this.exited.code}, signal ${this.exited.signal})` : undefined;
  }

  /** The kept output lines (the last 200), oldest first. */
  output(): readonly string[] {
    return this.lines;
  }

  /** SIGKILL by pid (kill -9, no clean-up); resolves when the process is gone. */
  async kill(): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, 'SIGKILL');
    } catch {
      return;
    }
    await this.exitPromise;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  tail(n = 40): string {
    return `--- last lines of ${this.name} (pid ${this.pid}) ---\n` + this.lines.slice(-n).join('\n');
  }

  /** SIGTERM by pid, SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, 'SIGTERM');
    } catch {
      return;
    }
    const killed = await Promise.race([this.exitPromise.then(() => true), sleep(graceMs).then(() => false)]);
    if (!killed) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await this.exitPromise;
    }
  }
}

/**
 * Polls `check` until it returns a truthy value; throws with `describe()` after `timeoutMs`, or at
 * once when `dead()` names a reason (e.g. a process it waits for has exited).
 */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  describe: () => string = () => '',
  dead: () => string | undefined = () => undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    const gone = dead();
    if (gone) throw new Error(`while waiting for ${what}: ${gone}\n${describe()}`);
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}\n${describe()}`);
    await sleep(250);
  }
}

export async function httpStatus(url: string): Promise<number> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await res.text();
  return res.status;
}

// ---- Prometheus ----

export interface ScrapeJob {
  job: string;
  targets: string[];
}

export function writePrometheusConfig(dir: string, jobs: readonly ScrapeJob[], ruleFile: string): string {
  mkdirSync(dir, { recursive: true });
  const lines = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'rule_files:',
    `  - ${JSON.stringify(ruleFile)}`,
    'scrape_configs:',
  ];
  for (const j of jobs) {
    lines.push(`  - job_name: ${JSON.stringify(j.job)}`, '    static_configs:', `      - targets: ${JSON.stringify(j.targets)}`);
  }
  const path = join(dir, 'prometheus.yml');
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}
export interface PromResponse {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: PromSample[] | [number, string] };
}

export class PromClient {
  constructor(readonly base: string) {}

  async get<T = PromResponse>(path: string, params: Record<string, string> = {}): Promise<T> {
    const url = `${this.base}${path}?${new URLSearchParams(params).toString()}`;
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as T;
  }

  /** Instant query; `time` in Unix seconds (default: now). */
  query(expr: string, time?: number): Promise<PromResponse> {
    return this.get('/api/v1/query', time === undefined ? { query: expr } : { query: expr, time: String(time) });
  }

  /** The vector result of an instant query (throws on an error answer). */
  async vector(expr: string): Promise<PromSample[]> {
    const r = await this.query(expr);
    if (r.status !== 'success') throw new Error(`query failed: ${expr}: ${r.errorType}: ${r.error}`);
    const result = r.data?.result;
    return Array.isArray(result) && r.data?.resultType === 'vector' ? (result as PromSample[]) : [];
  }

  async scalar(expr: string): Promise<number | undefined> {
    const v = await this.vector(expr);
    const s = v[0]?.value?.[1];
    return s === undefined ? undefined : Number(s);
  }
}

/** Number of samples (vector, matrix or scalar) in a successful query answer. */
export function sampleCount(r: PromResponse): number {
  const d = r.data;
  if (!d) return 0;
  if (d.resultType === 'scalar' || d.resultType === 'string') return 1;
  return (d.result as PromSample[]).length;
}

// ---- Grafana dashboard ----

export interface DashboardQuery {
  /** Panel title, or `variable <name>`. */
  where: string;
  expr: string;
}

interface Panel {
  title?: string;
  type?: string;
  targets?: { expr?: string; hide?: boolean }[];
  panels?: Panel[];
}
interface Variable {
  name: string;
  type: string;
  query?: unknown;
  definition?: string;
  current?: { value?: unknown };
}
export interface Dashboard {
  panels?: Panel[];
  templating?: { list?: Variable[] };
}

/** Every PromQL target of every panel (nested rows included), raw. */
export function dashboardQueries(d: Dashboard): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const walk = (panels: readonly Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr && !t.hide) out.push({ where: p.title ?? p.type ?? '?', expr: t.expr });
      walk(p.panels);
    }
  };
  walk(d.panels);
  return out;
}

/** Query variables as `label_values(<selector>, <label>)` (the Grafana Prometheus form). */
export function labelValuesVariables(d: Dashboard): { name: string; selector: string; label: string }[] {
  const out: { name: string; selector: string; label: string }[] = [];
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : ((v.query as { query?: string } | undefined)?.query ?? v.definition ?? '');
    const m = /^\s*label_values\(\s*(.+)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(q);
    if (!m) throw new Error(`variable ${v.name}: unsupported query ${JSON.stringify(q)} (expected label_values(selector, label))`);
    out.push({ name: v.name, selector: m[1]!.trim(), label: m[2]! });
  }
  return out;
}

/** Text/custom/constant variables with their current (default) value. */
export function staticVariables(d: Dashboard): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of d.templating?.list ?? []) {
    if (v.type === 'textbox' || v.type === 'constant' || v.type === 'custom') {
      const cur = v.current?.value;
      out[v.name] = typeof cur === 'string' ? cur : typeof v.query === 'string' ? v.query : '';
    }
  }
  return out;
}

/** Substitutes `$name`, `${name}` and `${name:fmt}` (longest names first). */
export function substitute(expr: string, values: Record<string, string>): string {
  let s = expr;
  for (const name of Object.keys(values).sort((a, b) => b.length - a.length)) {
    const v = values[name]!;
    s = s.replace(new RegExp(`\\$\\{${name}(?::[a-z]+)?\\}`, 'g'), v).replace(new RegExp(`\\$${name}(?![a-zA-Z0-9_])`, 'g'), v);
  }
  const left = /\$\{?[a-zA-Z_][a-zA-Z0-9_]*/.exec(s);
  if (left) throw new Error(`unsubstituted variable ${left[0]} in ${s}`);
  return s;
}

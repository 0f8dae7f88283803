/**
 * Helpers of the observability acceptance test: a real Prometheus with its own config and TSDB;
 * PromQL over the HTTP API; the expressions of the Grafana dashboard with its variables
 * substituted. (Child processes with captured logs: Proc in @metaloop/testing.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export { httpStatus, Proc, requireExecutable, sleep, waitFor } from '@metaloop/testing';

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

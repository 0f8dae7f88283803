/**
 * A Metaloop cluster of real processes for cross-process tests: coordinator and worker CLI
 * processes (each a Proc, reaped by pid), the `metaloop` CLI, the control API through a light
 * NATS client, and the coordinator's /metrics.
 */
import assert from 'node:assert/strict';
import { ApiClient } from '@metaloop/client';
import { metaloop, NatsTransport, type NatsTransportOptions } from '@metaloop/shared';
import { freePort } from './ports.js';
import { METALOOP, SINUSOID, WORKER } from './paths.js';
import { Proc, waitFor } from './proc.js';
import { runCommand } from './run-cli.js';



/** A small sinusoid run: meta-batch 10 in 2 shards, checkpoints every 5 steps, one final eval. */
export function sinusoidSets(steps: number, extra: readonly string[] = []): string[] {
  return [
    `outer.steps=${steps}`,
    'outer.metaBatch=10',
    'outer.shardSize=5',
    'eval.every=0',
    'eval.tasks=10',
    'eval.innerSteps=2',
    'checkpoint.every=5',
    'checkpoint.keep=2',
    ...extra,
  ];
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const cliPids = new Set<number>();

/** Run `metaloop <args>` (no --nats added); never throws: a non-zero exit or a timeout (SIGKILL, code -1) is in the result. */
export async function metaloopCli(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<CliResult> {
  try {
    const r = await runCommand(cliPids, process.execPath, [METALOOP, ...args], { env: { ...process.env, ...env }, timeoutMs });
    return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    return { code: -1, stdout: '', stderr: err instanceof Error ? err.message : String(err) };
  }
}

export interface CoordinatorProcOptions {
  readonly leaseMs?: number;
  readonly maxDeliver?: number;
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** A coordinator process with its /metrics on a free loopback port. */
export async function startCoordinator(name: string, url: string, o: CoordinatorProcOptions = {}): Promise<{ proc: Proc; metricsPort: number }> {
  const metricsPort = await freePort();
  const args = [
    METALOOP, '--nats', url, 'coordinator',
    '--metrics-port', String(metricsPort), '--metrics-host', '127.0.0.1',
    '--lease-ms', String(o.leaseMs ?? 2000), '--max-deliver', String(o.maxDeliver ?? 5),
    ...(o.args ?? []),
  ];
  const proc = new Proc(name, process.execPath, args, { METALOOP_LOG_LEVEL: 'info', ...o.env });
  return { proc, metricsPort };
}

export interface WorkerProcOptions {
  readonly slowShardMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly metricsPort?: number;
}

export function startWorker(id: string, url: string, o: WorkerProcOptions = {}): Proc {
  const args = [WORKER, '--nats', url, '--id', id, '--metrics-port', String(o.metricsPort ?? -1), '--metrics-host', '127.0.0.1', '--heartbeat-ms', '500'];
  return new Proc(id, process.execPath, args, {
    METALOOP_LOG_LEVEL: 'debug',
    METALOOP_BACKEND: 'cpu',
    ...(o.slowShardMs ? { METALOOP_WORKER_SLOW_SHARD_MS: String(o.slowShardMs) } : {}),
    ...o.env,
  });
}

/** An API client over a light NATS connection (what the CLI role may do). */
export async function apiClient(url: string, extra: Partial<NatsTransportOptions> = {}): Promise<{ client: ApiClient; close: () => Promise<void> }> {
  const transport = await NatsTransport.create({ servers: url, jetstream: false, maxReconnectAttempts: -1, ...extra });
  return { client: new ApiClient({ transport, timeoutMs: 5000 }), close: () => transport.close() };
}

export async function submitRun(client: ApiClient, sets: readonly string[], priority?: number): Promise<string> {
  const { loadSpec } = await import('@metaloop/shared');
  const { readFileSync } = await import('node:fs');
  const spec = loadSpec(readFileSync(SINUSOID, 'utf8'), SINUSOID, sets);
  const rec = await client.submit(JSON.stringify(spec), 'chaos.yaml', priority !== undefined ? { priority } : {});
  return rec.runId;
}

/** Polls the run until it ended; the API may be briefly unreachable (restarts), so errors retry. */
export async function waitRunEnd(
  client: ApiClient,
  runId: string,
  timeoutMs: number,
  describe: () => string,
  dead: () => string | undefined = () => undefined,
): Promise<metaloop.RunRecord> {
  return waitFor(
    `run ${runId} to end`,
    timeoutMs,
    async () => {
      const r = await client.status(runId);
      const s = r.state;
      return s === metaloop.RunState.RUN_STATE_SUCCEEDED || s === metaloop.RunState.RUN_STATE_FAILED || s === metaloop.RunState.RUN_STATE_CANCELLED ? r : null;
    },
    describe,
    dead,
  );
}

export async function waitStep(client: ApiClient, runId: string, step: number, timeoutMs: number, describe: () => string): Promise<metaloop.RunRecord> {
  return waitFor(`run ${runId} at step ${step}`, timeoutMs, async () => {
    const r = await client.status(runId);
    return r.step >= step ? r : null;
  }, describe);
}

export async function waitWorkers(client: ApiClient, n: number, timeoutMs: number, describe: () => string): Promise<void> {
  await waitFor(`${n} live workers`, timeoutMs, async () => (await client.workers()).length >= n, describe);
}

/** The Prometheus text of an endpoint. */
export async function scrape(port: number, path = '/metrics'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  return res.text();
}

/** Sum of the samples of `name` whose labels include every `labels` pair. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((x) => [x[1] ?? '', x[2] ?? ''] as const));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

/** Waits until `proc` prints a new line (not among those it printed before) matching `pattern`. */
export async function waitNewLine(proc: Proc, pattern: RegExp, timeoutMs: number): Promise<string> {
  const before = new Set(proc.output());
  return waitFor(`${proc.name} to log ${pattern}`, timeoutMs, () => proc.output().find((l) => !before.has(l) && pattern.test(l)), () => proc.tail(20), () => proc.exitReason());
}

/**
 * Submit a sinusoid run with `sets` once 2 workers are live, call `onRunning` (the disturbance),
 * wait for the end and assert it succeeded with `steps` steps.
 */
export async function trainToEnd(
  client: ApiClient,
  sets: readonly string[],
  steps: number,
  describe: () => string,
  onRunning?: (runId: string) => Promise<void>,
  timeoutMs = 180_000,
): Promise<metaloop.RunRecord> {
  await waitWorkers(client, 2, 60_000, describe);
  const runId = await submitRun(client, sets);
  if (onRunning) await onRunning(runId);
  const rec = await waitRunEnd(client, runId, timeoutMs, describe);
  assert.equal(rec.state, metaloop.RunState.RUN_STATE_SUCCEEDED, `run ${runId} ended ${rec.state}: ${rec.error}\n${describe()}`);
  assert.equal(rec.step, steps);
  return rec;
}

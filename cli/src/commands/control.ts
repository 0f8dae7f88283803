/** `submit`, `list`, `status`, `cancel`, `pause`, `resume`, `workers`. */
import { Option, type Command } from 'commander';
import { isTerminal, type metaloop, stateFromProto } from '@metaloop/shared';
import { type ApiClient, EXIT } from '@metaloop/client';
import { listTable, recordJson, statusLines, summaryJson, summaryLines } from '../format.js';
import { etaText, followRun, lineRenderer, ttyRenderer } from '../watch.js';
import { withRunData } from '../data.js';
import { loadRunSpec, sayNotes, uploadInitWeights } from '../spec-file.js';
import { collect, examples, jsonOption, outputOption, positiveInt, wantsJson, type CliContext } from './context.js';

/** Live workers, or null when the coordinator does not answer the `workers` verb. */
async function liveWorkers(client: ApiClient): Promise<metaloop.Heartbeat[] | null> {
  try {
    return await client.workers();
  } catch {
    return null;
  }
}

function ago(ms: number): string {
  if (!(ms > 0)) return '-';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  return s < 60 ? `${s.toFixed(1)}s ago` : `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s ago`;
}

/**
 * A worker's GPU for the table: 'NVIDIA H100 80GB HBM3 (79.6 GiB)', 'no GPU' (it computes on a CPU),
 * or '-' (a worker older than the heartbeat's GPU fields).
 */
export function gpuCell(w: metaloop.IHeartbeat): string {
  const name = w.gpuName ?? '';
  if (name === '') return '-';
  const gib = (w.gpuMemoryBytes ?? 0) / 2 ** 30;
  return gib > 0 ? `${name} (${Number(gib.toFixed(gib >= 100 ? 0 : 1))} GiB)` : name;
}

export function workersJson(w: metaloop.IHeartbeat): Record<string, unknown> {
  return {
    id: w.workerId,
    backend: w.backend,
    device: w.device,
    gpu: w.gpuName || null,
    gpuMemoryBytes: w.gpuMemoryBytes ?? 0,
    gpuDriver: w.gpuDriver ?? '',
    gpuComputeCapability: w.gpuComputeCapability ?? '',
    state: w.state,
    version: w.version,
    hostname: w.hostname,
    pid: w.pid,
    load: w.load,
    shardsDone: w.shardsDone,
    tasksDone: w.tasksDone,
    shardsPerSec: w.shardsPerSec ?? 0,
    tasksPerSec: w.tasksPerSec ?? 0,
    lastSeenMs: w.lastSeenMs || w.timestampMs || 0,
    datasets: (w.datasets ?? []).map((d) => ({ path: d.path ?? '', sha256: d.sha256 ?? '', kind: d.kind ?? '', error: d.error ?? '' })),
  };
}

/** The datasets a worker holds, short: `mini.mlpack 3f2a1c9e0b7d`, `omniglot missing`; '-' for none. */
export function datasetsCell(w: metaloop.IHeartbeat): string {
  const list = (w.datasets ?? []).map((d) => `${(d.path ?? '').split('/').filter(Boolean).pop() ?? ''} ${d.sha256 ? d.sha256.slice(0, 12) : d.error === 'missing' ? 'missing' : 'unreadable'}`);
  return list.length ? list.join(', ') : '-';
}

export function workersTable(workers: readonly metaloop.IHeartbeat[]): string[] {
  const rows = [['WORKER', 'BACKEND', 'DEVICE', 'GPU', 'STATE', 'SHARDS/S', 'TASKS/S', 'DONE', 'LAST SEEN', 'DATASETS']];
  for (const w of workers) {
    rows.push([
      w.workerId ?? '',
      w.backend ?? '',
      w.device ?? '',
      gpuCell(w),
      w.state ?? '',
      (w.shardsPerSec ?? 0).toFixed(2),
      (w.tasksPerSec ?? 0).toFixed(1),
      String(w.shardsDone ?? 0),
      ago(w.lastSeenMs || w.timestampMs || 0),
      datasetsCell(w),
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd());
}

export function registerControlCommands(program: Command, ctx: CliContext): void {
  const { out, err } = ctx;

  examples(
    program
      .command('submit <spec>')
      .description('validate a run spec locally, submit it, print the run id')
      .option('--set <path=value>', 'override a spec field (repeatable), e.g. --set outer.lr=3e-4', collect, [])
      .addOption(new Option('--priority <n>', "the run's share of the workers relative to other runs, 1..1000 (default: the spec's workers.priority)").argParser(positiveInt('--priority')))
      .option('--watch', 'follow the run until it ends (a live bar on a terminal); exit 0 iff it succeeded')
      .option('--data-dir <dir>', 'where relative dataset paths point, to compute their content hash (METALOOP_DATA_DIR; default: the working directory)')
      .option('--no-data-hash', "submit even when a dataset cannot be read here and the spec has no sha256 (workers then do not check their copies)")
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (file: string, opts: { set: string[]; priority?: number; watch?: boolean; dataDir?: string; dataHash: boolean; json?: boolean; output?: string }) => {
        if (opts.dataDir) process.env.METALOOP_DATA_DIR = opts.dataDir;
        // The run carries its datasets' content hashes (every worker checks its copies against
        // them), and θ₀ built from the spec's word vectors when it names some.
        const loaded = await withRunData(await loadRunSpec(file, opts.set), { skipUnreadable: !opts.dataHash, say: err });
        sayNotes(loaded, err);
        const json = wantsJson(opts);
        await ctx.withClient(async (client, transport) => {
          await uploadInitWeights(client, loaded, err);
          const rec = await client.submit(loaded.submitText, file, opts.priority === undefined ? {} : { priority: opts.priority });
          if (!opts.watch) {
            out(json ? JSON.stringify(recordJson(rec)) : rec.runId);
            return;
          }
          err(`submitted ${rec.runId}`);
          const final = await watchToEnd(ctx, client, transport, rec.runId, json);
          if (json) out(JSON.stringify(summaryJson(final)));
          else summaryLines(final).forEach((l) => out(l));
          if (stateFromProto(final.state) !== 'succeeded') process.exitCode = EXIT.FAILURE;
        });
      }),
    'metaloop submit examples/sinusoid.yaml --set outer.steps=500 --set outer.lr=3e-4',
    'metaloop submit examples/sinusoid.yaml --watch',
  );

  examples(
    program
      .command('status <run>')
      .description("show a run's state, step/steps, losses, last evaluation, speed, ETA, workers and checkpoint")
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (runId: string, opts: { json?: boolean; output?: string }) => {
        await ctx.withClient(async (client) => {
          const rec = await client.status(runId);
          const workers = await liveWorkers(client);
          if (wantsJson(opts)) {
            const moving = stateFromProto(rec.state) === 'running' || isTerminal(stateFromProto(rec.state));
            out(JSON.stringify({ ...recordJson(rec), eta: moving ? etaText(rec) : null, etaSeconds: moving ? etaSeconds(rec) : null, workers: workers?.map(workersJson) ?? null }));
            return;
          }
          statusLines(rec).forEach((l) => out(l));
          // A paused run has no ETA (it is not moving).
          if (stateFromProto(rec.state) === 'running') out(`eta:        ${etaText(rec)}`);
          if (workers) out(`workers:    ${workers.length} live${workers.length ? ` (${workers.map((w) => `${w.workerId} ${w.backend}`).join(', ')})` : ''}`);
        });
      }),
    'metaloop status sinusoid-maml-3f2a1c',
    'metaloop status sinusoid-maml-3f2a1c --output json | jq .lastEval',
  );

  examples(
    program
      .command('list')
      .description('list runs (oldest first)')
      .option('--active', 'only pending, running and paused runs')
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (opts: { active?: boolean; json?: boolean; output?: string }) => {
        await ctx.withClient(async (client) => {
          const runs = await client.list(!opts.active);
          if (wantsJson(opts)) out(JSON.stringify(runs.map((r) => recordJson(r))));
          else listTable(runs).forEach((l) => out(l));
        });
      }),
    'metaloop list --active',
  );

  for (const verb of ['cancel', 'pause', 'resume'] as const) {
    const what = { cancel: 'stop a run for good (queued shards are dropped)', pause: 'pause a run after its current step', resume: 'resume a paused run' }[verb];
    examples(
      program
        .command(`${verb} <run>`)
        .description(what)
        .addOption(jsonOption())
        .addOption(outputOption())
        .action(async (runId: string, opts: { json?: boolean; output?: string }) => {
          await ctx.withClient(async (client) => {
            const rec = await client[verb](runId);
            out(wantsJson(opts) ? JSON.stringify(recordJson(rec)) : `${rec.runId}: ${stateFromProto(rec.state)}`);
          });
        }),
      `metaloop ${verb} sinusoid-maml-3f2a1c`,
    );
  }

  examples(
    program
      .command('workers')
      .description('list the live workers: id, backend, device, GPU (name and memory, or "no GPU"), state, shards/s, last seen, the datasets each holds (name and sha256 prefix)')
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (opts: { json?: boolean; output?: string }) => {
        await ctx.withClient(async (client) => {
          const workers = await client.workers();
          if (wantsJson(opts)) out(JSON.stringify(workers.map(workersJson)));
          else if (workers.length === 0) out('no live workers (start some with `metaloop-worker --nats <url>`)');
          else workersTable(workers).forEach((l) => out(l));
        });
      }),
    'metaloop workers --output json',
  );
}

function etaSeconds(r: metaloop.IRunRecord): number | null {
  const left = (r.steps ?? 0) - (r.step ?? 0);
  if (left <= 0) return 0;
  return (r.stepsPerSec ?? 0) > 0 ? left / r.stepsPerSec! : null;
}

/**
 * Follow a run to its end with a live bar on a TTY (stdout, or stderr when stdout carries JSON)
 * and plain lines otherwise; returns the final record.
 */
export async function watchToEnd(
  ctx: CliContext,
  client: ApiClient,
  transport: import('@metaloop/shared').Transport,
  runId: string,
  json: boolean,
): Promise<metaloop.RunRecord> {
  const stream = json ? process.stderr : process.stdout;
  const renderer = stream.isTTY ? ttyRenderer(stream) : lineRenderer(json ? ctx.err : ctx.out);
  const aborter = new AbortController();
  const onSignal = () => aborter.abort();
  process.once('SIGINT', onSignal);
  try {
    return await followRun({ client, transport, prefix: ctx.globals().prefix, runId, onUpdate: (r) => renderer.update(r), signal: aborter.signal });
  } finally {
    process.removeListener('SIGINT', onSignal);
    renderer.end();
  }
}

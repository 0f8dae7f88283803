/**
 * Runs on tfjs for cross-process tests (issue 15): the two specs every tfjs scenario trains — a
 * small Conv4 on synthetic glyphs and the sinusoid MLP with `model.fused: false` — and a small
 * ResNet-12 (a layer graph with residual joins, issue 24), all requiring
 * the `tensorflow` backend (tfjs-node, which CI builds with scripts/tfjs-node-from-wheel.sh).
 * A missing backend fails loudly: requireTensorflow() throws, and a worker started with
 * `--backend tensorflow` exits naming why.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { loadSpec, metaloop } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { ROOT } from './paths.js';
import { sinusoidSets, startWorker, waitRunEnd, type WorkerProcOptions } from './cluster.js';
import type { Proc } from './proc.js';

export interface TfjsRun {
  readonly label: string;
  readonly file: string;
  readonly sets: readonly string[];
  readonly steps: number;
}

/** The glyph runs' common settings: 4 shards of 1 task per step, 2 queries, a final eval of 8 tasks, checkpoints every 2 steps. */
function glyphSets(steps: number, extra: readonly string[]): string[] {
  return [
    `outer.steps=${steps}`,
    'outer.metaBatch=4',
    'outer.shardSize=1',
    'task.queries=2',
    ...extra,
    'eval.every=0',
    'eval.tasks=8',
    'eval.innerSteps=2',
    'checkpoint.every=2',
    'checkpoint.keep=2',
    'workers.backend=tensorflow',
  ];
}

/** Conv4 (4 filters, stride pools) on 12×12 glyphs, 5-way 1-shot. */
export function conv4Run(steps: number): TfjsRun {
  return { label: 'conv4-glyphs', file: join(ROOT, 'examples/glyphs-5w1s.yaml'), steps, sets: glyphSets(steps, ['task.imageSize=12', 'model.filters=4']) };
}

/** A layer graph with residual joins: the resnet12 preset at 4 channels per block on 16×16 glyphs (its smallest), 5-way 1-shot. */
export function resnet12Run(steps: number): TfjsRun {
  return { label: 'resnet12-glyphs', file: join(ROOT, 'examples/resnet12-5w1s.yaml'), steps, sets: glyphSets(steps, ['model.channels=[4, 4, 4, 4]']) };
}

/** The sinusoid MLP off the fused path: meta-batch 10 in 2 shards, on tfjs. */
export function sinusoidTfjsRun(steps: number): TfjsRun {
  return {
    label: 'sinusoid-unfused',
    file: join(ROOT, 'examples/sinusoid.yaml'),
    steps,
    sets: sinusoidSets(steps, ['model.fused=false', 'workers.backend=tensorflow']),
  };
}

/** Throws, saying how to fix it, when @tensorflow/tfjs-node is not installed for the worker. */
export function requireTensorflow(): void {
  try {
    createRequire(join(ROOT, 'worker/package.json')).resolve('@tensorflow/tfjs-node');
  } catch {
    throw new Error(
      'the tensorflow tfjs backend (@tensorflow/tfjs-node) is not installed, and the tfjs determinism tests need it: ' +
        'run `bash scripts/tfjs-node-from-wheel.sh` (CI does, in .ci/before-test.d)',
    );
  }
}

/** A worker process on the tensorflow backend (it exits with the reason when tfjs-node cannot load). */
export function startTfWorker(id: string, url: string, o: WorkerProcOptions = {}): Proc {
  return startWorker(id, url, { ...o, env: { METALOOP_BACKEND: 'tensorflow', ...o.env } });
}

export async function submitTfjs(client: ApiClient, run: TfjsRun, priority?: number): Promise<string> {
  const spec = loadSpec(readFileSync(run.file, 'utf8'), run.file, run.sets);
  const rec = await client.submit(JSON.stringify(spec), `${run.label}.yaml`, priority !== undefined ? { priority } : {});
  return rec.runId;
}

/** What two runs must agree on bit for bit: θ's sha256 and the final evaluation (every double). */
export interface Outcome {
  readonly runId: string;
  readonly sha: string;
  readonly eval: string;
}

/** Waits for the run, asserts it succeeded at `run.steps` with an evaluation, returns its outcome. */
export async function finish(client: ApiClient, run: TfjsRun, runId: string, timeoutMs: number, describe: () => string): Promise<Outcome> {
  const rec = await waitRunEnd(client, runId, timeoutMs, describe);
  assert.equal(rec.state, metaloop.RunState.RUN_STATE_SUCCEEDED, `run ${runId} ended ${rec.state}: ${rec.error}\n${describe()}`);
  assert.equal(rec.step, run.steps);
  assert.match(rec.paramsSha256, /^[0-9a-f]{64}$/);
  const evaluated = (rec.lastEval?.postLoss?.length ?? 0) > 0 || (rec.lastEval?.postReturn?.length ?? 0) > 0; // meta-RL: returns
  assert.ok(rec.lastEval && rec.lastEval.step === run.steps && evaluated, `run ${runId} has no final evaluation`);
  const e = rec.lastEval;
  // Every number of the evaluation, as the exact bits of the double.
  const bits = (xs: readonly number[]) => xs.map((x) => Buffer.from(new Float64Array([x]).buffer).toString('hex')).join(',');
  const evalBits = [e.preLoss ?? 0, ...(e.postLoss ?? []), ...(e.accuracy ?? []), ...(e.ci95 ?? []), ...(e.lossCi95 ?? [])];
  evalBits.push(e.preReturn ?? 0, ...(e.postReturn ?? []), ...(e.returnCi95 ?? []), ...(e.gain ?? []), ...(e.gainCi95 ?? []));
  return { runId, sha: rec.paramsSha256, eval: `${e.tasks}:${bits(evalBits)}` };
}

export async function train(client: ApiClient, run: TfjsRun, timeoutMs: number, describe: () => string, onRunning?: (runId: string) => Promise<void>): Promise<Outcome> {
  const runId = await submitTfjs(client, run);
  if (onRunning) await onRunning(runId);
  const out = await finish(client, run, runId, timeoutMs, describe);
  console.log(`# ${run.label} ${out.runId}: θ sha256 ${out.sha}`);
  return out;
}

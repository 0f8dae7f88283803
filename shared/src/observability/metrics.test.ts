import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { createCoordinatorMetrics, REJECT_REASONS, RUN_STATES } from './coordinator-metrics.js';
import { createWorkerMetrics } from './worker-metrics.js';

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** Labels that would make cardinality unbounded. */
const FORBIDDEN_LABELS = ['task', 'task_id', 'shard', 'shard_id', 'seed', 'step', 'version'];
const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';

interface Family {
  name: string;
  type: string;
  labels: Set<string>;
  samples: number;
}

/** Parses the text exposition enough to check names, types and labels. */
function families(text: string): Map<string, Family> {
  const out = new Map<string, Family>();
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) {
      current = { name: t[1]!, type: t[2]!, labels: new Set(), samples: 0 };
      out.set(current.name, current);
      continue;
    }
    if (line === '' || line.startsWith('#') || !current) continue;
    current.samples++;
    const labels = /\{(.*)\}/.exec(line)?.[1] ?? '';
    for (const m of labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) current.labels.add(m[1]!);
  }
  return out;
}

function promtoolLint(text: string): void {
  assert.ok(existsSync(PROMTOOL), `promtool not found at ${PROMTOOL} (install Debian's prometheus package; set PROMTOOL to override)`);
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool check metrics failed:\n${r.stdout}\n${r.stderr}`);
}

function checkConventions(fams: Map<string, Family>, prefix: string): void {
  const own = [...fams.values()].filter((f) => f.name.startsWith('metaloop_'));
  assert.ok(own.length > 0);
  for (const f of own) {
    assert.ok(f.name.startsWith(prefix), `${f.name} lacks the ${prefix} prefix`);
    assert.match(f.name, NAME);
    if (f.type === 'counter') assert.ok(f.name.endsWith('_total'), `counter ${f.name} must end in _total`);
    else assert.ok(!f.name.endsWith('_total'), `${f.type} ${f.name} must not end in _total`);
    if (f.type === 'histogram') assert.match(f.name, /_(seconds|bytes|steps)$/, `histogram ${f.name} must be in a base unit`);
    if (/_(ms|milliseconds|kb|mb|minutes)(_|$)/.test(f.name)) assert.fail(`${f.name} is not in base units`);
    for (const l of f.labels) {
      assert.match(l, LABEL);
      assert.ok(!FORBIDDEN_LABELS.includes(l), `${f.name} has an unbounded label ${l}`);
    }
  }
}

describe('coordinator metrics', () => {
  it('have valid, prefixed, base-unit names and bounded labels; promtool accepts the exposition', async () => {
    const registry = new Registry();
    const m = createCoordinatorMetrics(registry);
    m.initRun('r1', { targetSteps: 100, info: { name: 'sinusoid-maml', algorithm: 'maml', family: 'sinusoid', model: 'mlp' } });
    m.setRunState('r1', 'running');
    m.setRunCounts({ running: 1 });
    m.recordStep('r1', { step: 1, seconds: 0.02, lossPre: 3.2, lossPost: 1.1 });
    m.recordEval('r1', { innerSteps: 10, loss: 0.5, accuracy: 0.9 });
    m.recordRejected('r1', 'duplicate');
    m.recordCheckpoint('r1');
    m.aggregationDuration.observe({ run: 'r1' }, 0.001);
    m.outerUpdateDuration.observe({ run: 'r1' }, 0.001);
    m.staleness.observe({ run: 'r1' }, 0);
    m.parameterBytes.set({ run: 'r1' }, 1684);
    m.liveWorkers.set(2);
    const text = await registry.metrics();
    promtoolLint(text);
    const fams = families(text);
    checkConventions(fams, 'metaloop_');
    for (const name of ['metaloop_meta_steps_total', 'metaloop_meta_step_duration_seconds', 'metaloop_meta_train_loss', 'metaloop_eval_loss',
      'metaloop_eval_accuracy_ratio', 'metaloop_tasks_total', 'metaloop_shards_dispatched_total', 'metaloop_shards_completed_total',
      'metaloop_shards_redelivered_total', 'metaloop_shards_speculative_total', 'metaloop_results_rejected_total',
      'metaloop_aggregation_duration_seconds', 'metaloop_outer_update_duration_seconds', 'metaloop_live_workers', 'metaloop_parameter_bytes',
      'metaloop_last_checkpoint_timestamp_seconds', 'metaloop_result_staleness_steps', 'metaloop_runs', 'metaloop_run_state', 'metaloop_run_info',
      'metaloop_run_step', 'metaloop_run_target_steps', 'metaloop_run_last_step_timestamp_seconds', 'metaloop_checkpoints_total']) {
      assert.ok(fams.has(name), `missing ${name}`);
      assert.ok(fams.get(name)!.samples > 0, `${name} has no sample`);
    }
    assert.match(text, /^metaloop_meta_train_loss\{run="r1",phase="pre"\} 3\.2$/m);
    assert.match(text, /^metaloop_meta_train_loss\{run="r1",phase="post"\} 1\.1$/m);
    assert.match(text, /^metaloop_eval_accuracy_ratio\{run="r1",inner_steps="10"\} 0\.9$/m);
    assert.match(text, /^metaloop_run_state\{run="r1",state="running"\} 1$/m);
    assert.match(text, /^metaloop_run_state\{run="r1",state="paused"\} 0$/m);
    assert.match(text, /^metaloop_results_rejected_total\{run="r1",reason="duplicate"\} 1$/m);
    for (const reason of REJECT_REASONS) assert.match(text, new RegExp(`^metaloop_results_rejected_total\\{run="r1",reason="${reason}"\\} \\d`, 'm'));
    for (const state of RUN_STATES) assert.match(text, new RegExp(`^metaloop_runs\\{state="${state}"\\} \\d`, 'm'));
  });

  it('initRun creates zero-valued series so rates exist from the first scrape', async () => {
    const registry = new Registry();
    const m = createCoordinatorMetrics(registry);
    m.initRun('r2', { targetSteps: 7, info: { name: 'n', algorithm: 'fomaml', family: 'sinusoid', model: 'mlp' }, nowMs: 5_000 });
    const text = await registry.metrics();
    assert.match(text, /^metaloop_shards_redelivered_total\{run="r2"\} 0$/m);
    assert.match(text, /^metaloop_run_target_steps\{run="r2"\} 7$/m);
    assert.match(text, /^metaloop_last_checkpoint_timestamp_seconds\{run="r2"\} 5$/m);
    assert.match(text, /^metaloop_run_info\{run="r2",name="n",algorithm="fomaml",family="sinusoid",model="mlp"\} 1$/m);
  });

  it('removeRun drops every series of one run and keeps the others', async () => {
    const registry = new Registry();
    const m = createCoordinatorMetrics(registry);
    const info = { name: 'n', algorithm: 'maml', family: 'sinusoid', model: 'mlp' };
    for (const r of ['keep', 'gone']) {
      m.initRun(r, { targetSteps: 3, info });
      m.setRunState(r, 'running');
      m.recordStep(r, { step: 1, seconds: 0.1, lossPre: 1, lossPost: 0.5 });
      m.recordEval(r, { innerSteps: 5, loss: 0.4 });
    }
    await m.removeRun('gone');
    const text = await registry.metrics();
    assert.doesNotMatch(text, /run="gone"/);
    assert.match(text, /run="keep"/);
  });

  it('exposes a NaN loss so the LossNotFinite alert can see it', async () => {
    const registry = new Registry();
    const m = createCoordinatorMetrics(registry);
    m.recordStep('r3', { step: 1, seconds: 0.1, lossPre: Number.NaN, lossPost: Number.POSITIVE_INFINITY });
    const text = await registry.metrics();
    assert.match(text, /^metaloop_meta_train_loss\{run="r3",phase="pre"\} nan$/im);
    assert.match(text, /^metaloop_meta_train_loss\{run="r3",phase="post"\} \+Inf$/m);
  });
});

describe('worker metrics', () => {
  it('have valid names, carry the worker label everywhere and sample tensor memory at scrape time', async () => {
    const registry = new Registry();
    let tensors = 10;
    const m = createWorkerMetrics(registry, { workerId: 'w-1', tensorMemory: () => ({ numTensors: tensors, numBytes: tensors * 4 }) });
    m.setBackend('cpu', 'cpu');
    m.setBackend('wasm', 'simd'); // replaces, never two backends at once
    m.setGpu({ name: 'NVIDIA A100-SXM4-80GB', memoryBytes: 85899345920, driver: '550.54.15', computeCapability: '8.0' });
    m.setGpu({ name: 'no GPU', memoryBytes: 0, driver: '', computeCapability: '' }); // replaces too
    m.initRun('r1');
    m.recordShard('r1', { tasks: 5, seconds: 0.2, innerLoopSeconds: 0.1, backpropSeconds: 0.08 });
    m.recordParamFetch(false, 0.002);
    m.recordParamFetch(true);
    tensors = 12;
    const text = await registry.metrics();
    promtoolLint(text);
    const fams = families(text);
    checkConventions(fams, 'metaloop_worker_');
    for (const f of fams.values()) assert.ok(f.labels.has('worker'), `${f.name} lacks the worker label`);
    assert.match(text, /^metaloop_worker_tfjs_tensors\{worker="w-1"\} 12$/m);
    assert.match(text, /^metaloop_worker_tfjs_bytes\{worker="w-1"\} 48$/m);
    assert.match(text, /^metaloop_worker_backend_info\{backend="wasm",device="simd",worker="w-1"\} 1$/m);
    assert.doesNotMatch(text, /backend="cpu"/);
    assert.match(text, /^metaloop_worker_gpu_info\{gpu="no GPU",memory_bytes="0",driver="",compute_capability="",worker="w-1"\} 1$/m);
    assert.doesNotMatch(text, /A100/);
    assert.match(text, /^metaloop_worker_tasks_total\{run="r1",worker="w-1"\} 5$/m);
    assert.match(text, /^metaloop_worker_shard_failures_total\{run="r1",worker="w-1"\} 0$/m);
    assert.match(text, /^metaloop_worker_shard_retries_total\{run="r1",worker="w-1"\} 0$/m);
    assert.match(text, /^metaloop_worker_param_cache_hits_total\{worker="w-1"\} 1$/m);
    assert.match(text, /^metaloop_worker_param_cache_misses_total\{worker="w-1"\} 1$/m);
    assert.match(text, /^metaloop_worker_shard_duration_seconds_count\{worker="w-1"\} 1$/m);
    assert.match(text, /^metaloop_worker_param_fetch_duration_seconds_count\{worker="w-1"\} 1$/m);
  });
});

#!/usr/bin/env node
/**
 * One backend's measurements for the compute suite, in a process of its own (tfjs state is
 * global): `node compute-child.mjs <cpu|wasm|tensorflow> '<plan json>'` prints one line
 * `result <json>` (or `error <message>`). Uses the worker's build (kernels registered at import).
 *
 * Kernels: each training kernel and the forward op of the same FLOPs (conv2d) or the same input
 * (pools), interleaved per repetition, median wall ms of the kernel alone (ms): cpu, wasm and
 * tensorflow run a kernel synchronously, so the call's time is the kernel's, as training runs it.
 * Each is timed a second time with a dataSync of its result (msWithReadback), which adds a copy
 * of the output off the backend: a pool gradient's result is 4× the forward's, a filter gradient's
 * far smaller than the forward conv's, so the readback skews ratios both ways. Where the worker
 * replaced a backend kernel, the backend's own one is timed too (on a smaller batch when it is very
 * slow; GFLOP/s compare).
 * Tasks: computeShard on shards of the real spec, batched (one pass per chunk) and looped (one task
 * at a time); wall time and process CPU time (user + system) per task. Rows with `memory` profile
 * their (untimed) warm-up task with tf.profile: the peak of the bytes held by live tensors above
 * what was live before, i.e. one task's θ copy, data, activations and (second order) the tape.
 * A row with `memoryGuard` runs only when its peak, predicted from an earlier row's (× factor),
 * fits in a share of the machine's free memory; else it is reported as skipped, with the figure.
 * Compare: the layer graph's forward against the hand-written Conv4 (./reference-models.mjs) on the
 * same tasks, alternating which goes first, CPU time per task each and whether the meta-gradient
 * rows are bitwise equal.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './machine.mjs';
import { loadReferenceModels } from './reference-models.mjs';

const [backendName, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson ?? '{}');
const dist = (p) => pathToFileURL(join(ROOT, 'worker', 'dist', p)).href;
const require = createRequire(join(ROOT, 'worker', 'package.json'));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const spread = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

async function main() {
  const { selectBackend } = await import(dist('backend.js'));
  const engine = await import(dist('engine.js'));
  const { upstreamKernel } = await import(dist('kernels/register.js'));
  const shared = await import(pathToFileURL(join(ROOT, 'shared', 'dist', 'index.js')).href);
  const tf = require('@tensorflow/tfjs-core');
  const info = await selectBackend({ require: backendName });
  const out = { backend: info.name, device: info.device, kernels: [], tasks: [], compare: [] };

  // ---- kernels -------------------------------------------------------------------------
  const run = (name, inputs, attrs) => tf.engine().runKernel(name, inputs, attrs);
  const own = (name) => (backendName === 'tensorflow' ? undefined : upstreamKernel(name, backendName));
  const runOwn = (config, inputs, attrs) => {
    const b = tf.backend();
    const r = config.kernelFunc({ inputs, backend: b, attrs });
    return tf.engine().makeTensorFromTensorInfo(r, b);
  };
  if (backendName === 'wasm') {
    // Replaced before the backend was initialised: their setup never ran.
    for (const k of ['Conv2DBackpropInput', 'MaxPoolGrad', 'AvgPoolGrad']) own(k)?.setupFunc?.(tf.backend());
  }
  const timeOps = (ops, reps, readback = true) => {
    const samples = ops.map(() => []);
    for (let r = 0; r <= reps; r++) {
      ops.forEach((op, i) => {
        const t0 = performance.now();
        const y = op.f();
        if (readback) y.dataSync();
        const ms = performance.now() - t0;
        y.dispose();
        if (r > 0) samples[i].push(ms); // r = 0: warm-up
      });
    }
    return samples.map(median);
  };
  for (const k of plan.kernels ?? []) {
    const [N, H, W, C] = k.x;
    const F = k.filters;
    const s = k.stride;
    const x = tf.randomNormal([N, H, W, C]);
    const w = tf.randomNormal([3, 3, C, F]);
    const y = tf.conv2d(x, w, s, 'same');
    const dy = tf.randomNormal(y.shape);
    const flops = 2 * y.shape[0] * y.shape[1] * y.shape[2] * 9 * C * F;
    const attrs = { strides: s, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, C, F], inputShape: [N, H, W, C], dilations: 1 };
    const ops = [
      { id: 'Conv2D (forward)', f: () => tf.conv2d(x, w, s, 'same'), flops },
      { id: 'Conv2DBackpropFilter', f: () => run('Conv2DBackpropFilter', { x, dy }, attrs), flops },
      { id: 'Conv2DBackpropInput', f: () => run('Conv2DBackpropInput', { dy, filter: w }, attrs), flops },
    ];
    const pooled = tf.relu(y);
    const py = tf.maxPool(pooled, 2, 2, 'valid');
    const pdy = tf.randomNormal(py.shape);
    const pattrs = { filterSize: 2, strides: 2, pad: 'valid' };
    const pools = [
      { id: 'MaxPool (forward)', f: () => tf.maxPool(pooled, 2, 2, 'valid'), elements: pooled.size },
      { id: 'MaxPoolGrad', f: () => run('MaxPoolGrad', { dy: pdy, input: pooled, output: py }, pattrs), elements: pooled.size },
      { id: 'AvgPool (forward)', f: () => tf.avgPool(pooled, 2, 2, 'valid'), elements: pooled.size },
      { id: 'AvgPoolGrad', f: () => run('AvgPoolGrad', { dy: pdy, input: pooled }, pattrs), elements: pooled.size },
    ];
    const all = [...ops, ...pools];
    const ms = timeOps(all, plan.reps ?? 5, false);
    const rb = timeOps(all, plan.reps ?? 5, true);
    // The forward op each kernel is compared with: the conv for conv rows, the pool before it for pool rows.
    const ref = (i) => (i < ops.length ? 0 : ops.length + ((i - ops.length) & ~1));
    all.forEach((op, i) => {
      const rate = op.flops !== undefined ? { gflops: op.flops / ms[i] / 1e6 } : { gelems: op.elements / ms[i] / 1e6 };
      out.kernels.push({ layer: k.name, shape: k, kernel: op.id, impl: 'metaloop', ms: ms[i], ...rate, vsForward: ms[i] / ms[ref(i)], msWithReadback: rb[i], vsForwardWithReadback: rb[i] / rb[ref(i)] });
    });
    // The backends' own kernels that the worker replaces (cpu's are far slower: a smaller batch).
    if (backendName !== 'tensorflow') {
      const small = backendName === 'cpu' ? Math.max(1, Math.round(N / (plan.ownDivisor ?? 10))) : N;
      const xs = tf.slice(x, 0, small);
      const dys = tf.slice(dy, 0, small);
      const fl = (flops * small) / N;
      const sattrs = { ...attrs, inputShape: [small, H, W, C] };
      const owned = [
        ['Conv2D (forward)', { x: xs, filter: w }],
        ['Conv2DBackpropFilter', { x: xs, dy: dys }],
        ['Conv2DBackpropInput', { dy: dys, filter: w }],
      ].filter(([name]) => own(name));
      const oms = timeOps(owned.map(([name, inputs]) => ({ f: () => runOwn(own(name), inputs, sattrs) })), Math.min(3, plan.reps ?? 3), false);
      owned.forEach(([name], i) => out.kernels.push({ layer: k.name, shape: { ...k, x: [small, H, W, C] }, kernel: name, impl: `${backendName} own`, ms: oms[i], gflops: fl / oms[i] / 1e6 }));
      const ownPools = [
        ['MaxPoolGrad', { dy: pdy, input: pooled, output: py }],
        ['AvgPoolGrad', { dy: pdy, input: pooled }],
      ].filter(([name]) => own(name));
      const pms = timeOps(ownPools.map(([name, inputs]) => ({ f: () => runOwn(own(name), inputs, pattrs) })), Math.min(3, plan.reps ?? 3), false);
      ownPools.forEach(([name], i) => out.kernels.push({ layer: k.name, shape: k, kernel: name, impl: `${backendName} own`, ms: pms[i], gelems: pooled.size / pms[i] / 1e6 }));
      tf.dispose([xs, dys]);
    }
    tf.dispose([x, w, y, dy, pooled, py, pdy]);
  }

  // ---- tasks ---------------------------------------------------------------------------
  for (const t of plan.tasks ?? []) {
    const spec = shared.validateSpec(t.spec);
    const params = shared.initParams(spec).data;
    for (const mode of t.modes) {
      // A row too big for this machine is not run: its peak predicted from a smaller model's row.
      if (t.memoryGuard) {
        const from = out.tasks.find((r) => r.id === t.memoryGuard.from && r.mode === mode);
        const predicted = from?.peakBytesPerTask === undefined ? undefined : from.peakBytesPerTask * t.memoryGuard.factor;
        const free = os.freemem();
        if (predicted === undefined || predicted > t.memoryGuard.share * free) {
          out.tasks.push({ id: t.id, mode, algorithm: spec.algorithm.kind, skipped: predicted === undefined ? `no measured row ${t.memoryGuard.from} to predict its memory from` : `needs about ${(predicted / 2 ** 30).toFixed(1)} GiB of tensors (${t.memoryGuard.from}'s peak × ${t.memoryGuard.factor}), more than ${Math.round(t.memoryGuard.share * 100)}% of the ${(free / 2 ** 30).toFixed(1)} GiB free here`, predictedBytes: predicted });
          continue;
        }
      }
      const seeds = (n, base) => Array.from({ length: n }, (_, i) => base + i);
      // fused: the MLP host path (worker/src/fused); batched / looped: the tfjs path, forced.
      // rl-host: a meta-RL spec's train shards (worker/src/rl, host only); rl-sample: its rollouts
      // alone (eval shards with 0 inner steps: sample θ's episodes, fit the baseline, GAE).
      const opts = { batchTasks: mode === 'batched', fused: mode === 'fused', yieldEveryMs: 1e9 };
      const work = mode === 'rl-sample' ? { kind: 'eval', evalInnerSteps: 0 } : { kind: 'train' };
      // warmupTasks: a number, or one per mode ({ fused: 2000, … }): the fused path's loops need
      // thousands of tasks before V8 has optimised all of them.
      const warmup = typeof t.warmupTasks === 'object' ? (t.warmupTasks[mode] ?? 1) : (t.warmupTasks ?? 1);
      const warm = () => engine.computeShard(spec, params, { ...work, taskSeeds: seeds(warmup, 1000) }, opts);
      let peakBytesPerTask;
      if (t.memory && warmup === 1) {
        const live = tf.memory().numBytes;
        const prof = await tf.profile(warm);
        peakBytesPerTask = prof.peakBytes - live;
      } else {
        await warm();
      }
      let tasks = 0;
      let wall = 0;
      let cpu = 0;
      const shardWall = [];
      const shardCpu = [];
      for (let r = 0; r < t.shards && (r === 0 || wall < (t.budgetMs ?? Infinity)); r++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await engine.computeShard(spec, params, { ...work, taskSeeds: seeds(t.shardTasks, 2000 + tasks) }, opts);
        const w = performance.now() - t0;
        const c = process.cpuUsage(c0);
        const cm = (c.user + c.system) / 1000;
        wall += w;
        cpu += cm;
        tasks += t.shardTasks;
        shardWall.push(w / t.shardTasks);
        shardCpu.push(cm / t.shardTasks);
      }
      out.tasks.push({
        id: t.id,
        mode,
        algorithm: spec.algorithm.kind,
        tasks,
        chunk: mode === 'batched' ? engine.compileRun(spec).maxTaskBatch : 1,
        wallMsPerTask: wall / tasks,
        cpuMsPerTask: cpu / tasks,
        tasksPerSecWall: (1000 * tasks) / wall,
        tasksPerSecCpu: (1000 * tasks) / cpu,
        shards: shardWall.length,
        // Per shard, ms per task: the spread over shards (median, min, max).
        shardWallMsPerTask: spread(shardWall),
        shardCpuMsPerTask: spread(shardCpu),
        ...(peakBytesPerTask !== undefined ? { peakBytesPerTask } : {}),
      });
    }
  }

  // ---- the graph's Conv4 vs the hand-written one ----------------------------------------
  const refs = plan.compare?.length ? await loadReferenceModels() : undefined;
  for (const c of plan.compare ?? []) {
    const spec = shared.validateSpec(c.spec);
    const run = engine.compileRun(spec);
    const config = { pool: spec.model.pool, imageSize: spec.task.imageSize, channels: spec.task.channels ?? 1 };
    const hand = { ...run, inner: { ...run.inner, model: { ...run.inner.model, forward: (p, x) => refs.referenceConv4Forward(config, p, x) } } };
    const arms = { graph: run, hand };
    const theta = engine.paramTensors(run, shared.initParams(spec).data);
    const rows = (arm, seed) => engine.trainRows(arms[arm], theta, [run.family.sample(seed, 'train')], false);
    for (const arm of ['graph', 'hand']) rows(arm, 500); // warm-up
    const cpu = { graph: [], hand: [] };
    const ratios = [];
    let identical = true;
    for (let i = 0; i < c.pairs; i++) {
      const got = {};
      for (const arm of i % 2 ? ['hand', 'graph'] : ['graph', 'hand']) {
        // Collect the other arm's garbage first (the parent passes --expose-gc), so neither pays for it.
        globalThis.gc?.();
        const c0 = process.cpuUsage();
        got[arm] = rows(arm, 3000 + i);
        const d = process.cpuUsage(c0);
        cpu[arm].push((d.user + d.system) / 1000);
      }
      ratios.push(cpu.graph[i] / cpu.hand[i]);
      identical &&= got.graph.length === got.hand.length && got.graph.every((v, j) => Object.is(v, got.hand[j]));
    }
    tf.dispose(theta);
    out.compare.push({ id: c.id, pairs: c.pairs, graphCpuMsPerTask: spread(cpu.graph), handCpuMsPerTask: spread(cpu.hand), ratio: spread(ratios), identical });
  }
  console.log(`result ${JSON.stringify(out)}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.log(`error ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
    process.exit(1);
  },
);

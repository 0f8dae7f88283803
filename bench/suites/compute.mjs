/**
 * compute: the worker's training kernels and inner-loop throughput per backend (issue 4).
 * Each backend runs in a child process of its own (bench/lib/compute-child.mjs): cpu, wasm and
 * tensorflow (tfjs-node) when it loads. Kernels: ms and GFLOP/s of each backprop kernel next to the
 * forward conv2d of the same FLOPs (pool gradients next to the forward pool of the same input), in
 * the same process and repetition loop. Tasks: sinusoid MAML and Conv4 5-way 1-shot MAML/FOMAML,
 * on the fused host path (MLP only: worker/src/fused), vectorised (one batched tfjs pass per chunk)
 * and looped (one task at a time), wall and CPU time; on tensorflow also ResNet-12 (64-160-320-640)
 * and a 32-filter Conv4 at mini-ImageNet's 84×84×3 (a generated RGB folder, ../lib/rgb-folder.mjs),
 * first and second order, with the peak tensor memory of one task. Graph vs hand-written: the
 * Conv4 preset through the layer graph against the hand-written Conv4 it replaced, same tasks,
 * same process (target ≤ 1.05×, rows bitwise equal).
 * The PyTorch anchor (bench/lib/anchor.mjs):
 * plain PyTorch MAML beside the worker on tensorflow, graded on tasks per CPU second, with a
 * profile of the Conv4 shards (bench/lib/profile-shard.mjs).
 * BENCH_COMPUTE=backends,anchor (default both) picks the parts: `backends` = the kernel and task
 * rows of every backend, `anchor` = the PyTorch comparison and the profile.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { anchorNotes, anchorReport, runAnchor } from '../lib/anchor.mjs';
import { ROOT } from '../lib/machine.mjs';
import { spawnTracked } from '../lib/procs.mjs';
import { writeRgbFolder } from '../lib/rgb-folder.mjs';
import { fmt } from '../lib/stats.mjs';

export const title = 'compute — training kernels and inner-loop throughput per backend';
export const timeoutMs = 1_800_000;

const CHILD = join(ROOT, 'bench', 'lib', 'compute-child.mjs');
const BACKENDS = ['cpu', 'wasm', 'tensorflow'];
const BACKPROP = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'AvgPoolGrad'];
const KERNEL_RATIO = 1.5;
const FO_S = 2;
const SO_S = 5;
const SINUSOID_TASKS_S = 3000;
const GRAPH_VS_HAND = 1.05;
/** Classes and images of the generated 84×84×3 folder: 7 meta-train classes (70%) ≥ 5 ways, 16 images ≥ 1 shot + 15 queries. */
const RGB = { classes: 10, images: 16, size: 84 };
/** The fused MLP path does not use tfjs: it is measured (and its target counted) once, in this backend's process. */
const FUSED_IN = 'cpu';

const sinusoid = {
  name: 'bench-sinusoid',
  task: { family: 'sinusoid', shots: 10, queries: 10 },
  model: { kind: 'mlp', hidden: [40, 40], activation: 'relu' },
  algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
  outer: { metaBatch: 25, shardSize: 25 },
};

/** pytorch-maml-rl's 2D navigation (configs/maml/2d-navigation.yaml): 20 tasks × 20 episodes × horizon 100 per meta-step. */
const navigation = {
  name: 'bench-navigation-2d',
  task: { family: 'navigation-2d', episodes: 20, horizon: 100 },
  model: { kind: 'gaussian-mlp', hidden: [64, 64], activation: 'tanh' },
  algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.1 },
  outer: { metaBatch: 20, shardSize: 20 },
};
const RL_TASK = 'navigation-2d MAML (20 episodes × 100 steps per batch, 2-64-64-2 tanh, 1 step)';
/** Environment steps a train task takes (θ's batch and θ′'s batch) and a sampling task (θ's). */
const envSteps = (t) => navigation.task.episodes * navigation.task.horizon * (t.mode === 'rl-sample' ? 1 : navigation.algorithm.innerSteps + 1);

const conv4 = (kind) => ({
  name: `bench-conv4-${kind}`,
  task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 15, imageSize: 28 },
  model: { kind: 'conv4', filters: 64, pool: 'max' },
  algorithm: { kind, innerSteps: 1, innerLr: 0.4 },
  outer: { metaBatch: 32, shardSize: 2 },
});

/** 84×84×3 5-way 1-shot, 15 queries, from the generated folder at `path`. */
const mini = (path) => ({ family: 'fewshot-images', path, ways: 5, shots: 1, queries: 15, imageSize: RGB.size, channels: 3 });

/** ResNet-12's widths: the papers' and 1/8 of it (whose peak memory predicts the full one's: activations grow with the channels). */
const RESNET_FULL = [64, 160, 320, 640];
const RESNET_EIGHTH = [8, 20, 40, 80];
/** A full-width row runs when its predicted peak is at most this share of the free memory. */
const MEMORY_SHARE = 0.6;

const resnet12 = (kind, path, channels) => ({
  name: `bench-resnet12-${kind}`,
  task: mini(path),
  model: { kind: 'resnet12', channels },
  algorithm: { kind, innerSteps: 1, innerLr: 0.1 },
  outer: { metaBatch: 32, shardSize: 1 },
});

const conv4Mini = (kind, path) => ({
  name: `bench-conv4-84-${kind}`,
  task: mini(path),
  model: { kind: 'conv4', filters: 32, pool: 'max' },
  algorithm: { kind, innerSteps: 1, innerLr: 0.01 },
  outer: { metaBatch: 32, shardSize: 2 },
});

const ORDER = { fomaml: 'FOMAML', maml: 'MAML' };

function makePlan(quick, rgbPath) {
  const n = quick ? 20 : 80;
  return {
    reps: quick ? 2 : 7,
    ownDivisor: quick ? 5 : 10,
    kernels: [
      { name: `conv4 block 2 (${n} images)`, x: [n, 14, 14, 64], filters: 64, stride: 1 },
      { name: `conv4 block 1 (${n} images)`, x: [n, 28, 28, 1], filters: 64, stride: 1 },
      { name: `stride-2 conv4 block 2 (${n} images)`, x: [n, 14, 14, 64], filters: 64, stride: 2 },
    ],
    tasks: [
      { id: 'sinusoid MAML (10+10 points, 1-40-40-1, 1 step)', spec: sinusoid, modes: ['fused', 'batched', 'looped'], shards: quick ? 8 : 80, shardTasks: 25, warmupTasks: quick ? { fused: 200, batched: 100, looped: 100 } : { fused: 2000, batched: 400, looped: 400 }, budgetMs: 3000 },
      ...['fomaml', 'maml'].map((kind) => ({
        id: `Conv4 5w1s ${kind.toUpperCase()} (5+75 images, 28×28, 64 filters, 1 step)`,
        spec: conv4(kind),
        modes: ['batched', 'looped'],
        // One-task shards: the spread over shards (median, min–max) shows how steady a figure is.
        shards: quick ? 2 : 4,
        shardTasks: 1,
        warmupTasks: 1,
        memory: true,
      })),
      // mini-ImageNet shapes, tensorflow only (cpu and wasm would take minutes per ResNet-12 task); per task, the engine's CPU default.
      ...['fomaml', 'maml'].map((kind) => ({
        id: `Conv4-32 84×84×3 5w1s ${ORDER[kind]} (5+75 images, 32 filters, 1 step)`,
        spec: conv4Mini(kind, rgbPath),
        modes: ['looped'],
        backends: ['tensorflow'],
        shards: quick ? 2 : 4,
        shardTasks: 1,
        warmupTasks: 1,
        memory: true,
      })),
      ...['fomaml', 'maml'].flatMap((kind) => {
        const id = (c) => `ResNet-12 84×84×3 5w1s ${ORDER[kind]} (5+75 images, ${c.join('-')}, 1 step)`;
        const row = (c) => ({ id: id(c), spec: resnet12(kind, rgbPath, c), modes: ['looped'], backends: ['tensorflow'], shards: quick ? 1 : 3, shardTasks: 1, warmupTasks: 1, memory: true });
        return [row(RESNET_EIGHTH), { ...row(RESNET_FULL), memoryGuard: { from: id(RESNET_EIGHTH), factor: RESNET_FULL[0] / RESNET_EIGHTH[0], share: MEMORY_SHARE } }];
      }),
      { id: RL_TASK, spec: navigation, modes: ['rl-host', 'rl-sample'], shards: quick ? 1 : 3, shardTasks: navigation.outer.metaBatch, warmupTasks: 2 },
    ],
    // The Conv4 preset through the layer graph vs the hand-written Conv4 (worker/src/testing/reference-models.ts), per task.
    compare: [{ id: 'Conv4 5w1s MAML (5+75 images, 28×28, 64 filters, 1 step), per task', spec: conv4('maml'), pairs: quick ? 4 : 10 }],
  };
}

function runChild(backend, plan, log, signal) {
  return new Promise((resolve) => {
    let result = null;
    let error = null;
    const child = spawnTracked(process.execPath, ['--expose-gc', CHILD, backend, JSON.stringify(plan)], {
      onLine: (line) => {
        if (line.startsWith('result ')) result = JSON.parse(line.slice(7));
        else if (line.startsWith('error ')) error = line.slice(6);
      },
    });
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.once('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      if (!result) log(`${backend}: ${error ?? `exited ${code}`}`);
      resolve(result ?? { backend, error: error ?? `exited with code ${code}: ${child.tail().slice(-400)}` });
    });
  });
}

function parts() {
  const raw = process.env.BENCH_COMPUTE ?? 'backends,anchor';
  const list = raw.split(',').map((x) => x.trim()).filter(Boolean);
  const bad = list.filter((x) => x !== 'backends' && x !== 'anchor');
  if (!list.length || bad.length) throw new Error(`BENCH_COMPUTE must list backends and/or anchor (comma-separated), got ${raw}`);
  return new Set(list);
}

export async function run({ quick, log, signal }) {
  const want = parts();
  const backends = want.has('backends') ? await runBackends({ quick, log, signal }) : undefined;
  const anchor = want.has('anchor') ? anchorReport(await runAnchor({ quick, log, signal })) : undefined;
  const table = [
    backends?.table,
    anchor && ['### PyTorch anchor (tensorflow backend, one compute thread per arm)', '', anchor.table].join('\n'),
    anchor && ['### Anchor and profile targets', '', '| what | target | value | |', '|---|---|---|---|', ...anchor.targets.map((t) => `| ${t.what} | ${t.target} | ${t.value} | ${t.met ? 'met' : '**missed**'} |`)].join('\n'),
  ]
    .filter(Boolean)
    .join('\n\n');
  return {
    figures: [...(backends?.figures ?? []), ...(anchor?.figures ?? [])],
    table,
    notes: [...(backends?.notes ?? []), ...(anchor ? anchorNotes(anchor) : [])],
    targets: [...(backends?.targets ?? []), ...(anchor?.targets ?? [])],
    config: { parts: [...want], ...(backends?.config ?? {}) },
  };
}

async function runBackends({ quick, log, signal }) {
  const rgbPath = writeRgbFolder(RGB);
  const plan = makePlan(quick, rgbPath);
  const results = [];
  try {
    for (const b of BACKENDS) {
      log(`${b}: kernels and tasks in a child process`);
      // Host-only modes (the fused MLP path, meta-RL) do not depend on the backend: measured once.
      const tasks = plan.tasks
        .filter((t) => !t.backends || t.backends.includes(b))
        .map((t) => (b === FUSED_IN ? t : { ...t, modes: t.modes.filter((m) => m !== 'fused' && !m.startsWith('rl-')) }))
        .filter((t) => t.modes.length > 0);
      results.push(await runChild(b, { ...plan, tasks }, log, signal));
    }
  } finally {
    rmSync(rgbPath, { recursive: true, force: true });
  }
  const ok = results.filter((r) => !r.error);
  const figures = [];
  const targets = [];
  const kernelRows = [];
  for (const r of ok) {
    for (const k of r.kernels) {
      const conv = k.gflops !== undefined;
      const id = `${r.backend}/${k.layer}/${k.kernel}/${k.impl}`;
      figures.push({ id: `${id}/ms`, unit: 'ms', value: k.ms });
      figures.push(conv ? { id: `${id}/gflops`, unit: 'GFLOP/s', value: k.gflops } : { id: `${id}/gelems`, unit: 'G elements/s', value: k.gelems });
      if (k.msWithReadback !== undefined) figures.push({ id: `${id}/ms_with_readback`, unit: 'ms', value: k.msWithReadback });
      let verdict = '';
      if (BACKPROP.includes(k.kernel) && k.vsForward !== undefined) {
        const met = k.vsForward <= KERNEL_RATIO;
        verdict = met ? 'met' : '**missed**';
        targets.push({ what: `${k.kernel} vs forward, ${r.backend}, ${k.layer}`, target: `<= ${KERNEL_RATIO}x`, value: Number(k.vsForward.toFixed(3)), met });
      }
      const shape = `x [${k.shape.x}]${conv ? `, ${k.shape.filters} filters, stride ${k.shape.stride}` : ', 2×2/2 pool of relu(conv)'}`;
      kernelRows.push(
        `| ${k.layer} | ${r.backend} | ${k.kernel} | ${k.impl === 'metaloop' ? (r.backend === 'tensorflow' ? 'libtensorflow' : 'metaloop') : k.impl} | ${shape} | ${fmt(k.ms)} | ${conv ? fmt(k.gflops) : `${fmt(k.gelems * 1000)} M el/s`} | ${k.vsForward !== undefined ? `${fmt(k.vsForward, 3)}×${BACKPROP.includes(k.kernel) && k.vsForwardWithReadback !== undefined ? ` (${fmt(k.vsForwardWithReadback, 3)}× with readback)` : ''}` : '—'} | ${verdict || '—'} |`,
      );
    }
  }
  const taskRows = [];
  const rlRows = [];
  for (const r of ok) {
    for (const t of r.tasks) {
      const id = `${r.backend}/${t.id}/${t.mode}`;
      if (t.skipped) {
        if (t.predictedBytes !== undefined) figures.push({ id: `${id}/predicted_peak_tensor_mib_per_task`, unit: 'MiB (predicted, not measured)', value: t.predictedBytes / 2 ** 20 });
        taskRows.push(`| ${t.id} | ${r.backend} | ${t.mode} | — | not measured: ${t.skipped} | — | — | — | — | ~${t.predictedBytes !== undefined ? fmt(t.predictedBytes / 2 ** 20) : '?'} (predicted) |`);
        continue;
      }
      figures.push({ id: `${id}/wall_s_per_task`, unit: 's/task', value: t.wallMsPerTask / 1000 });
      figures.push({ id: `${id}/cpu_s_per_task`, unit: 'CPU s/task', value: t.cpuMsPerTask / 1000 });
      figures.push({ id: `${id}/tasks_per_cpu_s`, unit: 'tasks/CPU s', value: t.tasksPerSecCpu });
      figures.push({ id: `${id}/cpu_s_per_task_by_shard`, unit: 'CPU s/task (median, min, max over shards)', value: t.shardCpuMsPerTask.median / 1000, min: t.shardCpuMsPerTask.min / 1000, max: t.shardCpuMsPerTask.max / 1000, shards: t.shards });
      if (t.peakBytesPerTask !== undefined) figures.push({ id: `${id}/peak_tensor_mib_per_task`, unit: 'MiB (peak of live tensors, one task)', value: t.peakBytesPerTask / 2 ** 20 });
      const sp = (x) => `${fmt(x.median / 1000, 3)} (${fmt(x.min / 1000, 2)}–${fmt(x.max / 1000, 2)})`;
      if (t.mode.startsWith('rl-')) {
        const steps = (1000 * envSteps(t)) / t.shardCpuMsPerTask.median;
        figures.push({ id: `${id}/env_steps_per_cpu_s`, unit: 'environment steps/CPU s', value: steps });
        if (t.mode === 'rl-host') figures.push({ id: `${id}/meta_steps_per_cpu_s`, unit: 'meta-steps/CPU s (20 tasks, one core)', value: 1000 / (t.shardCpuMsPerTask.median * navigation.outer.metaBatch) });
        rlRows.push(`| ${t.mode === 'rl-host' ? 'meta-gradient (inner step, θ′ rollouts, second order)' : 'rollouts alone (θ, baseline, GAE)'} | ${fmt(t.shardCpuMsPerTask.median / 1000, 3)} | ${fmt(steps)} | ${t.mode === 'rl-host' ? `${fmt(1000 / (t.shardCpuMsPerTask.median * navigation.outer.metaBatch), 3)} (${fmt(2000 / (t.shardCpuMsPerTask.median * navigation.outer.metaBatch), 3)} on 2 workers)` : '—'} |`);
      }
      const mib = t.peakBytesPerTask !== undefined ? fmt(t.peakBytesPerTask / 2 ** 20) : '—';
      taskRows.push(
        `| ${t.id} | ${t.mode === 'fused' || t.mode.startsWith('rl-') ? 'any (no tfjs)' : r.backend} | ${t.mode} | ${t.chunk} | ${t.tasks} in ${t.shards} | ${sp(t.shardWallMsPerTask)} | ${sp(t.shardCpuMsPerTask)} | ${fmt(t.tasksPerSecWall)} | ${fmt(t.tasksPerSecCpu)} | ${mib} |`,
      );
    }
    // Targets on the better mode, one-core cost = CPU time per task (median over shards).
    const cpuS = (t) => t.shardCpuMsPerTask.median / 1000;
    const best = (prefix) => {
      const rows = r.tasks.filter((t) => !t.skipped && t.id.startsWith(prefix));
      return rows.length ? rows.reduce((a, b) => (cpuS(b) < cpuS(a) ? b : a)) : undefined;
    };
    // Sinusoid: the engine's path for MLPs is the fused one, which does not depend on the backend: one target.
    const sin = r.tasks.find((t) => t.id.startsWith('sinusoid') && t.mode === 'fused');
    if (sin) targets.push({ what: 'sinusoid MAML tasks per CPU second, fused host path (any backend)', target: `>= ${SINUSOID_TASKS_S}`, value: Math.round(sin.tasksPerSecCpu), met: sin.tasksPerSecCpu >= SINUSOID_TASKS_S });
    const fo = best('Conv4 5w1s FOMAML');
    if (fo) targets.push({ what: `Conv4 5w1s FOMAML CPU s/task, ${r.backend} (${fo.mode})`, target: `<= ${FO_S}`, value: Number(cpuS(fo).toFixed(3)), met: cpuS(fo) <= FO_S });
    const so = best('Conv4 5w1s MAML');
    if (so) targets.push({ what: `Conv4 5w1s MAML CPU s/task, ${r.backend} (${so.mode})`, target: `<= ${SO_S}`, value: Number(cpuS(so).toFixed(3)), met: cpuS(so) <= SO_S });
  }
  const compareRows = [];
  for (const r of ok) {
    for (const c of r.compare ?? []) {
      const id = `${r.backend}/graph_vs_hand/${c.id}`;
      figures.push({ id: `${id}/ratio`, unit: 'graph CPU / hand-written CPU per task (median, min, max over pairs)', value: c.ratio.median, min: c.ratio.min, max: c.ratio.max, pairs: c.pairs });
      figures.push({ id: `${id}/graph_cpu_s_per_task`, unit: 'CPU s/task', value: c.graphCpuMsPerTask.median / 1000 });
      figures.push({ id: `${id}/hand_cpu_s_per_task`, unit: 'CPU s/task', value: c.handCpuMsPerTask.median / 1000 });
      figures.push({ id: `${id}/bitwise_equal`, unit: 'rows bitwise equal (1 yes, 0 no)', value: c.identical ? 1 : 0 });
      const met = c.identical && c.ratio.median <= GRAPH_VS_HAND;
      targets.push({ what: `Layer graph vs hand-written Conv4 (the conv4 preset), ${r.backend} (CPU per task, median of ${c.pairs} pairs; rows bitwise equal: ${c.identical ? 'yes' : 'NO'})`, target: `<= ${GRAPH_VS_HAND}x`, value: Number(c.ratio.median.toFixed(3)), met });
      const s3 = (x) => `${fmt(x.median / 1000, 3)} (${fmt(x.min / 1000, 2)}–${fmt(x.max / 1000, 2)})`;
      compareRows.push(`| ${c.id} | ${r.backend} | ${c.pairs} | ${s3(c.graphCpuMsPerTask)} | ${s3(c.handCpuMsPerTask)} | ${fmt(c.ratio.median, 3)}× (${fmt(c.ratio.min, 3)}–${fmt(c.ratio.max, 3)}) | ${c.identical ? 'yes' : '**no**'} |`);
    }
  }
  const table = [
    `Backends: ${results.map((r) => (r.error ? `${r.backend} (not measured: ${r.error})` : `${r.backend} = ${r.device}`)).join('; ')}. Every backend runs in its own process, one after the other.`,
    '',
    `### Kernels (median of ${plan.reps} repetitions after a warm-up; each kernel interleaved with the forward op it is compared with)`,
    '',
    '"× forward": time over the forward conv2d of the same FLOPs in the same run (pool gradients: over the forward pool of the same input); ms = the kernel alone, as training runs it (cpu, wasm and tfjs-node run kernels synchronously: the call time is the kernel time); each op is also timed with a dataSync of its result, in parentheses: that adds a copy of the output off the backend, which skews the ratio both ways (a pool gradient\'s output is 4× the forward pool\'s, a filter gradient\'s far smaller than the forward conv\'s). "metaloop" = the worker\'s kernel (worker/src/kernels); "<backend> own" = the kernel the backend ships, which the worker replaces (cpu\'s on a smaller batch: compare GFLOP/s). Target: each backprop kernel ≤ 1.5× forward.',
    '',
    '| layer | backend | kernel | implementation | shape | ms | GFLOP/s | × forward | target |',
    '|---|---|---|---|---|---|---|---|---|',
    ...kernelRows,
    '',
    `### Tasks (computeShard on shards of the real spec, after a warm-up shard so the JIT is warm; sinusoid: shards of 25 tasks, up to ${plan.tasks[0].shards} shards or ${plan.tasks[0].budgetMs / 1000} s; Conv4: one-task shards)`,
    '',
    '"fused" = the MLP host path (worker/src/fused: forward, gradient and the exact second-order meta-gradient by a hand-derived Hessian-vector product, float64 loops, no tfjs; the engine default for MLPs, identical on every backend: measured once, in the ' + FUSED_IN + ' backend\'s process), "batched" = the vectorised tfjs path (a chunk of tasks in one computation, chunk = tasks per pass), "looped" = one task at a time. wall and CPU s/task = median (min–max) over the shards; CPU s/task = process CPU time (user + system) per task: the one-core cost, robust to other load on the shared cores; wall s/task also counts waiting for a core. Targets (one core, on the median): sinusoid MAML ≥ 3,000 tasks/s; Conv4 5w1s FOMAML ≤ 2 s/task, MAML (second order) ≤ 5 s/task.',
    '',
    '"peak MiB/task": the most memory live tensors held while one task ran (its warm-up task under tf.profile, above what was live before: θ\'s copy, the task\'s images, activations and, second order, the tape through the inner step); tfjs\' own accounting of tensor bytes, not the process\' RSS. The 84×84×3 rows run on a generated folder of RGB PNGs (10 classes × 16 images) and on tensorflow only: a full-width ResNet-12 task is several TFLOP, minutes on cpu or wasm. ResNet-12 runs at 1/8 of the papers\' width (8-20-40-80) and at their width (64-160-320-640) when that fits: its peak is predicted as the 1/8 row\'s × 8 (activations grow with the channels) and the row runs only when the prediction is at most ' + `${MEMORY_SHARE * 100}% of the free memory; otherwise it says so, with the prediction.`,
    '',
    '| workload | backend | mode | chunk | tasks in shards | wall s/task | CPU s/task | tasks/s (wall) | tasks per CPU second | peak MiB/task |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...taskRows,
    '',
    `### The layer graph vs the hand-written Conv4 (target ≤ ${GRAPH_VS_HAND}×)`,
    '',
    'The conv4 preset runs through the layer graph (shared/src/model: one forward per layer type); before issue 24 it was a hand-written forward, kept as the test reference worker/src/testing/reference-models.ts. Both run here in the same process on the same tasks and θ (trainRows: the engine\'s per-task MAML meta-gradient), in pairs, alternating which goes first; ratio = graph CPU / hand-written CPU per task, median (min–max) over the pairs. "bitwise equal": every pair\'s meta-gradient rows identical bit for bit.',
    '',
    '| workload | backend | pairs | graph CPU s/task | hand-written CPU s/task | ratio | bitwise equal |',
    '|---|---|---|---|---|---|---|',
    ...compareRows,
    '',
    '### Meta-RL (navigation-2d, 20 tasks × 20 episodes × horizon 100 per meta-step)',
    '',
    'The worker\'s meta-RL path (worker/src/rl): rollouts and the exact second-order meta-gradient in float64 host loops on the fused MLP\'s kernels, no tfjs (so the same on every backend: measured once, in the ' + FUSED_IN + ' backend\'s process). A train task samples 2 × 20 × 100 environment steps (θ\'s batch for the inner step, θ′\'s for the outer objective). CPU s per task: median over shards of 20 tasks; meta-steps per CPU second = one core computing all 20 tasks (2 workers: twice that, the coordinator\'s share is negligible). For scale: PyTorch MAML-VPG with pytorch-maml-rl\'s settings, ~11 s per meta-step on 2 cores (issue 26).',
    '',
    '| computation | CPU s/task | environment steps per CPU second | meta-steps per CPU second |',
    '|---|---|---|---|',
    ...rlRows,
    '',
    '### Targets',
    '',
    '| what | target | value | |',
    '|---|---|---|---|',
    ...targets.map((t) => `| ${t.what} | ${t.target} | ${t.value} | ${t.met ? 'met' : '**missed**'} |`),
  ].join('\n');
  const notes = notesFor(ok, targets);
  return { figures, table, notes, targets, config: { plan, backends: results.map((r) => ({ backend: r.backend, device: r.device, error: r.error })) } };
}

/**
 * Why targets are missed and what would fix them (the causes were found with tf.profile on Conv4
 * and sinusoid steps); each note is emitted only when its target is missed. Figures in the notes
 * are only those measured in this run.
 */
function notesFor(ok, targets) {
  const missed = (re) => targets.filter((t) => !t.met && re.test(t.what));
  const list = (ts) => ts.map((t) => `${t.what.replace(/ vs forward,/, '')} ${t.value}`).join('; ');
  const notes = [
    'What the worker replaces (worker/src/kernels): on cpu, 3×3 stride-1 convolutions with ≥ 2 channels run by Winograd (Conv2D and Conv2DBackpropInput F(2×2, 3×3), Conv2DBackpropFilter F(3×3, 2×2)), a first layer\'s Conv2DBackpropInput as dy·Wᵀ + col2im, other convolutions on one register-blocked JS GEMM (im2col/col2im); MaxPool, MaxPoolGrad (branch-free on non-negative inputs), AvgPoolGrad, Relu, Step, Square, Add/Sub/Multiply/RealDiv with broadcasting, Sum/Mean, Slice, StridedSlice, PadV2 and large BatchMatMuls are flat typed-array loops, and the kernels\' output arrays are recycled; on wasm, Conv2DBackpropFilter (missing upstream) is im2colᵀ built in JS from the stride-phase planes of x times dy on the XNNPACK GEMM (BatchMatMul; dyᵀ·cols for one input channel), Conv2DBackpropInput a flipped-filter XNNPACK Conv2D (stride 1) or s² sub-filter XNNPACK Conv2Ds and a JS scatter (stride 2), BatchMatMul transposes large transposed operands first and splits large batches, pool gradients are SIMD wasm working in place on the backend heap (pool-grad.wat; JS loops when channels are not a multiple of 4) and leading-axis Sum/Mean JS loops on the wasm heap. The "own" rows show what they replace.',
    'Vectorised conv nets (each layer\'s task-batched forward, shared/src/model/layers: a 3×3 convolution as nine per-tap batched matMuls on shifted slices, exactly twice differentiable) are the engine default only on a GPU (webgl, webgpu, tfjs-node-gpu on a GPU), where launch overhead dominates: on cpu, wasm and libtensorflow on a CPU a Conv4 step is compute-bound, and per-task conv kernels (XNNPACK, the JS GEMM, libtensorflow) beat nine products plus the slice/pad copies; the "batched" rows force it (batchTasks: true) to show the difference. No GPU here, so its GPU gain is not measured. An MLP takes the fused host path by default; its "batched" and "looped" rows force the tfjs path (fused: false) for comparison.',
  ];
  const wasmPool = missed(/^(MaxPoolGrad|AvgPoolGrad).*wasm/);
  if (wasmPool.length) {
    notes.push(
      `Missed — wasm pool gradients vs the forward pool (${list(wasmPool)}): the gradients are SIMD wasm (worker/src/kernels/pool-grad.wat: f32x4 over the channel axis, in place on tfjs-backend-wasm's heap through its exported WebAssembly.Memory, each dx element written once when windows do not overlap) against XNNPACK's forward pools; both are memory-bound, and the gradient reads x and dy and writes dx (4× the forward's output). Fix: fuse the pool gradient into the ReLU gradient that follows it in the backward pass (one pass instead of two).`,
    );
  }
  const wasmConv = missed(/^Conv2DBackprop.*wasm/);
  if (wasmConv.length) {
    notes.push(
      `Missed — wasm conv backprop vs forward (${list(wasmConv)}): XNNPACK does the arithmetic, but around it: Conv2DBackpropFilter builds im2colᵀ in JS (one copy per filter tap and channel from x's stride-phase planes: 9× x for a 3×3 filter, a memory pass the forward does not make) and XNNPACK's fully-connected GEMM packs its second operand on every call (dy, in chunks that stay in L2; with one input channel, dy transposed instead); a strided Conv2DBackpropInput runs as s² = 4 stride-1 convolutions with 2×2, 2×1, 1×2 and 1×1 sub-filters (each less efficient than one 3×3 conv, and 4 operator creations) plus a JS scatter into dx (dy·Wᵀ on BatchMatMul and a JS col2im was slower when tried). With one input channel (Conv4's first layer) the forward conv is cheap (9 multiply-adds per output) and the filter gradient pays a transpose of dy, 64× x's size. The load average in this section's header says how much other work shared the cores. Fix: dedicated kernels inside a wasm module (XNNPACK's GEMM microkernels on unpacked operands, col2im in wasm), which tfjs-backend-wasm does not export.`,
    );
  }
  const nativePool = missed(/tensorflow/);
  if (nativePool.filter((t) => /PoolGrad|Backprop/.test(t.what)).length) {
    notes.push(
      `Missed — tensorflow (${list(nativePool.filter((t) => /PoolGrad|Backprop/.test(t.what)))}): these are libtensorflow's own kernels, which the worker uses as they are: issue 4's kernels are for the backends without a native library (cpu and wasm), and a worker kernel on tfjs-node would have to copy x, dy and dx between TensorFlow and JavaScript (the readback column shows one such copy costs as much as these kernels). TensorFlow's CPU MaxPoolGrad recomputes each window's arg-max with a scalar loop while its forward MaxPool is vectorised Eigen; its first-layer (one input channel) conv backprops are likewise slow paths. Fix: upstream (TensorFlow), or run on a GPU build, where these are cuDNN kernels.`,
    );
  }
  const graph = missed(/^Layer graph vs hand-written/);
  if (graph.length) {
    notes.push(
      `Missed — the layer graph vs the hand-written Conv4 (${list(graph)}): both run the same tfjs ops in the same order (the rows say whether they stayed bitwise equal); what the graph adds per layer is a Map lookup of its inputs, the parameter record of its layer and, for Activation layers, one switch — microseconds against a task's tens to thousands of milliseconds — so a ratio above the target on a shared machine is first to be checked against the pairs' spread (min–max) and the load average in this section's header before it is read as overhead.`,
    );
  }
  const sin = missed(/^sinusoid/);
  if (sin.length) {
    const fused = ok.flatMap((r) => r.tasks).find((t) => t.id.startsWith('sinusoid') && t.mode === 'fused');
    notes.push(
      `Missed — sinusoid MAML (${list(sin)}): the fused host path (worker/src/fused) is scalar float64 JavaScript (forward, gradient and Hessian-vector product through the 40×40 layer dominate)${fused ? `: ${fmt(fused.cpuMsPerTask * 1000)} CPU µs per task in this run` : ''}, so a loaded or slower core falls under ${SINUSOID_TASKS_S} tasks/s. The tfjs rows are bound by per-kernel launch overhead. Fix: batch the θ_0 passes of all tasks of a shard (they share θ), or a SIMD wasm build of the same loops.`,
    );
  }
  const conv = missed(/^Conv4/);
  if (conv.length) {
    const cpuRows = ok.find((r) => r.backend === 'cpu')?.kernels.filter((k) => k.impl === 'metaloop' && /^conv4 block 2/.test(k.layer) && /^Conv2DBackprop/.test(k.kernel)) ?? [];
    const cpuGemm = cpuRows.length ? cpuRows.map((k) => `${fmt(k.gflops)} (${k.kernel})`).join(', ') : '';
    const backendOf = (t) => /, (\w+) \(/.exec(t.what)?.[1];
    const convTargets = targets.filter((t) => /^Conv4/.test(t.what));
    const metOn = [...new Set(convTargets.map(backendOf))].filter((b) => b && convTargets.filter((t) => backendOf(t) === b).every((t) => t.met));
    notes.push(
      `Missed — Conv4 5w1s (${list(conv)}): arithmetic and memory passes. A first-order 5w1s task is forward and backward of 5 support and 75 query images through four 64-filter 3×3 convs, plus the pre-adaptation query loss (block 2 dominates), and pure JavaScript has no SIMD${cpuGemm ? `: the cpu backprop kernels ran at ${cpuGemm} GFLOP/s on block 2 in this run` : ''}. On cpu the forward 3×3 convs run as Winograd F(2×2, 3×3) (worker/src/kernels/winograd.ts, 2.25× fewer multiply-adds), the backprops on the register-blocked GEMM, and batch-norm is many full passes over each activation forward and backward. ${metOn.length ? `Both Conv4 targets met in this run on ${metOn.join(', ')}; a worker without a native backend picks the faster of wasm and cpu by calibration. ` : ''}Fix on cpu: Winograd for Conv2DBackpropInput too (stride 1 is a forward conv of dy with the flipped filter) and for Conv2DBackpropFilter (F(3×3, 2×2)), a fused batch-norm kernel; or run on wasm or tensorflow.`,
    );
  }
  return notes;
}

/**
 * data: how fast tasks are drawn from user datasets (issue 25). 5-way 1-shot 15-query tasks of
 * 84×84×3 images from a mini-ImageNet-like folder of JPEGs (split CSVs, written by the suite), drawn
 * (a) from the JPEGs, every image decoded and resized at each draw, and (b) from the packed file of
 * the same folder; and the share of a Conv4 MAML shard's compute (tensorflow backend) that drawing
 * its tasks takes, in the same process. All figures are process CPU time (every thread), so other
 * load on the shared cores does not move them. Targets: packed ≥ 50× the JPEG path (tasks per CPU
 * second); drawing ≤ 5 % of the shard's compute.
 */
import { join } from 'node:path';
import { ROOT } from '../lib/machine.mjs';
import { spawnTracked } from '../lib/procs.mjs';
import { fmt } from '../lib/stats.mjs';

export const title = 'data — drawing few-shot image tasks from JPEG folders and packed files';
export const timeoutMs = 1_200_000;

const CHILD = join(ROOT, 'bench', 'lib', 'data-child.mjs');
const SPEEDUP = 50;
const SHARE = 0.05;

function runChild(plan, log, signal) {
  return new Promise((resolve, reject) => {
    let result = null;
    let error = null;
    const child = spawnTracked(process.execPath, [CHILD, JSON.stringify(plan)], {
      onLine: (line) => {
        if (line.startsWith('result ')) result = JSON.parse(line.slice(7));
        else if (line.startsWith('error ')) error = line.slice(6);
      },
    });
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.once('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      if (result) resolve(result);
      else reject(new Error(`data child failed (${error ?? `exit ${code}`}): ${child.tail().slice(-400)}`));
    });
    log('measuring in a child process (tensorflow backend)');
  });
}

export async function run({ quick, log, signal }) {
  const plan = quick
    ? { classesPerSplit: 6, perClass: 16, width: 500, height: 375, jpegTasks: 4, packedTasks: 200, shardTasks: 1, shards: 1 }
    : { classesPerSplit: 8, perClass: 20, width: 500, height: 375, jpegTasks: 12, packedTasks: 1000, shardTasks: 2, shards: 3 };
  const r = await runChild(plan, log, signal);
  const rate = (n, s) => n / s;
  const jpegRate = rate(r.jpeg.tasks, r.jpeg.cpuS);
  const packedRate = rate(r.packed.tasks, r.packed.cpuS);
  const speedup = packedRate / jpegRate;
  const shardCpu = r.shards.reduce((a, s) => a + s.computeCpuS, 0);
  const drawPacked = r.shards.reduce((a, s) => a + s.drawPackedCpuS, 0);
  const drawJpeg = r.shards.reduce((a, s) => a + s.drawJpegCpuS, 0);
  const share = drawPacked / shardCpu;
  const jpegShare = drawJpeg / shardCpu;
  const figures = [
    { id: 'jpeg/tasks_per_cpu_s', unit: 'tasks/CPU s', value: jpegRate, tasks: r.jpeg.tasks },
    { id: 'jpeg/tasks_per_wall_s', unit: 'tasks/s', value: rate(r.jpeg.tasks, r.jpeg.wallS) },
    { id: 'packed/tasks_per_cpu_s', unit: 'tasks/CPU s', value: packedRate, tasks: r.packed.tasks },
    { id: 'packed/tasks_per_wall_s', unit: 'tasks/s', value: rate(r.packed.tasks, r.packed.wallS) },
    { id: 'packed_vs_jpeg', unit: 'ratio (tasks per CPU s)', value: speedup },
    { id: 'pack/images_per_cpu_s', unit: 'images/CPU s', value: r.pack.images / r.pack.cpuS },
    { id: 'shard/conv4_cpu_s', unit: 'CPU s per shard', value: shardCpu / r.shards.length, shards: r.shards.length, tasksPerShard: plan.shardTasks },
    { id: 'shard/draw_share_packed', unit: 'share of shard CPU', value: share },
    { id: 'shard/draw_share_jpeg', unit: 'share of shard CPU', value: jpegShare },
  ];
  const targets = [
    { what: 'data: tasks per CPU second, packed file vs JPEG folder (5w1s15q, 84×84×3)', target: `>= ${SPEEDUP}x`, value: Number(speedup.toFixed(1)), met: speedup >= SPEEDUP },
    { what: `data: drawing a Conv4 shard's tasks (packed) / the shard's compute, ${r.backend}`, target: `<= ${SHARE * 100}%`, value: Number((share * 100).toFixed(2)), met: share <= SHARE },
  ];
  const table = [
    `Backend ${r.backend} (${r.device}). A mini-ImageNet-like folder written by the suite: ${r.images} JPEGs of ${plan.width}×${plan.height} (quality 90) in 3 × ${plan.classesPerSplit} classes of ${plan.perClass}, split CSVs; tasks 5-way 1-shot 15 queries at 84×84×3 (80 images each). CPU = process user + system time, every thread.`,
    '',
    '| path | tasks | CPU s | tasks per CPU s | tasks/s (wall) |',
    '|---|---|---|---|---|',
    `| JPEG folder (decode + resize every image at each draw) | ${r.jpeg.tasks} | ${fmt(r.jpeg.cpuS, 3)} | ${fmt(jpegRate, 3)} | ${fmt(rate(r.jpeg.tasks, r.jpeg.wallS), 3)} |`,
    `| packed file | ${r.packed.tasks} | ${fmt(r.packed.cpuS, 3)} | ${fmt(packedRate, 3)} | ${fmt(rate(r.packed.tasks, r.packed.wallS), 3)} |`,
    '',
    `Packing the folder once: ${r.pack.images} images in ${fmt(r.pack.cpuS, 3)} CPU s (${fmt(r.pack.images / r.pack.cpuS, 3)} images/CPU s, ${fmt(r.pack.wallS, 3)} s wall), ${fmt(r.pack.bytes / 2 ** 20, 3)} MiB.`,
    '',
    `Conv4 (32 filters, max-pool) second-order MAML, 1 inner step, shards of ${plan.shardTasks} task(s) on packed data, ${r.shards.length} shard(s) after a warm-up: ${fmt(shardCpu / r.shards.length, 3)} CPU s per shard; drawing the same shard's tasks alone: ${fmt((drawPacked / r.shards.length) * 1000, 3)} CPU ms from the packed file (${fmt(share * 100, 3)} % of the shard), ${fmt((drawJpeg / r.shards.length) * 1000, 3)} CPU ms from the JPEGs (${fmt(jpegShare * 100, 3)} %).`,
    '',
    '| what | target | value | |',
    '|---|---|---|---|',
    ...targets.map((t) => `| ${t.what} | ${t.target} | ${t.value} | ${t.met ? 'met' : '**missed**'} |`),
  ].join('\n');
  const notes = [
    'The JPEG path decodes and resizes each of a task\'s 80 images through sharp (libvips, Lanczos-3) at every draw, as a worker without the decoded-image cache would; with the cache (512 MiB by default) repeated images cost what packed ones do, but a mini-ImageNet split (38,400 images) does not fit. libvips decodes a JPEG that is shrunk by 2× or more at a reduced scale (shrink-on-load), so a 500×375 JPEG costs about a millisecond. A packed file holds every image decoded at its final size: a draw decodes nothing and maps each of the task\'s 1.7 M bytes (80 × 84 × 84 × 3) through the pixel table into float32 (6.8 MB written), drawn into the arrays of the previous task as the engine does.',
  ];
  if (speedup < SPEEDUP) {
    notes.push(
      `Missed — packed vs JPEG (${fmt(speedup, 3)}×): a packed draw is bound by turning uint8 pixels into float32 in JavaScript (one table look-up and one 4-byte store per value, ${fmt((1000 / packedRate) * 1000, 3)} CPU µs per task here), while libvips' shrink-on-load makes the JPEG path cheap for these image sizes. Fix: hand the engine the uint8 pixels and apply the pixel map (÷255, invert, mean/std) as one tensor op on the backend, so a draw is a byte copy; the per-shard share (the cost that matters to a worker) is ${fmt(share * 100, 3)} % here.`,
    );
  }
  return { figures, table, notes, targets, config: plan };
}

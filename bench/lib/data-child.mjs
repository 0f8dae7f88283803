#!/usr/bin/env node
/**
 * The data suite's measurements in a process of its own (tfjs state is global):
 * `node data-child.mjs '<plan json>'` prints one line `result <json>` (or `error <message>`).
 * Writes a mini-ImageNet-like JPEG folder (split CSVs, images of plan.width × plan.height) in a
 * temp dir, then, each as process CPU time (user + system, every thread: libvips and TensorFlow
 * work in threads) and wall time:
 *   jpeg:    tasks drawn from the folder, every image decoded and resized at each draw (cache off)
 *   pack:    packing the folder once (images per second)
 *   packed:  tasks drawn from the packed file
 *   shard:   a Conv4 MAML shard on the tensorflow backend on packed data (after a warm-up shard),
 *            and drawing that shard's tasks alone, from the packed file and from the JPEG folder
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './machine.mjs';

const plan = JSON.parse(process.argv[2] ?? '{}');
const mod = (pkg, p) => import(pathToFileURL(join(ROOT, pkg, 'dist', p)).href);

function cpuWall(fn) {
  return async () => {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    const value = await fn();
    const c = process.cpuUsage(c0);
    return { value, cpuS: (c.user + c.system) / 1e6, wallS: (performance.now() - w0) / 1000 };
  };
}

async function main() {
  const { writeImageFixture } = await mod('testing', 'datasets.js');
  const { packImages } = await mod('worker', 'data/index.js');
  const { createFewshotImages } = await mod('worker', 'tasks/images.js');
  const { selectBackend } = await mod('worker', 'backend.js');
  const { computeShard } = await mod('worker', 'engine.js');
  const shared = await mod('shared', 'index.js');
  const dir = mkdtempSync(join(tmpdir(), 'metaloop-bench-data-'));
  try {
    const root = join(dir, 'mini');
    const t0 = performance.now();
    await writeImageFixture({ layout: 'csv', classes: plan.classesPerSplit, perClass: plan.perClass, format: 'jpeg', width: plan.width, height: plan.height }, root);
    const fixtureS = (performance.now() - t0) / 1000;
    const task = { family: 'fewshot-images', ways: 5, shots: 1, queries: 15, imageSize: 84, channels: 3 };
    const spec = (path) =>
      shared.validateSpec({
        name: 'bench-data',
        task: { ...task, path },
        model: { kind: 'conv4', filters: 32, pool: 'max' },
        algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
        outer: { metaBatch: plan.shardTasks, shardSize: plan.shardTasks },
        workers: { backend: 'tensorflow' },
      });
    const seeds = (n, base) => Array.from({ length: n }, (_, i) => base + i);

    const jpegFam = createFewshotImages(spec(root), { cacheBytes: 0 });
    // As the engine draws: prepare, then each task into the arrays of the one before (no fresh memory).
    const draw = async (fam, ss) => {
      let spare;
      for (const s of ss) {
        await fam.prepare([s]);
        spare = fam.sample(s, 'train', spare);
      }
    };
    await draw(jpegFam, [999]); // warm-up (libvips start, JIT)
    const jpeg = await cpuWall(() => draw(jpegFam, seeds(plan.jpegTasks, 0)))();

    const out = join(dir, 'mini.mlpack');
    const images = 3 * plan.classesPerSplit * plan.perClass;
    const pack = await cpuWall(() => packImages({ source: root, imageSize: 84, channels: 3, out }))();

    const packedFam = createFewshotImages(spec(out));
    await draw(packedFam, seeds(20, 5000)); // warm-up
    const packed = await cpuWall(() => draw(packedFam, seeds(plan.packedTasks, 0)))();

    const info = await selectBackend({ require: 'tensorflow' });
    const s = spec(out);
    const theta = shared.initParams(s).data;
    const shard = (ss) => computeShard(s, theta, { kind: 'train', taskSeeds: ss });
    await shard(seeds(plan.shardTasks, 10_000)); // warm-up shard
    const shards = [];
    for (let k = 0; k < plan.shards; k++) {
      const ss = seeds(plan.shardTasks, 20_000 + k * plan.shardTasks);
      const compute = await cpuWall(() => shard(ss))();
      const fresh = createFewshotImages(s); // the packed file is loaded once per process (cached)
      const drawPacked = await cpuWall(() => draw(fresh, ss))();
      const drawJpeg = await cpuWall(() => draw(jpegFam, ss))();
      shards.push({ computeCpuS: compute.cpuS, computeWallS: compute.wallS, drawPackedCpuS: drawPacked.cpuS, drawJpegCpuS: drawJpeg.cpuS });
    }
    const result = {
      backend: info.name,
      device: info.device,
      fixtureS,
      images,
      jpeg: { tasks: plan.jpegTasks, ...strip(jpeg) },
      pack: { images, bytes: pack.value.bytes, ...strip(pack) },
      packed: { tasks: plan.packedTasks, ...strip(packed) },
      shards,
    };
    process.stdout.write(`result ${JSON.stringify(result)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const strip = ({ cpuS, wallS }) => ({ cpuS, wallS });

main().then(
  () => process.exit(0),
  (err) => {
    process.stdout.write(`error ${String(err?.stack ?? err).split('\n').slice(0, 3).join(' | ')}\n`);
    process.exit(1);
  },
);

#!/usr/bin/env node
/**
 * Metaloop's arm of the PyTorch anchor (bench/lib/anchor.mjs), in a process of its own on the
 * tensorflow backend: `node anchor-child.mjs arm|profile '<json>'` prints `result <json>` (or
 * `error <message>`). Uses the worker's build, with the worker's defaults (one libtensorflow
 * thread each way unless the environment says otherwise: worker/src/tf-threads.ts).
 *
 * arm: { spec, warmup, tasks } → CPU and wall ms per task of one computeShard of `tasks` tasks
 *   with the engine's default options (what a worker runs), after `warmup` tasks.
 * profile: { spec, warmup, tasks } → profile-shard.mjs's profile of one-task shards.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './machine.mjs';
import { profileShards } from './profile-shard.mjs';

const [mode, json] = process.argv.slice(2);
const job = JSON.parse(json ?? '{}');
const dist = (p) => pathToFileURL(join(ROOT, 'worker', 'dist', p)).href;
const require = createRequire(join(ROOT, 'worker', 'package.json'));

async function main() {
  const { selectBackend } = await import(dist('backend.js'));
  const engine = await import(dist('engine.js'));
  const shared = await import(pathToFileURL(join(ROOT, 'shared', 'dist', 'index.js')).href);
  const tf = require('@tensorflow/tfjs-core');
  const info = await selectBackend({ require: 'tensorflow' });
  const spec = shared.validateSpec(job.spec);
  const params = shared.initParams(spec).data;
  const seeds = (n, base) => Array.from({ length: n }, (_, i) => base + i);
  if (mode === 'profile') {
    const p = await profileShards({ tf, engine, spec, params, tasks: job.tasks, warmup: job.warmup });
    return { device: info.device, ...p };
  }
  await engine.computeShard(spec, params, { kind: 'train', taskSeeds: seeds(job.warmup, 1000) });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await engine.computeShard(spec, params, { kind: 'train', taskSeeds: seeds(job.tasks, 2000) });
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000;
  return { device: info.device, tasks: job.tasks, cpuMsPerTask: cpu / job.tasks, wallMsPerTask: wall / job.tasks };
}

main().then(
  (r) => {
    console.log(`result ${JSON.stringify(r)}`);
    process.exit(0);
  },
  (err) => {
    console.log(`error ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
    process.exit(1);
  },
);

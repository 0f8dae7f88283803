/**
 * One run "without any transport": the worker's computeShard for every shard of every step, the
 * shard gradients summed in shard order in float64, divided by the meta-batch, and the
 * coordinator's outer optimizer — in one process, on the backend the worker would select.
 * Prints one JSON line: { backend, stepMs: [...], computeMs, aggregateMs, optimizerMs }.
 * Usage: node inproc-run.mjs '<spec JSON>'
 */
import { createOptimizer, shardSizes } from '@metaloop/coordinator';
import { initParams, taskSeed, validateSpec } from '@metaloop/shared';
import { computeShard, selectBackend } from '@metaloop/worker';

const spec = validateSpec(JSON.parse(process.argv[2]));
const backend = await selectBackend();
const params = initParams(spec).data;
const optimizer = createOptimizer(spec, params.length);
const { metaBatch, shardSize, steps } = spec.outer;
const sizes = shardSizes(metaBatch, shardSize);
const out = { backend: `${backend.name} (${backend.device})`, stepMs: [], computeMs: [], aggregateMs: [], optimizerMs: [] };
for (let t = 0; t < steps; t++) {
  const t0 = performance.now();
  const grad = new Float64Array(params.length);
  let compute = 0;
  let aggregate = 0;
  for (let i = 0; i < sizes.length; i++) {
    const c0 = performance.now();
    const taskSeeds = Array.from({ length: sizes[i] }, (_, k) => taskSeed(spec.seed, 'train', t, i * shardSize + k));
    const r = await computeShard(spec, params, { kind: 'train', taskSeeds });
    const c1 = performance.now();
    if (r.kind !== 'train') throw new Error('expected a train result');
    for (let j = 0; j < grad.length; j++) grad[j] += r.grad[j];
    compute += c1 - c0;
    aggregate += performance.now() - c1;
  }
  const a0 = performance.now();
  for (let j = 0; j < grad.length; j++) grad[j] /= metaBatch;
  aggregate += performance.now() - a0;
  const o0 = performance.now();
  optimizer.step(params, grad);
  out.optimizerMs.push(performance.now() - o0);
  out.computeMs.push(compute);
  out.aggregateMs.push(aggregate);
  out.stepMs.push(performance.now() - t0);
}
console.log(JSON.stringify(out));
process.exit(0);

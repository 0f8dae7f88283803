/** The run specs the transport and scaling suites time (plain objects, submitted as JSON). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { validateSpec } from '@metaloop/shared';
import { ROOT } from './machine.mjs';

/** The paper's sinusoid MAML (examples/sinusoid.yaml) for `steps` meta-steps, no periodic eval/checkpoint. */
export function sinusoidSpec(steps) {
  const base = parse(readFileSync(join(ROOT, 'examples', 'sinusoid.yaml'), 'utf8'));
  const spec = {
    ...base,
    name: 'bench-sinusoid',
    outer: { ...base.outer, steps },
    eval: { every: 0, tasks: base.outer.shardSize, innerSteps: 1 },
    checkpoint: { every: 0, keep: 1 },
  };
  validateSpec(spec);
  return spec;
}

/** Conv4 5-way 1-shot (15 queries per class), second-order MAML, on synthetic glyphs. */
export function conv4Spec(steps, { metaBatch = 4, shardSize = 2 } = {}) {
  const spec = {
    name: 'bench-conv4-5w1s',
    seed: 7,
    task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 15 },
    model: { kind: 'conv4', filters: 64 },
    algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
    outer: { optimizer: 'adam', lr: 0.001, metaBatch, steps, shardSize },
    eval: { every: 0, tasks: shardSize, innerSteps: 1 },
    checkpoint: { every: 0, keep: 1 },
  };
  validateSpec(spec);
  return spec;
}

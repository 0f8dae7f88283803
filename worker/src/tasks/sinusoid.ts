/**
 * The sinusoid regression benchmark of the MAML paper: y = A·sin(x − φ), A, φ and the x's drawn
 * uniformly from the spec's ranges, from the task seed only.
 */
import { Rng, type RunSpec } from '@metaloop/shared';
import { UnsupportedError } from '../errors.js';
import type { Examples, TaskData, TaskFamily } from './types.js';

export interface SinusoidConfig {
  readonly shots: number;
  readonly queries: number;
  readonly amplitude: readonly [number, number];
  readonly phase: readonly [number, number];
  readonly xRange: readonly [number, number];
}

export interface SinusoidTask extends TaskData {
  readonly amplitude: number;
  readonly phase: number;
}

function draw(rng: Rng, n: number, amplitude: number, phase: number, [lo, hi]: readonly [number, number]): Examples {
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const xi = rng.uniform(lo, hi);
    x[i] = xi;
    y[i] = amplitude * Math.sin(xi - phase);
  }
  return { x, y, n };
}

/** Draw order (fixed, part of the wire contract): amplitude, phase, K support x's, Q query x's. */
export function sampleSinusoid(config: SinusoidConfig, seed: number): SinusoidTask {
  const rng = new Rng(seed);
  const amplitude = rng.uniform(config.amplitude[0], config.amplitude[1]);
  const phase = rng.uniform(config.phase[0], config.phase[1]);
  const support = draw(rng, config.shots, amplitude, phase, config.xRange);
  const query = draw(rng, config.queries, amplitude, phase, config.xRange);
  return { amplitude, phase, support, query };
}

export function createSinusoid(spec: RunSpec): TaskFamily {
  if (spec.task.family !== 'sinusoid') throw new UnsupportedError('task family', spec.task.family, ['sinusoid']);
  const config: SinusoidConfig = { ...spec.task };
  return {
    family: 'sinusoid',
    loss: 'mse',
    inputShape: [1],
    outputs: 1,
    // No classes: held-out tasks differ by seed (the coordinator's 'eval' seed domain), not by split.
    sample: (seed) => sampleSinusoid(config, seed),
  };
}

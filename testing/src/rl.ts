/**
 * Meta-RL runs for cross-process tests (docs/meta-rl.md): navigation-2d from the example spec,
 * sized for CI. The same `TfjsRun` shape as ./tfjs.ts, so `train` and `finish` run them (meta-RL
 * computes on the host, on any backend).
 */
import { join } from 'node:path';
import { ROOT } from './paths.js';
import type { TfjsRun } from './tfjs.js';

export const NAVIGATION_EXAMPLE = join(ROOT, 'examples/navigation-2d.yaml');

/** A tiny navigation-2d run for determinism and chaos: 16-16 policy, 4 one-task shards per step, checkpoints every 2 steps. */
export function navigationRun(steps: number): TfjsRun {
  return {
    label: 'navigation-2d',
    file: NAVIGATION_EXAMPLE,
    steps,
    sets: [
      `outer.steps=${steps}`,
      'outer.metaBatch=4',
      'outer.shardSize=1',
      'task.episodes=5',
      'task.horizon=40',
      'model.hidden=[16, 16]',
      'eval.every=0',
      'eval.tasks=4',
      'eval.innerSteps=2',
      'checkpoint.every=2',
      'checkpoint.keep=2',
    ],
  };
}

/**
 * The adaptation run of CI: the example with a 32-32 policy, 10 rollouts per batch, meta-batch 10
 * and Adam 0.01 for 40 meta-steps, then one evaluation on 40 held-out tasks (returns after 0 and
 * 1 inner step). About 15 CPU-seconds of compute.
 */
export const NAVIGATION_CI_SETS = [
  'task.episodes=10',
  'model.hidden=[32, 32]',
  'outer.lr=0.01',
  'outer.metaBatch=10',
  'outer.shardSize=5',
  'outer.steps=40',
  'eval.every=0',
  'eval.tasks=40',
  'eval.innerSteps=1',
  'checkpoint.every=0',
] as const;

/**
 * Sampling a batch of episodes of one task with the policy θ, on the host, batched over the
 * batch's episodes at every time step (one forward pass of the mean network per step).
 *
 * Reproducibility: episode e of batch b of the task with seed s draws everything random (the
 * environment's reset noise, then a standard normal per action dimension and step) from its own
 * stream Rng(hash(s, ROLLOUT, b, e)), so a batch depends only on θ, s and b: not on which worker
 * samples it nor on the other episodes. An episode that ends early (done) stops drawing.
 *
 * Layout (time-major, as pytorch-maml-rl's BatchEpisodes): row r = t·N + e of obs [r × obsDim],
 * act [r × actDim] (the sampled action, before the environment clips it), rew [r]. Rows past an
 * episode's end hold zeros; `lengths[e]` counts its steps.
 */
import { hashWords, Rng } from '@metaloop/shared';
import type { MlpWorkspace } from '../fused/mlp.js';
import type { RlEnv } from './envs.js';
import type { GaussianPolicy } from './gaussian.js';

/** Word mixed into rollout seeds (ASCII "RL"). */
const ROLLOUT = 0x524c;

export interface Rollouts {
  readonly episodes: number;
  readonly horizon: number;
  readonly obs: Float64Array;
  readonly act: Float64Array;
  readonly rew: Float64Array;
  readonly lengths: Int32Array;
  /** Mean over episodes of the undiscounted return Σ_t r_t (what papers report). */
  readonly meanReturn: number;
}

/** Seed of episode e of batch b of the task with seed s. */
export function episodeSeed(taskSeed: number, batch: number, episode: number): number {
  return hashWords(taskSeed, ROLLOUT, batch, episode);
}

export interface SampleOptions {
  readonly env: RlEnv;
  readonly policy: GaussianPolicy;
  /** Workspace for passes over `episodes` rows. */
  readonly ws: MlpWorkspace;
  readonly episodes: number;
  readonly horizon: number;
  readonly taskSeed: number;
  readonly batch: number;
}

export function sampleRollouts(o: SampleOptions, theta: Float64Array): Rollouts {
  const { env, policy, episodes: N, horizon: H } = o;
  const O = env.obsDim;
  const A = env.actDim;
  const S = env.stateDim;
  const obs = new Float64Array(H * N * O);
  const act = new Float64Array(H * N * A);
  const rew = new Float64Array(H * N);
  const lengths = new Int32Array(N);
  const state = new Float64Array(N * S);
  const cur = new Float64Array(N * O);
  const std = new Float64Array(A);
  for (let j = 0; j < A; j++) std[j] = Math.exp(theta[policy.netSize + j]!);
  const rngs = Array.from({ length: N }, (_, e) => new Rng(episodeSeed(o.taskSeed, o.batch, e)));
  const live = new Uint8Array(N).fill(1);
  for (let e = 0; e < N; e++) env.reset(state, e * S, cur, e * O, rngs[e]!);
  let running = N;
  let total = 0;
  for (let t = 0; t < H && running > 0; t++) {
    const mu = policy.mean(o.ws, theta, cur, N);
    const row0 = t * N;
    for (let e = 0; e < N; e++) {
      if (!live[e]) continue;
      const r = row0 + e;
      obs.set(cur.subarray(e * O, e * O + O), r * O);
      const rng = rngs[e]!;
      for (let j = 0; j < A; j++) act[r * A + j] = mu[e * A + j]! + std[j]! * rng.normal();
      const reward = env.step(state, e * S, act, r * A, cur, e * O);
      rew[r] = reward;
      total += reward;
      lengths[e] = t + 1;
      if (env.done(state, e * S)) {
        live[e] = 0;
        running--;
      }
    }
  }
  return { episodes: N, horizon: H, obs, act, rew, lengths, meanReturn: total / N };
}

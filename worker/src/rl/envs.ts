/**
 * The meta-RL environments, pure TypeScript in float64 (docs/meta-rl.md). A task is drawn from its
 * seed alone (shared's Rng: the goal of navigation-2d, the mass and length of pendulum); every
 * episode's randomness (pendulum's initial state; the policy's action noise, rollouts.ts) comes
 * from that episode's own stream, so a rollout depends only on θ, the task seed and its index.
 *
 * navigation-2d (MAML §5.3; pytorch-maml-rl `maml_rl/envs/navigation.py`): the state is the
 * position, starting at the origin; an action is a velocity, clipped to ±maxSpeed per axis;
 * s ← s + clip(a); reward −‖s − g‖ (or −‖s − g‖²); done when |sx − gx| and |sy − gy| are both
 * below doneRadius. The observation is the position (the goal is what adaptation must find).
 *
 * pendulum (Gym's Pendulum-v1 with per-task mass m and length l): state (θ, θ̇), observation
 * [cos θ, sin θ, θ̇], θ ~ U(−π, π) and θ̇ ~ U(−1, 1) at reset; u = clip(a, ±maxTorque);
 * reward −(norm(θ)² + 0.1·θ̇² + 0.001·u²) with norm(θ) = θ wrapped to [−π, π);
 * θ̇ ← clip(θ̇ + (3g/(2l)·sin θ + 3/(m·l²)·u)·dt, ±maxSpeed); θ ← θ + θ̇·dt. Never done (time limit).
 */
import { Rng, type Navigation2dTaskSpec, type PendulumTaskSpec, type RlTaskSpec } from '@metaloop/shared';

/** One task's MDP. State and observation live in caller-owned arrays at the given offsets. */
export interface RlEnv {
  readonly obsDim: number;
  readonly actDim: number;
  readonly stateDim: number;
  /** Start an episode: write the initial state and its observation (rng: the episode's stream). */
  reset(state: Float64Array, so: number, obs: Float64Array, oo: number, rng: Rng): void;
  /** Apply the action act[ao…]: update the state, write the next observation, return the reward. */
  step(state: Float64Array, so: number, act: Float64Array, ao: number, obs: Float64Array, oo: number): number;
  /** Whether the episode ended after the last step (besides the horizon). */
  done(state: Float64Array, so: number): boolean;
}

const clip = (x: number, m: number) => (x > m ? m : x < -m ? -m : x);

export class Navigation2d implements RlEnv {
  readonly obsDim = 2;
  readonly actDim = 2;
  readonly stateDim = 2;
  private readonly gx: number;
  private readonly gy: number;

  constructor(
    private readonly spec: Navigation2dTaskSpec,
    readonly goal: readonly [number, number],
  ) {
    [this.gx, this.gy] = goal;
  }

  /** The goal of the task with this seed: uniform in [low, high]². */
  static sampleGoal(spec: Navigation2dTaskSpec, seed: number): [number, number] {
    const rng = new Rng(seed);
    const [lo, hi] = spec.goals;
    const x = rng.uniform(lo, hi);
    return [x, rng.uniform(lo, hi)];
  }

  reset(state: Float64Array, so: number, obs: Float64Array, oo: number): void {
    state[so] = 0;
    state[so + 1] = 0;
    obs[oo] = 0;
    obs[oo + 1] = 0;
  }

  step(state: Float64Array, so: number, act: Float64Array, ao: number, obs: Float64Array, oo: number): number {
    const m = this.spec.maxSpeed;
    const x = state[so]! + clip(act[ao]!, m);
    const y = state[so + 1]! + clip(act[ao + 1]!, m);
    state[so] = x;
    state[so + 1] = y;
    obs[oo] = x;
    obs[oo + 1] = y;
    const dx = x - this.gx;
    const dy = y - this.gy;
    const d2 = dx * dx + dy * dy;
    return this.spec.reward === 'squared' ? -d2 : -Math.sqrt(d2);
  }

  done(state: Float64Array, so: number): boolean {
    const r = this.spec.doneRadius;
    return Math.abs(state[so]! - this.gx) < r && Math.abs(state[so + 1]! - this.gy) < r;
  }
}

const TWO_PI = 2 * Math.PI;

/** θ wrapped to [−π, π) (Gym's angle_normalize: Python's % is never negative). */
export function angleNormalize(th: number): number {
  const m = (th + Math.PI) % TWO_PI;
  return (m < 0 ? m + TWO_PI : m) - Math.PI;
}

export class Pendulum implements RlEnv {
  readonly obsDim = 3;
  readonly actDim = 1;
  readonly stateDim = 2;

  constructor(
    private readonly spec: PendulumTaskSpec,
    readonly mass: number,
    readonly length: number,
  ) {}

  /** Mass and length of the task with this seed, each uniform in its range. */
  static sampleDynamics(spec: PendulumTaskSpec, seed: number): { mass: number; length: number } {
    const rng = new Rng(seed);
    const mass = rng.uniform(spec.mass[0], spec.mass[1]);
    return { mass, length: rng.uniform(spec.length[0], spec.length[1]) };
  }

  private observe(state: Float64Array, so: number, obs: Float64Array, oo: number): void {
    const th = state[so]!;
    obs[oo] = Math.cos(th);
    obs[oo + 1] = Math.sin(th);
    obs[oo + 2] = state[so + 1]!;
  }

  reset(state: Float64Array, so: number, obs: Float64Array, oo: number, rng: Rng): void {
    state[so] = rng.uniform(-Math.PI, Math.PI);
    state[so + 1] = rng.uniform(-1, 1);
    this.observe(state, so, obs, oo);
  }

  step(state: Float64Array, so: number, act: Float64Array, ao: number, obs: Float64Array, oo: number): number {
    const { gravity: g, dt, maxTorque, maxSpeed } = this.spec;
    const m = this.mass;
    const l = this.length;
    const th = state[so]!;
    const thdot = state[so + 1]!;
    const u = clip(act[ao]!, maxTorque);
    const a = angleNormalize(th);
    const cost = a * a + 0.1 * thdot * thdot + 0.001 * u * u;
    const next = clip(thdot + ((3 * g) / (2 * l) * Math.sin(th) + (3 / (m * l * l)) * u) * dt, maxSpeed);
    state[so] = th + next * dt;
    state[so + 1] = next;
    this.observe(state, so, obs, oo);
    return -cost;
  }

  done(): boolean {
    return false;
  }
}

/** The environment of the task with this seed. */
export function createEnv(task: RlTaskSpec, seed: number): Navigation2d | Pendulum {
  if (task.family === 'navigation-2d') return new Navigation2d(task, Navigation2d.sampleGoal(task, seed));
  const { mass, length } = Pendulum.sampleDynamics(task, seed);
  return new Pendulum(task, mass, length);
}

/**
 * The meta-reinforcement-learning parts of the run spec (docs/meta-rl.md): the task families whose
 * tasks are MDPs (`navigation-2d`, `pendulum`), the Gaussian MLP policy (`gaussian-mlp`), the `rl`
 * section (discount, GAE, advantage normalisation, baseline, curvature estimator), the checks that
 * tie them together and the policy's parameter layout. spec.ts and layout.ts include them into
 * their unions; everything else about meta-RL lives here.
 *
 * Defaults and where they come from (pytorch-maml-rl = tristandeleu/pytorch-maml-rl,
 * `configs/maml/2d-navigation.yaml` and `maml_rl/envs/navigation.py`; MAML = Finn et al. 2017, §5.3):
 * goals uniform in [-0.5, 0.5]² (pytorch-maml-rl's env-kwargs low/high), horizon 100
 * (`max_episode_steps`), velocity actions clipped to ±0.1, reward −‖s − g‖ (pytorch-maml-rl and
 * cbfinn/maml_rl; the paper's text says squared: `reward: squared`), episode done when |dx| and
 * |dy| are both < 0.01, 20 episodes per task (`fast-batch-size`), γ 0.99, GAE λ 1.0, advantages
 * normalised, the linear feature baseline of Duan et al. 2016 with ridge 1e-5, policy [64, 64]
 * tanh with initial std 1. Pendulum: Gym's Pendulum-v1 (g 10, dt 0.05, max torque 2, max speed 8,
 * horizon 200) with the mass and the length drawn per task.
 */
import { z } from 'zod';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const pos = () => z.number().positive().finite();
const range = (what: string, min = -Infinity) =>
  z
    .tuple([z.number().finite().min(min), z.number().finite().min(min)])
    .refine(([lo, hi]) => lo <= hi, { message: `${what} must be [low, high] with low <= high` });

/** Rollouts per task and per batch (each inner step and the outer objective sample this many). */
const episodes = () => int(1, 100_000).default(20);

/**
 * 2D navigation (MAML §5.3): a point starts at the origin, each action is its velocity (clipped
 * to ±maxSpeed per axis), the reward is minus the distance to the task's goal after the move.
 */
export const Navigation2dTaskSchema = z.strictObject({
  family: z.literal('navigation-2d'),
  episodes: episodes(),
  horizon: int(1, 100_000).default(100),
  /** Goals are drawn uniformly in [low, high]² per task. */
  goals: range('goals').default([-0.5, 0.5]),
  maxSpeed: pos().default(0.1),
  /** The episode ends when |x − gx| < doneRadius and |y − gy| < doneRadius (0: never). */
  doneRadius: z.number().min(0).finite().default(0.01),
  /** distance: −‖s − g‖ (pytorch-maml-rl, cbfinn/maml_rl); squared: −‖s − g‖² (the paper's text). */
  reward: z.enum(['distance', 'squared']).default('distance'),
});

/**
 * Gym's Pendulum-v1 (swing-up: observation [cos θ, sin θ, θ̇], torque action, cost θ² + 0.1 θ̇² +
 * 0.001 u²) whose tasks differ in dynamics: a mass and a length drawn uniformly per task.
 */
export const PendulumTaskSchema = z.strictObject({
  family: z.literal('pendulum'),
  episodes: episodes(),
  horizon: int(1, 100_000).default(200),
  mass: range('mass', 1e-6).default([0.5, 2]),
  length: range('length', 1e-6).default([0.5, 2]),
  gravity: pos().default(10),
  dt: pos().default(0.05),
  maxTorque: pos().default(2),
  maxSpeed: pos().default(8),
});

export const RL_FAMILIES = ['navigation-2d', 'pendulum'] as const;
export type RlFamily = (typeof RL_FAMILIES)[number];
export type Navigation2dTaskSpec = z.output<typeof Navigation2dTaskSchema>;
export type PendulumTaskSpec = z.output<typeof PendulumTaskSchema>;
export type RlTaskSpec = Navigation2dTaskSpec | PendulumTaskSpec;

export function isRlFamily(family: string): family is RlFamily {
  return (RL_FAMILIES as readonly string[]).includes(family);
}

/** Whether a task spec is of a meta-RL family (narrows the spec's task union). */
export function isRlTask<T extends { family: string }>(task: T): task is Extract<T, { family: RlFamily }> {
  return isRlFamily(task.family);
}

/** Observation and action sizes of a family. */
export function rlDims(task: RlTaskSpec): { obs: number; act: number } {
  return task.family === 'navigation-2d' ? { obs: 2, act: 2 } : { obs: 3, act: 1 };
}

/**
 * A Gaussian MLP policy: the mean is an MLP of the observation (hidden layers with the activation,
 * a linear output), the standard deviation exp(log_std) a learned vector that does not depend on
 * the state (pytorch-maml-rl's NormalMLPPolicy, garage's GaussianMLPPolicy).
 */
export const GaussianMlpModelSchema = z.strictObject({
  kind: z.literal('gaussian-mlp'),
  hidden: z.array(int(1, 65_536)).max(64).default([64, 64]),
  activation: z.enum(['relu', 'tanh']).default('tanh'),
  /** exp(log_std) at θ₀ (pytorch-maml-rl's init_std). */
  initStd: pos().default(1),
});
export type GaussianMlpModelSpec = z.output<typeof GaussianMlpModelSchema>;

/**
 * How the policy gradient is estimated. `curvature`: vpg differentiates the inner REINFORCE
 * surrogate −Σ log π·A through the inner step (MAML-VPG, garage, pytorch-maml-rl); lvc uses
 * ProMP's low-variance curvature surrogate −Σ (π/⊥π)·A instead, whose Hessian adds
 * −Σ A·∇log π ∇log πᵀ: the part of the dependence of the inner samples on θ that DiCE would give.
 */
export const RlSchema = z.strictObject({
  gamma: z.number().gt(0).max(1).default(0.99),
  gaeLambda: z.number().min(0).max(1).default(1),
  normalizeAdvantages: z.boolean().default(true),
  /** Ridge of the linear feature baseline's normal equations (×10 up to 4 more times when singular). */
  baselineReg: pos().default(1e-5),
  curvature: z.enum(['vpg', 'lvc']).default('vpg'),
});
export type RlSpec = z.output<typeof RlSchema>;

/** Default number of held-out tasks of a meta-RL evaluation (pytorch-maml-rl's test.py: 40 per batch). */
export const RL_EVAL_TASKS = 40;

interface RlDraft {
  task: { family: string };
  model: { kind: string };
  algorithm: { kind: string; multiStepLoss: boolean; learnedLayerLr: boolean };
  rl?: RlSpec | undefined;
}

type Issue = { code: 'custom'; path: PropertyKey[]; message: string };

/** The spec-wide rules of meta-RL: an RL family takes a gaussian-mlp policy and maml or fomaml, and only it takes `rl`. */
export function checkRlSpec(spec: RlDraft, addIssue: (issue: Issue) => void): void {
  const rl = isRlFamily(spec.task.family);
  if (rl && spec.model.kind !== 'gaussian-mlp') {
    addIssue({ code: 'custom', path: ['model', 'kind'], message: `${spec.task.family} is a meta-RL family: use model.kind gaussian-mlp (a Gaussian MLP policy)` });
  }
  if (!rl && spec.model.kind === 'gaussian-mlp') {
    addIssue({ code: 'custom', path: ['model', 'kind'], message: `gaussian-mlp is a policy for the meta-RL families (${RL_FAMILIES.join(', ')}); use mlp for ${spec.task.family}` });
  }
  if (!rl && spec.rl !== undefined) {
    addIssue({ code: 'custom', path: ['rl'], message: `the rl section applies to the meta-RL families (${RL_FAMILIES.join(', ')}) only: remove it for ${spec.task.family}` });
  }
  if (!rl) return;
  const a = spec.algorithm;
  if (a.kind !== 'maml' && a.kind !== 'fomaml') {
    addIssue({ code: 'custom', path: ['algorithm', 'kind'], message: `meta-RL runs take maml or fomaml, not ${a.kind}` });
  }
  if (a.multiStepLoss || a.learnedLayerLr) {
    addIssue({ code: 'custom', path: ['algorithm', a.multiStepLoss ? 'multiStepLoss' : 'learnedLayerLr'], message: 'the MAML++ options are not implemented for meta-RL: remove them' });
  }
}

/** The `rl` section with its defaults, for a spec of an RL family (else nothing). */
export function rlDefaults(spec: { task: { family: string }; rl?: RlSpec | undefined }): { rl?: RlSpec } {
  if (!isRlFamily(spec.task.family)) return {};
  return { rl: spec.rl ?? RlSchema.parse({}) };
}

/** Name of the policy's log standard deviation in θ's layout (after the mean network, which is laid out as the mlp model's). */
export const LOG_STD = 'log_std';

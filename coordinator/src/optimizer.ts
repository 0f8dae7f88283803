/**
 * Deterministic outer optimizers. Parameters are float32 (what workers see); the update and the
 * optimizer state are float64, computed element by element in one fixed order, so the same
 * gradients give bit-identical parameters on every run.
 */
import { InvariantError, type RunSpec } from '@metaloop/shared';
import { StoredDataError } from './errors.js';

export interface OptimizerState {
  readonly kind: 'adam' | 'sgd';
  /** Number of updates applied so far. */
  readonly t: number;
  /** First and second moments (Adam only; empty for SGD). */
  readonly m: Float64Array;
  readonly v: Float64Array;
}

export interface OuterOptimizer {
  readonly kind: 'adam' | 'sgd';
  /** Updates applied so far. */
  readonly t: number;
  /** θ ← θ − update(grad), in place; `grad` is the mean meta-gradient. */
  step(params: Float32Array, grad: Float64Array): void;
  /** A copy of the state (for checkpoints). */
  state(): OptimizerState;
}

export interface AdamOptions {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

/**
 * Adam (Kingma & Ba 2015, Algorithm 1) with bias correction:
 *   m ← β1 m + (1 − β1) g;  v ← β2 v + (1 − β2) g²
 *   θ ← θ − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
 */
export class Adam implements OuterOptimizer {
  readonly kind = 'adam' as const;
  private tCount: number;
  private readonly m: Float64Array;
  private readonly v: Float64Array;

  constructor(
    readonly size: number,
    private readonly options: AdamOptions,
    restore?: OptimizerState,
  ) {
    if (restore) {
      if (restore.kind !== 'adam' || restore.m.length !== size || restore.v.length !== size) {
        throw new StoredDataError('checkpoint', `cannot restore Adam of ${size} values from ${restore.kind} state of ${restore.m.length}`);
      }
      this.tCount = restore.t;
      this.m = Float64Array.from(restore.m);
      this.v = Float64Array.from(restore.v);
    } else {
      this.tCount = 0;
      this.m = new Float64Array(size);
      this.v = new Float64Array(size);
    }
  }

  get t(): number {
    return this.tCount;
  }

  step(params: Float32Array, grad: Float64Array): void {
    if (params.length !== this.size || grad.length !== this.size) {
      throw new InvariantError(`Adam of ${this.size} values got params ${params.length} and grad ${grad.length}`);
    }
    const { lr, beta1, beta2, epsilon } = this.options;
    const t = ++this.tCount;
    const bc1 = 1 - Math.pow(beta1, t);
    const bc2 = 1 - Math.pow(beta2, t);
    const m = this.m;
    const v = this.v;
    for (let i = 0; i < this.size; i++) {
      const g = grad[i]!;
      const mi = beta1 * m[i]! + (1 - beta1) * g;
      const vi = beta2 * v[i]! + (1 - beta2) * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = params[i]! - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + epsilon);
    }
  }

  state(): OptimizerState {
    return { kind: 'adam', t: this.tCount, m: Float64Array.from(this.m), v: Float64Array.from(this.v) };
  }
}

/** Plain SGD: θ ← θ − lr · g. */
export class Sgd implements OuterOptimizer {
  readonly kind = 'sgd' as const;
  private tCount: number;

  constructor(
    readonly size: number,
    private readonly lr: number,
    restore?: OptimizerState,
  ) {
    this.tCount = restore?.t ?? 0;
  }

  get t(): number {
    return this.tCount;
  }

  step(params: Float32Array, grad: Float64Array): void {
    if (params.length !== this.size || grad.length !== this.size) {
      throw new InvariantError(`SGD of ${this.size} values got params ${params.length} and grad ${grad.length}`);
    }
    this.tCount++;
    for (let i = 0; i < this.size; i++) params[i] = params[i]! - this.lr * grad[i]!;
  }

  state(): OptimizerState {
    return { kind: 'sgd', t: this.tCount, m: new Float64Array(0), v: new Float64Array(0) };
  }
}

/** The outer optimizer a run spec asks for. */
export function createOptimizer(spec: RunSpec, size: number, restore?: OptimizerState): OuterOptimizer {
  const o = spec.outer;
  switch (o.optimizer) {
    case 'adam':
      return new Adam(size, { lr: o.lr, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon }, restore);
    case 'sgd':
      return new Sgd(size, o.lr, restore);
  }
}

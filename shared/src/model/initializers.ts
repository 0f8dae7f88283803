/**
 * Keras initialisers, by Keras name, drawn from the run's one init stream (`Rng(taskSeed(seed,
 * 'init', 0, 0))`) in layout order: θ₀ depends only on the spec and its seed. A Keras `seed` in an
 * initialiser's config is ignored (the run seed decides). VarianceScaling's `normal` is Keras 2's name for `truncated_normal`.
 *
 * Accepted spellings: a name (`glorot_uniform`, `he_normal`, …, as Keras' `initializers.get`), or
 * Keras' serialised form `{ class_name: 'GlorotUniform', config: {...} }` (what a `.keras`
 * config.json holds; `module` and `registered_name` are ignored).
 *
 * Formulas (Keras 3, `keras.initializers`): fans of a kernel [..receptive, in, out] are
 * fan_in = in·receptive, fan_out = out·receptive ([n]: both n). VarianceScaling(scale, mode,
 * distribution) divides scale by fan_in, fan_out or their mean, then draws uniform in
 * ±sqrt(3·scale), normal with σ = sqrt(scale) (`untruncated_normal`) or a normal truncated at 2σ
 * with σ = sqrt(scale)/0.8796… (`truncated_normal`, by rejection). glorot_* = VS(1, fan_avg),
 * he_* = VS(2, fan_in), lecun_* = VS(1, fan_in); `*_normal` are truncated. glorot_uniform's limit
 * is computed as sqrt(6 / (fan_in + fan_out)), the expression θ₀ has always used (bit for bit).
 */
import { z } from 'zod';
import type { Rng } from '../seeds.js';

export type FanMode = 'fan_in' | 'fan_out' | 'fan_avg';
export type Distribution = 'uniform' | 'truncated_normal' | 'untruncated_normal' | 'normal';

/** A resolved initialiser (plain data, so it can be compared, printed and exported). */
export type Initializer =
  | { readonly kind: 'zeros' }
  | { readonly kind: 'ones' }
  | { readonly kind: 'constant'; readonly value: number }
  | { readonly kind: 'glorot_uniform' }
  | { readonly kind: 'random_uniform'; readonly minval: number; readonly maxval: number }
  | { readonly kind: 'random_normal'; readonly mean: number; readonly stddev: number }
  | { readonly kind: 'truncated_normal'; readonly mean: number; readonly stddev: number }
  | { readonly kind: 'variance_scaling'; readonly scale: number; readonly mode: FanMode; readonly distribution: Distribution; readonly keras?: string };

const NAMES = [
  'zeros',
  'ones',
  'constant',
  'glorot_uniform',
  'glorot_normal',
  'he_uniform',
  'he_normal',
  'lecun_uniform',
  'lecun_normal',
  'random_uniform',
  'random_normal',
  'truncated_normal',
  'variance_scaling',
  'uniform',
  'normal',
] as const;

/** Keras class name → snake name (`GlorotUniform` → `glorot_uniform`; `Zeros` → `zeros`). */
const CLASS_NAMES: Record<string, string> = {
  Zeros: 'zeros',
  Ones: 'ones',
  Constant: 'constant',
  GlorotUniform: 'glorot_uniform',
  GlorotNormal: 'glorot_normal',
  HeUniform: 'he_uniform',
  HeNormal: 'he_normal',
  LecunUniform: 'lecun_uniform',
  LecunNormal: 'lecun_normal',
  RandomUniform: 'random_uniform',
  RandomNormal: 'random_normal',
  TruncatedNormal: 'truncated_normal',
  VarianceScaling: 'variance_scaling',
};

const InitConfig = z.looseObject({
  value: z.number().finite().optional(),
  minval: z.number().finite().optional(),
  maxval: z.number().finite().optional(),
  mean: z.number().finite().optional(),
  stddev: z.number().positive().finite().optional(),
  scale: z.number().positive().finite().optional(),
  mode: z.enum(['fan_in', 'fan_out', 'fan_avg']).optional(),
  distribution: z.enum(['uniform', 'truncated_normal', 'untruncated_normal', 'normal']).optional(),
  seed: z.union([z.number(), z.null()]).optional(),
});

/** The spec's spelling of an initialiser: a Keras name or `{ class_name, config }`. */
export const InitializerSchema = z.union([
  z.string(),
  z.looseObject({ class_name: z.string(), config: InitConfig.optional() }),
]);
export type InitializerInput = z.input<typeof InitializerSchema>;

const vs = (scale: number, mode: FanMode, distribution: Distribution, keras: string): Initializer => ({ kind: 'variance_scaling', scale, mode, distribution, keras });

/** Resolve a spelling to an Initializer; returns an error message naming what fits otherwise. */
export function resolveInitializer(input: InitializerInput): Initializer | string {
  const name = typeof input === 'string' ? input : (CLASS_NAMES[input.class_name] ?? input.class_name);
  const parsed = InitConfig.safeParse(typeof input === 'string' ? {} : (input.config ?? {}));
  if (!parsed.success) return `initialiser ${name}: bad config (${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`;
  const c = parsed.data;
  switch (name) {
    case 'zeros':
      return { kind: 'zeros' };
    case 'ones':
      return { kind: 'ones' };
    case 'constant':
      return { kind: 'constant', value: c.value ?? 0 };
    case 'glorot_uniform':
      return { kind: 'glorot_uniform' };
    case 'glorot_normal':
      return vs(1, 'fan_avg', 'truncated_normal', name);
    case 'he_uniform':
      return vs(2, 'fan_in', 'uniform', name);
    case 'he_normal':
      return vs(2, 'fan_in', 'truncated_normal', name);
    case 'lecun_uniform':
      return vs(1, 'fan_in', 'uniform', name);
    case 'lecun_normal':
      return vs(1, 'fan_in', 'truncated_normal', name);
    case 'random_uniform':
    case 'uniform':
      return { kind: 'random_uniform', minval: c.minval ?? -0.05, maxval: c.maxval ?? 0.05 };
    case 'random_normal':
    case 'normal':
      return { kind: 'random_normal', mean: c.mean ?? 0, stddev: c.stddev ?? 0.05 };
    case 'truncated_normal':
      return { kind: 'truncated_normal', mean: c.mean ?? 0, stddev: c.stddev ?? 0.05 };
    case 'variance_scaling':
      return vs(c.scale ?? 1, c.mode ?? 'fan_in', c.distribution ?? 'truncated_normal', 'variance_scaling');
    default:
      return `unknown initialiser ${JSON.stringify(name)}: use one of ${NAMES.join(', ')} (or their Keras class names)`;
  }
}

/** Keras' compute_fans. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[shape.length - 2]! * receptive, fanOut: shape[shape.length - 1]! * receptive };
}

/** Keras' truncated normal: redraw until within 2σ. */
function truncated(rng: Rng, mean: number, stddev: number): number {
  for (;;) {
    const z = rng.normal();
    if (Math.abs(z) <= 2) return mean + stddev * z;
  }
}

/** Fill `out` (the tensor's values, row-major) from the initialiser, drawing from `rng`. */
export function drawInitializer(init: Initializer, shape: readonly number[], rng: Rng, out: Float32Array): void {
  const n = out.length;
  switch (init.kind) {
    case 'zeros':
      return;
    case 'ones':
      out.fill(1);
      return;
    case 'constant':
      out.fill(init.value);
      return;
    case 'glorot_uniform': {
      const { fanIn, fanOut } = fans(shape);
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < n; i++) out[i] = rng.uniform(-limit, limit);
      return;
    }
    case 'random_uniform':
      for (let i = 0; i < n; i++) out[i] = rng.uniform(init.minval, init.maxval);
      return;
    case 'random_normal':
      for (let i = 0; i < n; i++) out[i] = init.mean + init.stddev * rng.normal();
      return;
    case 'truncated_normal':
      for (let i = 0; i < n; i++) out[i] = truncated(rng, init.mean, init.stddev);
      return;
    case 'variance_scaling': {
      const { fanIn, fanOut } = fans(shape);
      const denom = init.mode === 'fan_in' ? fanIn : init.mode === 'fan_out' ? fanOut : (fanIn + fanOut) / 2;
      const scale = init.scale / Math.max(1, denom);
      if (init.distribution === 'uniform') {
        const limit = Math.sqrt(3 * scale);
        for (let i = 0; i < n; i++) out[i] = rng.uniform(-limit, limit);
      } else if (init.distribution === 'truncated_normal' || init.distribution === 'normal') {
        const stddev = Math.sqrt(scale) / 0.87962566103423978;
        for (let i = 0; i < n; i++) out[i] = truncated(rng, 0, stddev);
      } else {
        const stddev = Math.sqrt(scale);
        for (let i = 0; i < n; i++) out[i] = stddev * rng.normal();
      }
      return;
    }
  }
}

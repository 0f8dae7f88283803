/**
 * Option spellings layers share, as Keras writes them: `kernel_size: 3` or `[3, 3]`, `padding:
 * same | valid`, initialisers by name. And the Keras config keys that change nothing here when
 * they hold their default (a `.keras` config.json lists them all): accepted at that value, refused
 * otherwise, so converting a Keras layer is renaming `class_name` to `type`.
 */
import { z } from 'zod';
import { InitializerSchema, resolveInitializer, type Initializer } from './initializers.js';

const posInt = z.number().int().min(1).max(65_536);

/** An int or a list of `n` ints (Keras' `kernel_size`, `strides`, `pool_size`), as a list of n. */
export function intTuple(n: 1 | 2) {
  const list = n === 1 ? z.tuple([posInt]) : z.tuple([posInt, posInt]);
  const what = n === 1 ? 'a whole number >= 1 (or a list of one)' : 'a whole number >= 1 or a list of 2 of them';
  return z.union([posInt, list], { error: `expected ${what}` }).transform((v): number[] => (typeof v === 'number' ? new Array<number>(n).fill(v) : [...v]));
}

export const PaddingSchema = z.enum(['valid', 'same']);
export type Padding = z.output<typeof PaddingSchema>;

/** An initialiser option: a Keras name or `{ class_name, config }`; resolved, or an issue naming what fits. */
export function initializer(defaultName: string) {
  return InitializerSchema.default(defaultName).transform((v, ctx): Initializer => {
    const r = resolveInitializer(v);
    if (typeof r === 'string') {
      ctx.addIssue({ code: 'custom', message: r });
      return z.NEVER;
    }
    return r;
  });
}

/** Keras' epsilon and friends. */
export const positive = () => z.number().positive().finite();

function isF32Policy(v: unknown): boolean {
  if (v === null || v === 'float32') return true;
  if (typeof v !== 'object') return false;
  const cfg = (v as { config?: { name?: unknown } }).config;
  return cfg?.name === 'float32';
}

/**
 * Keys every Keras layer config may carry that mean nothing different here at their default:
 * `trainable: true`, `dtype: float32` (or Keras 3's DTypePolicy float32), `data_format:
 * channels_last`, any `*_regularizer` / `*_constraint` / `activity_regularizer` that is null.
 * Returns the config without them, or the key and why it is refused.
 */
export function dropKerasDefaults(raw: Record<string, unknown>): { rest: Record<string, unknown> } | { key: string; message: string } {
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'trainable') {
      if (value !== true) return { key, message: 'every layer is meta-trained: trainable must be true (or left out)' };
    } else if (key === 'dtype') {
      if (!isF32Policy(value)) return { key, message: `got ${JSON.stringify(value)}; Metaloop computes in float32: use float32 (or leave dtype out)` };
    } else if (key === 'data_format') {
      if (value !== 'channels_last' && value !== null) return { key, message: `got ${JSON.stringify(value)}; images are NHWC: only channels_last is supported` };
    } else if (key.endsWith('_regularizer') || key.endsWith('_constraint')) {
      if (value !== null) return { key, message: `${key} is not supported (the meta-objective is the task loss alone): use null or leave it out` };
    } else {
      rest[key] = value;
    }
  }
  return { rest };
}

export { posInt };

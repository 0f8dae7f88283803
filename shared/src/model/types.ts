/**
 * The types every layer file shares. A layer is plain data plus pure functions: its option schema,
 * shape rule and parameters are plain JavaScript (the coordinator validates graphs and builds θ₀
 * with no tfjs); its forward functions receive the tfjs ops namespace as an argument (`Tf`, a type
 * only: shared never imports tfjs at run time; the worker passes its own tfjs-core, the one with
 * the project's second-order gradients registered).
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { Initializer } from './initializers.js';

/** The tfjs-core namespace the forward functions call (the worker's `import * as tf`). */
export type Tf = typeof tfc;
export type Tensor = tfc.Tensor;
export type Tensor3D = tfc.Tensor3D;
export type Tensor4D = tfc.Tensor4D;
export type R4 = tfc.Rank.R4;

/** Shape of one example (no batch axis): images [H, W, C], sequences [L, C], vectors [C]. */
export type Shape = readonly number[];

/** One parameter tensor a layer owns: `<layer name>.<param>` on the wire. */
export interface ParamDecl {
  /** Short name within the layer: `w`, `b`, `scale`, `offset`, `embeddings`. */
  readonly param: string;
  readonly shape: readonly number[];
  readonly init: Initializer;
  /** The Keras variable it is (kernel, bias, gamma, beta, embeddings): for import and export. */
  readonly keras: string;
}

/** What a layer's shape rule and parameters may know besides its inputs. */
export interface LayerContext {
  /** The layer's name (for messages). */
  readonly name: string;
  /** The task's output count (the last Dense's default `units`). */
  readonly outputs: number;
  /** True for the last Dense of the list (the only one that may omit `units`). */
  readonly lastDense: boolean;
}

/** The parameters of one layer, by short name (`w`, `b`, …), as tensors. */
export type LayerParams = Readonly<Record<string, Tensor>>;

/**
 * One layer type. `forward` computes one task: inputs [N, ...shape]. `forwardBatched` computes T
 * tasks at once, each with its own parameters: inputs [T, N, ...shape], parameters [T, ...shape];
 * layers without parameters whose op treats examples independently may say `'fold'` (the engine
 * folds T into N: [T·N, ...shape], calls `forward`, unfolds).
 * Both must be built from ops whose gradients are themselves differentiable (with the worker's
 * registered gradients), so second-order MAML through them is exact.
 */
export interface LayerDef<C> {
  /** The Keras 3 class name (`type:` in the run spec). */
  readonly type: string;
  /** The layer's options in Keras' own snake_case spelling (no `type`, `name`, `inputs`). */
  readonly schema: z.ZodType<C>;
  /** 'many' for joins (Add, Concatenate: two or more inputs); otherwise exactly one. */
  readonly inputs?: 'one' | 'many';
  /** Output shape from the input shapes, or throw a ModelError (its `option` set) saying what it got and what fits. */
  shape(config: C, inputs: readonly Shape[], ctx: LayerContext): Shape;
  /** Parameters in wire order (none when absent). */
  params?(config: C, inputs: readonly Shape[], ctx: LayerContext): ParamDecl[];
  forward(tf: Tf, config: C, inputs: readonly Tensor[], params: LayerParams): Tensor;
  forwardBatched: 'fold' | ((tf: Tf, config: C, inputs: readonly Tensor[], params: LayerParams) => Tensor);
}

/** A layer type with its config type erased, as the registry holds it. */
export type AnyLayerDef = LayerDef<Record<string, unknown>>;

/** Register-time helper: keeps each file's config type checked, erases it for the registry. */
export function defineLayer<C>(def: LayerDef<C>): AnyLayerDef {
  return def as unknown as AnyLayerDef;
}

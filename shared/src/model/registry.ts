/**
 * THE list of layer types a model graph may use (`type:` in the run spec, Keras 3 class names).
 * Each entry is one file in ./layers owning everything about its type: option schema, shape rule,
 * parameters and their initialisers, forward, task-batched forward. Adding a layer is adding its
 * file and one line here (and its finite-difference test beside the worker's others).
 */
import { Activation } from './layers/activation.js';
import { Add } from './layers/add.js';
import { AveragePooling2D } from './layers/average-pooling-2d.js';
import { BatchNormalization } from './layers/batch-normalization.js';
import { Concatenate } from './layers/concatenate.js';
import { Conv1D } from './layers/conv1d.js';
import { Conv2D } from './layers/conv2d.js';
import { Dense } from './layers/dense.js';
import { Dropout } from './layers/dropout.js';
import { ELU } from './layers/elu.js';
import { Embedding } from './layers/embedding.js';
import { Flatten } from './layers/flatten.js';
import { GlobalAveragePooling1D } from './layers/global-average-pooling-1d.js';
import { GlobalAveragePooling2D } from './layers/global-average-pooling-2d.js';
import { GlobalMaxPooling1D } from './layers/global-max-pooling-1d.js';
import { GlobalMaxPooling2D } from './layers/global-max-pooling-2d.js';
import { LayerNormalization } from './layers/layer-normalization.js';
import { LeakyReLU } from './layers/leaky-relu.js';
import { MaxPooling1D } from './layers/max-pooling-1d.js';
import { MaxPooling2D } from './layers/max-pooling-2d.js';
import { ReLU } from './layers/relu.js';
import { Reshape } from './layers/reshape.js';
import { ZeroPadding2D } from './layers/zero-padding-2d.js';
import type { AnyLayerDef } from './types.js';

export const LAYERS: readonly AnyLayerDef[] = [
  // Parameterised layers (their parameters are `<name>.<param>` on the wire).
  Dense,
  Conv2D,
  Conv1D,
  BatchNormalization,
  LayerNormalization,
  Embedding,
  // Activations (elementwise).
  Activation,
  ReLU,
  LeakyReLU,
  ELU,
  // Pooling.
  MaxPooling2D,
  AveragePooling2D,
  GlobalAveragePooling2D,
  GlobalMaxPooling2D,
  MaxPooling1D,
  GlobalAveragePooling1D,
  GlobalMaxPooling1D,
  // Shape.
  Flatten,
  Reshape,
  ZeroPadding2D,
  // Joins.
  Add,
  Concatenate,
  // Accepted as the identity (see ./layers/dropout.ts).
  Dropout,
];

const BY_TYPE = new Map(LAYERS.map((l) => [l.type, l]));

export function layerDef(type: string): AnyLayerDef | undefined {
  return BY_TYPE.get(type);
}

export const LAYER_TYPES: readonly string[] = LAYERS.map((l) => l.type);

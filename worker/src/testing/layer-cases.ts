/**
 * The layer configurations the numerical tests run (model/layers.test.ts: finite differences;
 * model/batched.test.ts: task-batched against per-task): small shapes, odd sizes, strides and
 * paddings, every registered type.
 */
import type { Shape } from '@metaloop/shared';

export interface LayerCase {
  readonly type: string;
  readonly options?: Record<string, unknown>;
  /** Per-example input shapes (two or more for joins). */
  readonly inputs: readonly Shape[];
  /** Piecewise linear: smaller stencils. */
  readonly kinks?: boolean;
  /** Embedding: the input holds token ids below this (not differentiated). */
  readonly vocab?: number;
  readonly label?: string;
}

/** Examples per task. */
export const N = 3;
const img: Shape = [4, 4, 2];
const seq: Shape = [5, 2];
/** One or more cases per registered layer type (model/layers.test.ts checks that every type has one). */
export const LAYER_CASES: LayerCase[] = [
  { type: 'Dense', options: { units: 3, activation: 'tanh' }, inputs: [[4]] },
  { type: 'Dense', options: { units: 2, activation: 'gelu', use_bias: false }, inputs: [[3, 4]], label: 'on sequences, gelu, no bias' },
  { type: 'Conv2D', options: { filters: 2, kernel_size: 3, padding: 'same', activation: 'silu' }, inputs: [img] },
  { type: 'Conv2D', options: { filters: 2, kernel_size: [2, 3], strides: 2, padding: 'valid' }, inputs: [[5, 6, 2]], label: '2×3 stride 2 valid' },
  { type: 'Conv2D', options: { filters: 3, kernel_size: 1, strides: 2, padding: 'same', use_bias: false }, inputs: [[5, 5, 2]], label: '1×1 stride 2 same' },
  { type: 'Conv2D', options: { filters: 2, kernel_size: 3, strides: 2, padding: 'same' }, inputs: [[5, 4, 2]], label: '3×3 stride 2 same, odd side' },
  { type: 'Conv2D', options: { filters: 1, kernel_size: 2, strides: [2, 3], padding: 'valid' }, inputs: [[7, 8, 1]], label: '2×2 strides 2×3 valid, rows left over' },
  { type: 'Conv1D', options: { filters: 2, kernel_size: 3, padding: 'causal' }, inputs: [seq] },
  { type: 'Conv1D', options: { filters: 2, kernel_size: 2, strides: 2, padding: 'same', activation: 'elu' }, inputs: [seq], label: 'stride 2 same, elu' },
  { type: 'BatchNormalization', inputs: [img] },
  { type: 'BatchNormalization', options: { center: false, epsilon: 1e-5 }, inputs: [[5]], label: 'on vectors, no offset' },
  { type: 'LayerNormalization', inputs: [seq] },
  { type: 'Embedding', options: { input_dim: 7, output_dim: 3 }, inputs: [[4]], vocab: 7 },
  ...['linear', 'relu', 'leaky_relu', 'elu', 'tanh', 'sigmoid', 'gelu', 'silu'].map((a): LayerCase => ({ type: 'Activation', options: { activation: a }, inputs: [[6]], kinks: a.includes('relu'), label: a })),
  { type: 'ReLU', options: { max_value: 0.5 }, inputs: [[6]], kinks: true, label: 'max_value 0.5' },
  { type: 'LeakyReLU', inputs: [[6]], kinks: true },
  { type: 'ELU', options: { alpha: 0.7 }, inputs: [[6]], label: 'alpha 0.7' },
  { type: 'MaxPooling2D', inputs: [img], kinks: true },
  { type: 'MaxPooling2D', options: { pool_size: 3, strides: 2, padding: 'same' }, inputs: [[5, 5, 1]], kinks: true, label: '3×3 stride 2 same' },
  { type: 'AveragePooling2D', inputs: [img] },
  { type: 'AveragePooling2D', options: { pool_size: 3, strides: 2, padding: 'same' }, inputs: [[5, 5, 1]], label: '3×3 stride 2 same' },
  { type: 'GlobalAveragePooling2D', inputs: [img] },
  { type: 'GlobalMaxPooling2D', inputs: [img], kinks: true },
  { type: 'MaxPooling1D', inputs: [seq], kinks: true },
  { type: 'GlobalAveragePooling1D', inputs: [seq] },
  { type: 'GlobalMaxPooling1D', inputs: [seq], kinks: true },
  { type: 'Flatten', inputs: [[2, 3, 2]] },
  { type: 'Reshape', options: { target_shape: [-1, 2] }, inputs: [[2, 3, 2]] },
  { type: 'ZeroPadding2D', options: { padding: [[1, 0], [2, 1]] }, inputs: [[2, 3, 2]] },
  { type: 'Add', inputs: [[3, 2], [3, 2], [3, 2]] },
  { type: 'Concatenate', inputs: [[3, 2], [3, 1]] },
  { type: 'Concatenate', options: { axis: 1 }, inputs: [[2, 2], [1, 2]], label: 'axis 1' },
  { type: 'Dropout', options: { rate: 0.5 }, inputs: [[4]] },
];


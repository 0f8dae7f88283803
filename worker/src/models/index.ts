/**
 * Model registry. A new model kind plugs in by adding one entry (the key is `spec.model.kind`).
 */
import type { RunSpec } from '@metaloop/shared';
import { UnsupportedError } from '../errors.js';
import { createConv4 } from './conv4.js';
import { createMlp } from './mlp.js';
import type { Model, ModelFactory } from './types.js';
export type { Model, ModelFactory, NamedTensors } from './types.js';

export const MODELS: Record<string, ModelFactory> = {
  mlp: createMlp,
  conv4: createConv4,
};

export function createModel(spec: RunSpec): Model {
  const kind: string = spec.model.kind;
  const factory = MODELS[kind];
  if (!factory) throw new UnsupportedError('model', kind, Object.keys(MODELS));
  return factory(spec);
}

export { createConv4, createMlp };

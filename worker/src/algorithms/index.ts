/**
 * Algorithm registry. A new algorithm plugs in by adding one entry (the key is `spec.algorithm.kind`).
 */
import type { RunSpec } from '@metaloop/shared';
import { UnsupportedError } from '../errors.js';
import { createFomaml, createMaml } from './maml.js';
import { createAnil, createMamlPlusPlus, createMetaSgd, createReptile } from './variants.js';
import type { Algorithm, AlgorithmFactory } from './types.js';

export const ALGORITHMS: Record<string, AlgorithmFactory> = {
  maml: (spec) => (spec.algorithm.multiStepLoss || spec.algorithm.learnedLayerLr ? createMamlPlusPlus(spec) : createMaml(spec)),
  fomaml: createFomaml,
  reptile: createReptile,
  metasgd: createMetaSgd,
  anil: createAnil,
};

export function createAlgorithm(spec: RunSpec): Algorithm {
  const kind: string = spec.algorithm.kind;
  const factory = ALGORITHMS[kind];
  if (!factory) throw new UnsupportedError('algorithm', kind, Object.keys(ALGORITHMS));
  return factory(spec);
}

export { adapt, createFomaml, createMaml, innerStep, sgdEvaluate, taskLoss } from './maml.js';
export { adaptWithRule, createAnil, createMamlPlusPlus, createMetaSgd, createReptile, innerRule, type InnerRule } from './variants.js';
export { LOSSES, lossOf, type Loss, type LossFn, type PerTaskLossFn } from './loss.js';
export type { Algorithm, AlgorithmFactory, InnerLoop, TaskEvaluation, TaskMetaGradient, TaskTensors } from './types.js';

/**
 * Which graphs take the fused host path, and that it computes what the graph path (tfjs) computes:
 * the mlp preset and `kind: layers` graphs shaped like one (Dense + relu | tanh, a leading Flatten,
 * Dropout), in float64 against tfjs' float32, within float32 rounding.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { initParams, modelGraph, Rng, validateSpec, type LayerSpec, type RunSpec } from '@metaloop/shared';
import { compileRun, computeShard, type EvalShardResult, type TrainShardResult } from '../engine.js';
import { relativeError } from '../kernels/reference.js';
import { useTestBackend } from '../testing/backend.js';
import { mlpShapeOf } from './maml.js';

const glyphs = (model: Record<string, unknown>, algorithm = 'maml'): RunSpec =>
  validateSpec({
    name: 'fused-graph',
    seed: 4,
    task: { family: 'synthetic-glyphs', ways: 3, shots: 2, queries: 2, imageSize: 8 },
    model,
    algorithm: { kind: algorithm, innerSteps: 2, innerLr: 0.3 },
  });
const layers = (list: LayerSpec[], extra: Record<string, unknown> = {}) => glyphs({ kind: 'layers', layers: list, ...extra });

describe('the fused host path for MLP-shaped graphs', () => {
  before(async () => {
    await useTestBackend();
  });

  test('the mlp preset and the same network declared layer by layer are MLP-shaped; other graphs are not (and say why)', () => {
    const want = { sizes: [64, 6, 5, 3], activation: 'tanh' };
    assert.deepEqual(mlpShapeOf(modelGraph(glyphs({ kind: 'mlp', hidden: [6, 5], activation: 'tanh' }))), want);
    const spelled = layers([
      { type: 'Flatten' },
      { type: 'Dense', units: 6 },
      { type: 'Activation', activation: 'tanh' },
      { type: 'Dropout', rate: 0.1 },
      { type: 'Dense', units: 5, activation: 'tanh' },
      { type: 'Dense' },
    ]);
    assert.deepEqual(mlpShapeOf(modelGraph(spelled)), want);
    assert.deepEqual(mlpShapeOf(modelGraph(layers([{ type: 'Flatten' }, { type: 'Dense', units: 4 }, { type: 'ReLU' }, { type: 'Dense' }]))), { sizes: [64, 4, 3], activation: 'relu' });
    const not = (list: LayerSpec[], why: RegExp) => {
      const r = mlpShapeOf(modelGraph(layers(list)));
      assert.equal(typeof r, 'string', JSON.stringify(list));
      assert.match(r as string, why);
    };
    not([{ type: 'Flatten' }, { type: 'Dense', units: 4, activation: 'gelu' }, { type: 'Dense' }], /relu or all tanh/);
    not([{ type: 'Flatten' }, { type: 'Dense', units: 4, activation: 'relu' }, { type: 'Dense', units: 4, activation: 'tanh' }, { type: 'Dense' }], /all relu or all tanh/);
    not([{ type: 'Flatten' }, { type: 'Dense', units: 4, use_bias: false }, { type: 'Dense' }], /bias/);
    not([{ type: 'Flatten' }, { type: 'Dense', units: 4 }, { type: 'Dense' }], /activations linear/);
    not([{ type: 'Flatten' }, { type: 'Dense', activation: 'tanh' }], /linear output/);
    not([{ type: 'Flatten' }, { type: 'Dense', units: 4 }, { type: 'LeakyReLU' }, { type: 'Dense' }], /LeakyReLU/);
    not([{ type: 'Conv2D', filters: 2, kernel_size: 3 }, { type: 'Flatten' }, { type: 'Dense' }], /Conv2D/);
    not([{ type: 'Flatten' }, { type: 'Dense', name: 'a', units: 4, activation: 'relu' }, { type: 'Dense', name: 'b', units: 4, activation: 'relu', inputs: ['flatten'] }, { type: 'Add', inputs: ['a', 'b'] }, { type: 'Dense' }], /not sequential/);
    assert.equal(typeof compileRun(layers([{ type: 'Flatten' }, { type: 'Dense', units: 4, activation: 'relu' }, { type: 'Dense' }], { fused: false })).fused, 'string');
  });

  const cases: [string, RunSpec][] = [
    ['mlp preset, maml', glyphs({ kind: 'mlp', hidden: [6], activation: 'tanh' })],
    ['layers graph, maml', layers([{ type: 'Flatten' }, { type: 'Dense', units: 6 }, { type: 'Activation', activation: 'relu' }, { type: 'Dense', units: 5, activation: 'relu' }, { type: 'Dense' }])],
    ['layers graph, metasgd', glyphs({ kind: 'layers', layers: [{ type: 'Dense', units: 5, activation: 'tanh' }, { type: 'Dense' }], input: [64] }, 'metasgd')],
  ];
  for (const [label, s] of cases) {
    test(`${label}: fused rows equal the graph path's (train and eval, within float32 rounding)`, async () => {
      assert.notEqual(typeof compileRun(s).fused, 'string', `${label} takes the fused path`);
      const rng = new Rng(2);
      const params = initParams(s).data.map((v) => v + rng.uniform(-0.05, 0.05));
      const work = { kind: 'train' as const, taskSeeds: [3, 4, 5] };
      const fused = (await computeShard(s, params, work)) as TrainShardResult;
      const graph = (await computeShard(s, params, work, { fused: false })) as TrainShardResult;
      const e = relativeError(fused.grad, graph.grad);
      assert.ok(e < 1e-5, `meta-gradient rel err ${e}`);
      assert.ok(Math.abs(fused.postLossSum - graph.postLossSum) < 1e-5 * Math.abs(graph.postLossSum));
      const ev = { kind: 'eval' as const, taskSeeds: [6, 7], evalInnerSteps: 2 };
      const fe = (await computeShard(s, params, ev)) as EvalShardResult;
      const ge = (await computeShard(s, params, ev, { fused: false })) as EvalShardResult;
      assert.ok(relativeError(fe.evalLossSums, ge.evalLossSums) < 1e-5);
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KerasModelError } from '../errors.js';
import { fromKeras, kerasWeights, type WeightedNode } from './from-keras.js';
import type { KerasTopology } from './topology.js';

const F = 'm.keras';
const SUPPORTED = ['Add', 'BatchNormalization', 'Conv2D', 'Dense', 'ReLU'];

const topology: KerasTopology = {
  modelClass: 'Functional',
  modelName: 'm',
  input: { name: 'image', shape: [4, 4, 1] },
  output: 'head',
  layers: [
    { className: 'Conv2D', name: 'c0', config: { name: 'c0', filters: 2, kernel_size: [3, 3], padding: 'same', trainable: true }, inbound: ['image'], h5Path: 'layers/conv2d' },
    { className: 'BatchNormalization', name: 'bn', config: { name: 'bn', momentum: 0.99 }, inbound: ['c0'], h5Path: 'layers/batch_normalization' },
    { className: 'Conv2D', name: 'skip', config: { name: 'skip', filters: 2, kernel_size: 1 }, inbound: ['image'], h5Path: 'layers/conv2d_1' },
    { className: 'Add', name: 'join', config: { name: 'join' }, inbound: ['bn', 'skip'], h5Path: 'layers/add' },
    { className: 'Dense', name: 'head', config: { name: 'head', units: 3 }, inbound: ['join'], h5Path: 'layers/dense' },
  ],
};

const nodes: WeightedNode[] = [
  { name: 'c0', type: 'Conv2D', params: [{ name: 'c0.w', shape: [3, 3, 1, 2], keras: 'kernel' }, { name: 'c0.b', shape: [2], keras: 'bias' }] },
  { name: 'bn', type: 'BatchNormalization', params: [{ name: 'bn.scale', shape: [2], keras: 'gamma' }, { name: 'bn.offset', shape: [2], keras: 'beta' }] },
  { name: 'join', type: 'Add', params: [] },
];

const v = (shape: number[], fill: number) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) });

describe('fromKeras', () => {
  it('class_name → type, config keys as they are (name out), inputs only where a layer does not read the one before, the model input as `input`', () => {
    const doc = fromKeras(F, topology, SUPPORTED);
    assert.deepEqual(doc.input, [4, 4, 1]);
    assert.deepEqual(doc.layers, [
      { type: 'Conv2D', name: 'c0', filters: 2, kernel_size: [3, 3], padding: 'same', trainable: true },
      { type: 'BatchNormalization', name: 'bn', momentum: 0.99 },
      { type: 'Conv2D', name: 'skip', inputs: ['input'], filters: 2, kernel_size: 1 },
      { type: 'Add', name: 'join', inputs: ['bn', 'skip'] },
      { type: 'Dense', name: 'head', units: 3 },
    ]);
  });

  it('refuses an unsupported class naming the layer, its class and the supported list', () => {
    const t = { ...topology, layers: [...topology.layers.slice(0, 4), { className: 'PReLU', name: 'act', config: {}, inbound: ['join'], h5Path: 'layers/p_re_lu' }] };
    assert.throws(
      () => fromKeras(F, t, SUPPORTED),
      (e: unknown) =>
        e instanceof KerasModelError &&
        e.layer === 'act' &&
        e.className === 'PReLU' &&
        e.message.includes('m.keras: layer "act" (PReLU): Keras class PReLU is not supported; Metaloop reads Add, BatchNormalization, Conv2D, Dense, ReLU'),
    );
    const named = { ...topology, layers: [{ ...topology.layers[0]!, name: 'input' }] };
    assert.throws(() => fromKeras(F, named, SUPPORTED), /layer "input" \(Conv2D\): the name "input" is reserved/);
  });
});

describe('kerasWeights', () => {
  const fileVars: Record<string, ReturnType<typeof v>[]> = {
    c0: [v([3, 3, 1, 2], 0.5), v([2], 0.25)],
    bn: [v([2], 2), v([2], -1), v([2], 7), v([2], 9)],
  };
  const read = (name: string) => fileVars[name];

  it('takes each parameter from its Keras variable, in wire order, and says that the moving statistics are unused', () => {
    const w = kerasWeights(F, topology, nodes, (l) => read(l.name));
    assert.deepEqual(w.tensors.map((t) => [t.name, t.shape, t.data[0]]), [
      ['c0.w', [3, 3, 1, 2], 0.5],
      ['c0.b', [2], 0.25],
      ['bn.scale', [2], 2],
      ['bn.offset', [2], -1],
    ]);
    assert.deepEqual(w.notes, ["bn: moving_mean and moving_variance not used (Metaloop's BatchNormalization uses the statistics of each batch, as MAML does)"]);
  });

  it('asks for the variables by Keras name, BN moving statistics after the parameters', () => {
    const asked: string[][] = [];
    kerasWeights(F, topology, nodes, (l, k) => (asked.push([l.name, ...k]), read(l.name)));
    assert.deepEqual(asked, [['c0', 'kernel', 'bias'], ['bn', 'gamma', 'beta', 'moving_mean', 'moving_variance']]);
  });

  it('refuses missing weights, a wrong count and a wrong shape, naming the layer and class', () => {
    assert.throws(() => kerasWeights(F, topology, nodes, () => undefined), /layer "c0" \(Conv2D\): the file has no weights for it \(expected kernel, bias\)/);
    assert.throws(() => kerasWeights(F, topology, nodes, (l) => read(l.name)?.slice(0, 1)), /layer "c0" \(Conv2D\): the file has 1 variable\(s\) for it, Metaloop's Conv2D with this config has 2 \(kernel, bias\)/);
    const wrong = (l: { name: string }) => (l.name === 'c0' ? [v([3, 3, 3, 2], 0), v([2], 0)] : read(l.name));
    assert.throws(() => kerasWeights(F, topology, nodes, wrong), /layer "c0" \(Conv2D\): its kernel has shape \[3, 3, 3, 2\] in the file, the model \(with this task's input\) needs \[3, 3, 1, 2\]/);
  });
});

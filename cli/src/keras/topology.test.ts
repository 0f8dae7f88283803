import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KerasModelError } from '../errors.js';
import { h5Paths, parseTopology, snakeCase } from './topology.js';

const F = 'm.keras';

/** A Keras 3 functional layer entry as config.json writes it. */
function k3(className: string, name: string, config: Record<string, unknown>, from: string[] | null, extra: Record<string, unknown> = {}) {
  const tensor = (n: string) => ({ class_name: '__keras_tensor__', config: { shape: [null, 4], dtype: 'float32', keras_history: [n, 0, 0] } });
  return {
    module: 'keras.layers',
    class_name: className,
    config: { name, ...config },
    registered_name: null,
    name,
    inbound_nodes: from === null ? [] : [{ args: from.length === 1 ? [tensor(from[0]!)] : [from.map(tensor)], kwargs: {} }],
    ...extra,
  };
}

const input = (name = 'input_layer', shape = [null, 4]) => k3('InputLayer', name, { batch_shape: shape, dtype: 'float32' }, null);

function functional(layers: unknown[], inputs: unknown = ['input_layer', 0, 0], outputs: unknown = ['out', 0, 0]) {
  return { module: 'keras.src.models.functional', class_name: 'Functional', config: { name: 'f', trainable: true, layers, input_layers: inputs, output_layers: outputs } };
}

function refused(fn: () => unknown, pattern: RegExp, layer?: string, className?: string) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof KerasModelError, String(e));
    assert.match(e.message, pattern);
    if (layer !== undefined) assert.equal(e.layer, layer);
    if (className !== undefined) assert.equal(e.className, className);
    return true;
  });
}

describe('Keras topology', () => {
  it('snake_case and h5 group paths as Keras names them', () => {
    assert.equal(snakeCase('Conv2D'), 'conv2d');
    assert.equal(snakeCase('BatchNormalization'), 'batch_normalization');
    assert.equal(snakeCase('ReLU'), 're_lu');
    assert.equal(snakeCase('GlobalAveragePooling2D'), 'global_average_pooling2d');
    assert.deepEqual(h5Paths(['InputLayer', 'Conv2D', 'Conv2D', 'Dense', 'Conv2D']), ['layers/input_layer', 'layers/conv2d', 'layers/conv2d_1', 'layers/dense', 'layers/conv2d_2']);
  });

  it('a functional model: inbound layers (joins too), input shape, h5 paths over the whole list', () => {
    const t = parseTopology(
      F,
      functional([
        input(),
        k3('Dense', 'a', { units: 4 }, ['input_layer']),
        k3('Dense', 'b', { units: 4 }, ['input_layer']),
        k3('Add', 'sum', {}, ['a', 'b']),
        k3('Dense', 'out', { units: 2 }, ['sum']),
      ]),
    );
    assert.equal(t.modelClass, 'Functional');
    assert.deepEqual(t.input, { name: 'input_layer', shape: [4] });
    assert.deepEqual(t.layers.map((l) => [l.name, l.inbound, l.h5Path]), [
      ['a', ['input_layer'], 'layers/dense'],
      ['b', ['input_layer'], 'layers/dense_1'],
      ['sum', ['a', 'b'], 'layers/add'],
      ['out', ['sum'], 'layers/dense_2'],
    ]);
  });

  it("Keras 2's (TF.js') inbound nodes and a sequential model (no InputLayer in its h5 paths)", () => {
    const t = parseTopology(F, {
      class_name: 'Model',
      config: {
        name: 'm',
        layers: [
          { name: 'in', class_name: 'InputLayer', config: { batch_input_shape: [null, 3, 3, 1], name: 'in' }, inbound_nodes: [] },
          { name: 'out', class_name: 'Flatten', config: { name: 'out' }, inbound_nodes: [[['in', 0, 0, {}]]] },
        ],
        input_layers: [['in', 0, 0]],
        output_layers: [['out', 0, 0]],
      },
    });
    assert.deepEqual(t.layers[0]!.inbound, ['in']);
    assert.deepEqual(t.input.shape, [3, 3, 1]);
    const s = parseTopology(F, { class_name: 'Sequential', config: { name: 's', layers: [input(), k3('Dense', 'd', { units: 2 }, null), k3('Dense', 'd2', { units: 2 }, null)] } });
    assert.deepEqual(s.layers.map((l) => [l.inbound[0], l.h5Path]), [['input_layer', 'layers/dense'], ['d', 'layers/dense_1']]);
    // Keras 2 / TF.js: the first layer carries batch_input_shape.
    const s2 = parseTopology(F, { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 7] } }] } });
    assert.deepEqual(s2.input.shape, [7]);
  });

  it('refuses what is not one flat graph with one input and one output, naming the layer and class', () => {
    refused(() => parseTopology(F, { class_name: 'MyModel', config: { name: 'x' } }), /Metaloop reads Sequential and Functional models/);
    refused(() => parseTopology(F, [1, 2]), /not a Keras model config/);
    refused(() => parseTopology(F, functional([input(), { ...k3('Functional', 'inner', {}, ['input_layer']) }])), /a nested model/, 'inner', 'Functional');
    refused(() => parseTopology(F, functional([input('a'), input('b'), k3('Add', 'out', {}, ['a', 'b'])], [['a', 0, 0], ['b', 0, 0]])), /2 inputs \(a, b\)/);
    refused(() => parseTopology(F, functional([input(), k3('Dense', 'out', {}, ['input_layer']), k3('Dense', 'o2', {}, ['out'])], ['input_layer', 0, 0], [['out', 0, 0], ['o2', 0, 0]])), /2 outputs/);
    const shared = k3('Dense', 'out', {}, ['input_layer']);
    shared.inbound_nodes.push(shared.inbound_nodes[0]!);
    refused(() => parseTopology(F, functional([input(), shared])), /called 2 times \(a shared layer\)/, 'out', 'Dense');
    const second = k3('Dense', 'out', {}, ['input_layer']);
    ((second.inbound_nodes[0]!.args[0] as { config: { keras_history: unknown[] } }).config.keras_history = ['input_layer', 1, 0]);
    refused(() => parseTopology(F, functional([input(), second])), /reads output 0 of call 1 of input_layer/, 'out');
    refused(() => parseTopology(F, functional([input(), k3('Dense', 'dead', {}, ['input_layer']), k3('Dense', 'out', {}, ['input_layer'])])), /does not depend on it/, 'dead', 'Dense');
    refused(() => parseTopology(F, functional([input(), k3('Dense', 'out', {}, ['later']), k3('Dense', 'later', {}, ['input_layer'])])), /reads later, which is not a layer listed before it/, 'out');
    refused(() => parseTopology(F, functional([input(), k3('Dense', 'out', {}, ['input_layer']), k3('Dense', 'out', {}, ['input_layer'])])), /two layers have this name/, 'out');
    refused(() => parseTopology(F, functional([input('input_layer', [null, null, 4]), k3('Dense', 'out', {}, ['input_layer'])])), /every dimension but the batch must be a fixed whole number/, 'input_layer', 'InputLayer');
    const kw = k3('Dense', 'out', {}, ['input_layer']);
    (kw.inbound_nodes[0] as { kwargs: Record<string, unknown> }).kwargs = { training: true };
    refused(() => parseTopology(F, functional([input(), kw])), /call argument training=true/, 'out');
    refused(() => parseTopology(F, { class_name: 'Sequential', config: { layers: [k3('Dense', 'd', {}, null)] } }), /no input shape/);
  });
});

/**
 * Layer graphs in the run spec: names, inputs, shape inference, the parameter layout, the presets'
 * graphs, and every kind of bad graph refused by validateSpec with the layer, what it got and what
 * fits, at the field's path.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpecError } from '../errors.js';
import { headParamNames, modelGraph, modelLayout } from '../layout.js';
import { validateSpec } from '../spec.js';
import { buildGraph, kerasName, type LayerSpec } from './graph.js';
import { LAYER_TYPES } from './registry.js';

const glyphs = (model: Record<string, unknown>, task: Record<string, unknown> = {}, algorithm: Record<string, unknown> = { kind: 'maml' }) =>
  validateSpec({ name: 'g', task: { family: 'synthetic-glyphs', ways: 5, imageSize: 16, ...task }, model, algorithm });
const layers = (list: LayerSpec[], extra: Record<string, unknown> = {}, task: Record<string, unknown> = {}) => glyphs({ kind: 'layers', layers: list, ...extra }, task);

/** Asserts validateSpec refuses with an issue at `path` whose message matches every pattern. */
function refused(f: () => unknown, path: string, ...patterns: RegExp[]): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof SpecError, String(err));
    const hit = err.issues.find((i) => i.path === path);
    assert.ok(hit, `no issue at ${path}: ${err.message}`);
    for (const p of patterns) assert.match(hit.message, p);
    return true;
  });
}

const residual: LayerSpec[] = [
  { type: 'Conv2D', name: 'conv0', filters: 4, kernel_size: 3, padding: 'same' },
  { type: 'BatchNormalization', name: 'bn0' },
  { type: 'Activation', activation: 'relu' },
  { type: 'MaxPooling2D', pool_size: 2, name: 'mp' },
  { type: 'Conv2D', name: 'skip', filters: 4, kernel_size: 1, strides: 2, inputs: ['bn0'] },
  { type: 'Add', name: 'join', inputs: ['skip', 'mp'] },
  { type: 'Flatten' },
  { type: 'Dense', name: 'head' },
];

describe('layer graphs', () => {
  test('Keras default names', () => {
    assert.equal(kerasName('Conv2D'), 'conv2d');
    assert.equal(kerasName('BatchNormalization'), 'batch_normalization');
    assert.equal(kerasName('ReLU'), 're_lu');
    assert.equal(kerasName('LeakyReLU'), 'leaky_re_lu');
    assert.equal(kerasName('GlobalAveragePooling2D'), 'global_average_pooling2d');
    assert.equal(kerasName('MaxPooling1D'), 'max_pooling1d');
    const g = modelGraph(layers([{ type: 'Conv2D', filters: 2, kernel_size: 3 }, { type: 'Conv2D', filters: 3, kernel_size: 3 }, { type: 'ReLU' }, { type: 'Flatten' }, { type: 'Dense', name: 'dense_1', units: 8 }, { type: 'Dense' }]));
    // The explicit dense_1 is taken, so the unnamed Dense becomes dense (first) — and no clash.
    assert.deepEqual(g.nodes.map((n) => n.name), ['conv2d', 'conv2d_1', 're_lu', 'flatten', 'dense_1', 'dense']);
  });

  test('a sequential graph: shapes, layout in layer order, the last Dense defaults to the task outputs', () => {
    const spec = layers([
      { type: 'Conv2D', name: 'c', filters: 3, kernel_size: [3, 5], strides: [1, 2], padding: 'valid' },
      { type: 'BatchNormalization', name: 'bn', center: false },
      { type: 'Flatten' },
      { type: 'Dense', name: 'hidden', units: 7, activation: 'gelu', use_bias: false },
      { type: 'Dropout', rate: 0.5 },
      { type: 'Dense', name: 'out' },
    ]);
    const g = modelGraph(spec);
    assert.deepEqual(g.input, [16, 16, 1]);
    assert.deepEqual(g.nodes.map((n) => n.shape), [[14, 6, 3], [14, 6, 3], [252], [7], [7], [5]]);
    assert.deepEqual(modelLayout(spec), [
      { name: 'c.w', shape: [3, 5, 1, 3] },
      { name: 'c.b', shape: [3] },
      { name: 'bn.scale', shape: [3] },
      { name: 'hidden.w', shape: [252, 7] },
      { name: 'out.w', shape: [7, 5] },
      { name: 'out.b', shape: [5] },
    ]);
    assert.deepEqual(headParamNames(spec), ['out.w', 'out.b']);
  });

  test('branches and joins (the contract example): same padding, a strided 1×1 shortcut, Add', () => {
    const g = modelGraph(layers(residual));
    const by = Object.fromEntries(g.nodes.map((n) => [n.name, n]));
    assert.deepEqual(by.skip!.inputs, ['bn0']);
    assert.deepEqual(by.skip!.shape, [8, 8, 4]);
    assert.deepEqual(by.join!.inputShapes, [[8, 8, 4], [8, 8, 4]]);
    assert.deepEqual(by.head!.params.map((p) => [p.name, p.shape]), [['head.w', [256, 5]], ['head.b', [5]]]);
    assert.equal(g.headLayer, 'head');
  });

  test('Concatenate, sequences (Embedding, Conv1D, pools), LayerNormalization, declared input shape', () => {
    const spec = layers(
      [
        { type: 'Embedding', input_dim: 10, output_dim: 4 },
        { type: 'Conv1D', name: 'a', filters: 3, kernel_size: 3, padding: 'causal' },
        { type: 'Conv1D', name: 'b', filters: 2, kernel_size: 2, strides: 2, inputs: 'embedding' },
        { type: 'MaxPooling1D', pool_size: 2, inputs: ['a'], name: 'pa' },
        { type: 'Concatenate', inputs: ['pa', 'b'] },
        { type: 'LayerNormalization' },
        { type: 'GlobalMaxPooling1D' },
        { type: 'Dense' },
      ],
      { input: [256] },
    );
    const g = modelGraph(spec);
    assert.deepEqual(g.nodes.map((n) => n.shape), [[256, 4], [256, 3], [128, 2], [128, 3], [128, 5], [128, 5], [5], [5]]);
    assert.deepEqual(modelLayout(spec).map((t) => t.name), ['embedding.embeddings', 'a.w', 'a.b', 'b.w', 'b.b', 'layer_normalization.scale', 'layer_normalization.offset', 'dense.w', 'dense.b']);
  });

  test('Keras config keys at their defaults are accepted; at other values refused', () => {
    const ok = layers([{ type: 'Flatten', data_format: 'channels_last', trainable: true, dtype: { class_name: 'DTypePolicy', config: { name: 'float32' } } }, { type: 'Dense', kernel_regularizer: null, bias_constraint: null }]);
    assert.deepEqual(modelLayout(ok).map((t) => t.shape), [[256, 5], [5]]);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', kernel_regularizer: { class_name: 'L2' } }]), 'model.layers.1.kernel_regularizer', /not supported/);
    refused(() => layers([{ type: 'Flatten', data_format: 'channels_first' }, { type: 'Dense' }]), 'model.layers.0.data_format', /channels_last/);
    refused(() => layers([{ type: 'Flatten', trainable: false }, { type: 'Dense' }]), 'model.layers.0.trainable', /trainable/);
  });

  test('bad graphs are refused naming the layer, what it got and what fits', () => {
    refused(() => layers([{ type: 'Conv3D', filters: 2 }, { type: 'Dense' }]), 'model.layers.0.type', /unknown layer type "Conv3D"/, /Conv2D/, /Dense/);
    refused(() => layers([{ type: 'Conv2D', filters: 2, kernel_size: 3, dilation: 2 }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.dilation', /no option "dilation"/, /filters, kernel_size, strides/);
    refused(() => layers([{ type: 'Conv2D', filters: 2, kernel_size: 3, padding: 'full' }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.padding', /got "full"/, /valid|same/);
    refused(() => layers([{ type: 'Conv2D', kernel_size: 3 }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.filters', /required/);
    refused(() => layers([{ type: 'Conv2D', name: 'big', filters: 2, kernel_size: 17 }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.kernel_size', /big \(Conv2D\) gets \[16, 16, 1\]/, /padding same/);
    // Shape mismatch: a Dense on images maps the channels (Keras semantics), so the output is not [5].
    refused(() => layers([{ type: 'Conv2D', filters: 2, kernel_size: 3 }, { type: 'Dense', name: 'head' }]), 'model.layers.1', /head \(Dense\)\) has shape \[14, 14, 5\]/, /Flatten/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', units: 4, name: 'h' }, { type: 'Dense', units: 3 }]), 'model.layers.2', /shape \[3\], the task needs \[5\]/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', name: 'a', units: 5 }, { type: 'Dense', units: 3, inputs: ['flatten'] }, { type: 'Add', inputs: ['a', 'dense'] }]), 'model.layers.3.inputs', /unequal shapes: \[5\] and \[3\]/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', name: 'a' }, { type: 'Dense' }]), 'model.layers.1.units', /only the last Dense/);
    refused(() => layers([{ type: 'Flatten', inputs: ['head'] }, { type: 'Dense', name: 'head' }]), 'model.layers.0.inputs', /later one/, /no cycles/);
    refused(() => layers([{ type: 'Flatten', inputs: ['nope'] }, { type: 'Dense' }]), 'model.layers.0.inputs', /"nope", which is no layer/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', name: 'x' }, { type: 'Dense', name: 'x' }]), 'model.layers.2.name', /already the name/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', units: 9 }, { type: 'Dense', inputs: ['flatten'] }]), 'model.layers.1', /never used/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', units: 9 }, { type: 'Dense' }, { type: 'Activation', activation: 'softmax' }]), 'model.layers.3.activation', /loss/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', activation: 'mish' }]), 'model.layers.1.activation', /unknown activation "mish"/, /gelu/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', units: 9 }, { type: 'Dense', units: 3 }, { type: 'Dense' }].slice(0, 3)), 'model.layers.2', /task needs \[5\]/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', units: 4 }, { type: 'Add' }, { type: 'Dense' }]), 'model.layers.2.inputs', /two or more/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense', kernel_initializer: 'orthogonal' }]), 'model.layers.1.kernel_initializer', /unknown initialiser "orthogonal"/, /he_normal/);
    refused(() => layers([{ type: 'Reshape', target_shape: [3, -1] }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.target_shape', /256 values/);
    refused(() => layers([{ type: 'Flatten' }, { type: 'Dense' }], { input: [17] }), 'model.input', /256/);
  });

  test('an option refusal says once what it got and in words what fits (the run spec adds no second "got")', () => {
    const conv = (o: Record<string, unknown>): LayerSpec[] => [{ type: 'Conv2D', filters: 2, kernel_size: 3, ...o }, { type: 'Flatten' }, { type: 'Dense' }];
    const once = (o: Record<string, unknown>, path: string, ...patterns: RegExp[]) =>
      refused(() => layers(conv(o)), path, /^(got [^;]*; (?!got)|required: )/, ...patterns);
    once({ dilation_rate: 2 }, 'model.layers.0.dilation_rate', /got 2; dilated convolution is not supported: use 1/);
    once({ groups: 2 }, 'model.layers.0.groups', /grouped convolution is not supported/);
    once({ kernel_size: [3, 3, 3] }, 'model.layers.0.kernel_size', /got \[3,3,3\]; expected a whole number >= 1 or a list of 2/);
    once({ strides: 0 }, 'model.layers.0.strides', /got 0; expected a number >= 1/);
    once({ padding: 'causal' }, 'model.layers.0.padding', /got "causal"; expected one of "valid", "same"/);
    once({ filters: undefined }, 'model.layers.0.filters', /^required: expected number$/);
    once({ kernel_initializer: 'foo' }, 'model.layers.0.kernel_initializer', /got "foo"; unknown initialiser "foo"/);
    refused(() => layers([{ type: 'Reshape', target_shape: [0] }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.target_shape.0', /^got 0; expected a number >= 1$/);
    refused(() => layers([{ type: 'BatchNormalization', axis: 'x' }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.axis', /^got "x"; expected -1/);
    refused(() => layers([{ type: 'MaxPooling2D', strides: 'x' }, { type: 'Flatten' }, { type: 'Dense' }]), 'model.layers.0.strides', /^got "x"; expected null \(the pool size\)/);
  });

  test('the presets compile to the graph: conv4 (its minimum image size derived by shape inference), mlp, resnet12', () => {
    refused(() => glyphs({ kind: 'conv4' }, { imageSize: 15 }), 'task.imageSize', /at least 16 pixels, got 15/, /pool3 \(MaxPooling2D\)/);
    assert.doesNotThrow(() => glyphs({ kind: 'conv4', pool: 'stride' }, { imageSize: 8 }));
    refused(() => validateSpec({ name: 's', task: { family: 'sinusoid' }, model: { kind: 'resnet12' }, algorithm: { kind: 'maml' } }), 'model.kind', /image task family/);
    const mlp = modelGraph(glyphs({ kind: 'mlp', hidden: [6] }, { imageSize: 8 }));
    assert.deepEqual(mlp.nodes.map((n) => `${n.name}:${n.type}`), ['flatten:Flatten', 'l0:Dense', 'l1:Dense']);
    const r = validateSpec({ name: 'r', task: { family: 'fewshot-images', path: '/d', imageSize: 84, channels: 3 }, model: { kind: 'resnet12' }, algorithm: { kind: 'anil' } });
    const g = modelGraph(r);
    const names = g.layout.map((t) => t.name);
    assert.deepEqual(names.slice(0, 8), ['block0_conv1.w', 'block0_bn1.scale', 'block0_bn1.offset', 'block0_conv2.w', 'block0_bn2.scale', 'block0_bn2.offset', 'block0_conv3.w', 'block0_bn3.scale']);
    assert.deepEqual(names.slice(-2), ['head.w', 'head.b']);
    assert.deepEqual(headParamNames(r), ['head.w', 'head.b']);
    const pools = g.nodes.filter((n) => n.type === 'MaxPooling2D').map((n) => n.shape);
    assert.deepEqual(pools, [[42, 42, 64], [21, 21, 160], [10, 10, 320], [5, 5, 640]]);
    // MetaOptNet's ResNet-12 at 64-160-320-640: 12.4M parameters (convs and BN; the 5-way head on top).
    const conv = (k: number, i: number, o: number) => k * k * i * o;
    const chans = [3, 64, 160, 320, 640];
    let expected = 5 * 640 + 5;
    for (let b = 0; b < 4; b++) {
      const [i, o] = [chans[b]!, chans[b + 1]!];
      expected += conv(3, i, o) + conv(3, o, o) + conv(3, o, o) + conv(1, i, o) + 4 * 2 * o;
    }
    assert.equal(g.layout.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0), expected);
    assert.ok(Math.abs(expected - 12.4e6) < 0.05e6, `${expected}`);
  });

  test('every registered type compiles in some graph (the registry is the list the docs name)', () => {
    assert.equal(new Set(LAYER_TYPES).size, LAYER_TYPES.length);
    const img = (l: LayerSpec) => buildGraph([l, { type: 'Flatten', name: 'f9' }, { type: 'Dense', name: 'd9' }], [6, 6, 2], 3);
    const seq = (l: LayerSpec) => buildGraph([l, { type: 'Flatten', name: 'f9' }, { type: 'Dense', name: 'd9' }], [6, 2], 3);
    const ok = (r: ReturnType<typeof buildGraph>, t: string) => assert.ok(r.graph, `${t}: ${JSON.stringify(r.problems)}`);
    for (const type of ['Conv2D', 'BatchNormalization', 'LayerNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Flatten', 'ZeroPadding2D', 'Dropout', 'Dense']) {
      ok(img({ type, ...(type === 'Conv2D' ? { filters: 2, kernel_size: 3 } : type === 'Dense' ? { units: 2 } : {}) }), type);
    }
    for (const type of ['Conv1D', 'MaxPooling1D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D']) ok(seq({ type, ...(type === 'Conv1D' ? { filters: 2, kernel_size: 2 } : {}) }), type);
    ok(buildGraph([{ type: 'Embedding', input_dim: 5, output_dim: 2 }, { type: 'Flatten' }, { type: 'Dense' }], [4], 3), 'Embedding');
    ok(buildGraph([{ type: 'Reshape', target_shape: [-1] }, { type: 'Dense', name: 'a', units: 4 }, { type: 'Dense', name: 'b', units: 4, inputs: ['reshape'] }, { type: 'Add', inputs: ['a', 'b'] }, { type: 'Dense', name: 'c', units: 2, inputs: ['a'] }, { type: 'Concatenate', inputs: ['add', 'c'] }, { type: 'Dense' }], [6], 3), 'Reshape/Add/Concatenate');
  });
});

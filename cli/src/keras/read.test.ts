import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { KerasModelError } from '../errors.js';
import { readKerasArchive } from './archive.js';
import { EXPORT_INPUT, kerasLayerOrder, type ExportModel } from './export-model.js';
import { readModelFile } from './read.js';
import { kerasFile } from './to-keras.js';
import { tfjsModel, TFJS_WEIGHTS_FILE } from './to-tfjs.js';

/** Written by Keras 3.15.1 (test/python/make_fixtures.py). */
const RESIDUAL = fileURLToPath(new URL('../../src/keras/testdata/residual.keras', import.meta.url));
const SEQUENTIAL = fileURLToPath(new URL('../../src/keras/testdata/sequential.keras', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'metaloop-keras-read-'));

async function refused(file: string, pattern: RegExp) {
  await assert.rejects(readModelFile(file), (e: unknown) => e instanceof KerasModelError && pattern.test(e.message) && e.file === file);
}

describe('readModelFile: files Keras 3 wrote', () => {
  it('a residual Functional model: topology in Keras order and every variable at its h5 path', async () => {
    const m = await readModelFile(RESIDUAL);
    assert.equal(m.format, 'keras');
    assert.match(m.producer, /^Keras 3\./);
    assert.deepEqual(m.topology.input, { name: 'image', shape: [8, 8, 1] });
    assert.deepEqual(
      m.topology.layers.map((l) => `${l.className}:${l.name}<${l.inbound.join('+')}`),
      ['Conv2D:conv0<image', 'BatchNormalization:bn0<conv0', 'ReLU:relu0<bn0', 'Conv2D:conv1<relu0', 'BatchNormalization:bn1<conv1', 'ReLU:relu1<bn1', 'Conv2D:conv2<relu1', 'BatchNormalization:bn2<conv2', 'Add:join<relu0+bn2', 'ReLU:relu2<join', 'MaxPooling2D:pool<relu2', 'GlobalAveragePooling2D:gap<pool', 'Dense:head<gap'],
    );
    const shapes = (name: string) => m.variables(m.topology.layers.find((l) => l.name === name)!, [])?.map((v) => v.shape.join('x'));
    assert.deepEqual(shapes('conv0'), ['3x3x1x2', '2']);
    assert.deepEqual(shapes('conv2'), ['3x3x2x2'], 'use_bias=False: the kernel only');
    assert.deepEqual(shapes('bn0'), ['2', '2', '2', '2'], 'gamma, beta, moving_mean, moving_variance');
    assert.deepEqual(shapes('head'), ['2x3', '3']);
    assert.deepEqual(shapes('relu0'), [], 'a layer without variables has an empty group');
    // Keras initialises BN's gamma to ones and the moving variance to ones.
    const bn = m.variables(m.topology.layers.find((l) => l.name === 'bn0')!, [])!;
    assert.deepEqual([...bn[0]!.data], [1, 1]);
    assert.deepEqual([...bn[3]!.data], [1, 1]);
  });

  it('a Sequential model (its h5 groups skip the InputLayer)', async () => {
    const m = await readModelFile(SEQUENTIAL);
    assert.equal(m.topology.modelClass, 'Sequential');
    assert.deepEqual(m.topology.input.shape, [6]);
    assert.deepEqual(m.topology.layers.map((l) => [l.className, l.h5Path]), [['Dense', 'layers/dense'], ['Dropout', 'layers/dropout'], ['Dense', 'layers/dense_1']]);
    assert.deepEqual(m.variables(m.topology.layers[2]!, [])?.map((v) => v.shape), [[5, 2], [2]]);
  });

  it("kerasLayerOrder gives Keras' own order of the residual model's layers (where Keras looks for each layer's variables; branches at one depth: the round trip in test/src/keras)", async () => {
    const m = await readModelFile(RESIDUAL);
    const model: ExportModel = {
      name: 'm',
      input: m.topology.input.shape,
      layers: [...m.topology.layers].map((l) => ({ type: l.className, name: l.name, inputs: l.inbound.map((i) => (i === 'image' ? EXPORT_INPUT : i)), options: {}, inputShapes: [], shape: [], variables: [] })),
    };
    const keras = ['image', ...m.topology.layers.map((l) => l.name)];
    assert.deepEqual(kerasLayerOrder(model).map((n) => (n === EXPORT_INPUT ? 'image' : n)), keras);
  });
});

describe('readModelFile: refusals name the file and the problem', () => {
  it('not a model file, a zip without config.json, sharded weights, a legacy .h5, a graph model, quantized or float16 weights, short shards', async () => {
    const junk = join(dir, 'junk.keras');
    writeFileSync(junk, 'hello');
    await refused(junk, /neither a \.keras archive nor a TF\.js model\.json/);
    await refused(join(dir, 'missing.keras'), /no such file/);
    await refused(dir, /a directory, not a model file/);
    const noConfig = join(dir, 'noconfig.keras');
    writeFileSync(noConfig, zipSync({ 'metadata.json': new Uint8Array([123, 125]) }));
    await refused(noConfig, /no config\.json in the archive \(it holds metadata\.json\)/);
    const sharded = join(dir, 'sharded.keras');
    writeFileSync(sharded, zipSync({ 'config.json': new TextEncoder().encode('{}'), 'model.weights.json': new Uint8Array(2) }));
    await refused(sharded, /the weights are sharded/);
    const h5 = join(dir, 'old.h5');
    writeFileSync(h5, Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a]));
    await refused(h5, /a legacy Keras HDF5 model/);
    const graph = join(dir, 'graph.json');
    writeFileSync(graph, JSON.stringify({ format: 'graph-model', modelTopology: {} }));
    await refused(graph, /a TF\.js graph model has no layers/);
    const tfjs = (weights: unknown[], bytes: number) => {
      const d = mkdtempSync(join(dir, 'tfjs-'));
      writeFileSync(join(d, 'w.bin'), new Uint8Array(bytes));
      const topo = { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 2] } }] } };
      writeFileSync(join(d, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: topo, weightsManifest: [{ paths: ['w.bin'], weights }] }));
      return join(d, 'model.json');
    };
    await refused(tfjs([{ name: 'd/kernel', shape: [2, 2], dtype: 'float32', quantization: { dtype: 'uint8' } }], 16), /weight d\/kernel is quantized/);
    await refused(tfjs([{ name: 'd/kernel', shape: [2, 2], dtype: 'float16' }], 16), /weight d\/kernel is float16: Metaloop reads float32/);
    await refused(tfjs([{ name: 'd/kernel', shape: [2, 2], dtype: 'float32' }], 8), /end before weight d\/kernel/);
    assert.throws(() => readKerasArchive('x.keras', zipSync({ 'config.json': new TextEncoder().encode('{no') })), /x\.keras: config\.json is not JSON/);
  });
});

describe('the writers, read back', () => {
  const v = (shape: number[], start: number) => ({ shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => start + i / 8) });
  const model: ExportModel = {
    name: 'net',
    input: [4, 4, 1],
    layers: [
      { type: 'Conv2D', name: 'c0', inputs: [EXPORT_INPUT], options: { filters: 2, kernel_size: [3, 3], padding: 'same' }, inputShapes: [[4, 4, 1]], shape: [4, 4, 2], variables: [{ keras: 'kernel', ...v([3, 3, 1, 2], 0) }, { keras: 'bias', ...v([2], 5) }] },
      { type: 'Conv2D', name: 'skip', inputs: [EXPORT_INPUT], options: { filters: 2, kernel_size: [1, 1] }, inputShapes: [[4, 4, 1]], shape: [4, 4, 2], variables: [{ keras: 'kernel', ...v([1, 1, 1, 2], 7) }, { keras: 'bias', ...v([2], 8) }] },
      { type: 'Add', name: 'join', inputs: ['c0', 'skip'], options: {}, inputShapes: [[4, 4, 2], [4, 4, 2]], shape: [4, 4, 2], variables: [] },
      { type: 'Flatten', name: 'flat', inputs: ['join'], options: {}, inputShapes: [[4, 4, 2]], shape: [32], variables: [] },
      { type: 'Dense', name: 'head', inputs: ['flat'], options: { units: 3 }, inputShapes: [[32]], shape: [3], variables: [{ keras: 'kernel', ...v([32, 3], -1) }, { keras: 'bias', ...v([3], 2) }] },
    ],
  };

  it('a .keras file: same graph, every variable where Keras reads it, the same bytes twice', async () => {
    const bytes = await kerasFile(model, 'test');
    const file = join(dir, 'net.keras');
    writeFileSync(file, bytes);
    const m = await readModelFile(file);
    assert.deepEqual(m.topology.layers.map((l) => [l.name, l.inbound]), [['c0', ['input_layer']], ['skip', ['input_layer']], ['join', ['c0', 'skip']], ['flat', ['join']], ['head', ['flat']]]);
    for (const l of model.layers) {
      const got = m.variables(m.topology.layers.find((k) => k.name === l.name)!, []);
      assert.deepEqual(got?.map((x) => [x.shape, [...x.data]]) ?? [], l.variables.map((x) => [x.shape, [...x.data]]), l.name);
    }
    assert.deepEqual(await kerasFile(model, 'test'), bytes);
  });

  it('a TF.js Layers model.json: same graph and weights by <layer>/<variable>', async () => {
    const t = tfjsModel(model, 'test');
    const d = mkdtempSync(join(dir, 'out-'));
    writeFileSync(join(d, 'model.json'), JSON.stringify(t.modelJson));
    writeFileSync(join(d, TFJS_WEIGHTS_FILE), t.weights);
    const m = await readModelFile(join(d, 'model.json'));
    assert.equal(m.format, 'tfjs-layers');
    assert.deepEqual(m.topology.layers.map((l) => [l.name, l.inbound]), [['c0', ['input_layer']], ['skip', ['input_layer']], ['join', ['c0', 'skip']], ['flat', ['join']], ['head', ['flat']]]);
    const head = m.variables(m.topology.layers[4]!, ['kernel', 'bias'])!;
    assert.deepEqual([...head[1]!.data], [2, 2.125, 2.25]);
    assert.throws(() => m.variables(m.topology.layers[4]!, ['kernel', 'gamma']), /no weight head\/gamma in the weightsManifest/);
  });
});

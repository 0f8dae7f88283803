/**
 * Issue 24's Keras round trip, on real processes: Keras 3 (Python, JAX CPU) builds a small residual
 * conv net (examples/keras/make_model.py: Conv2D, BatchNormalization, ReLU, Add, MaxPooling2D,
 * GlobalAveragePooling2D, Dense) and saves `.keras`; `metaloop submit` (the CLI role of
 * deploy/nats/nats-test.conf: core NATS only) converts it, uploads its weights (init: weights) and
 * the run meta-trains a few steps on a real nats-server with a coordinator and two worker
 * processes (tensorflow backend); `metaloop export` writes it back, and Keras (Python) and
 * `tf.loadLayersModel` (Node) predict what Metaloop predicts, ≤ 1e-5 relative:
 *   training=True (batch statistics) = Metaloop's transductive forward,
 *   predict (the exported moving statistics) = Metaloop's forward with those fixed statistics.
 * θ₀ travels bit for bit (checkpoint 0 = the file's weights). A TF.js Layers model.json comes in the
 * same way (with an upload cut short and resumed across processes); an unsupported layer is refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { zipSync, strToU8 } from 'fflate';
import { connect } from '@nats-io/transport-node';
import { metaloop, startNatsServer, subjects, type NatsServer } from '@metaloop/shared';
import { loadRunSpec } from '@metaloop/cli';
import { forwardWithStatistics, loadExportedModel, type BatchNormStatistics } from '@metaloop/worker';
import { childPids, ROOT, waitFor, type Proc } from '@metaloop/testing';
import { metaloopCli, startCoordinator } from '@metaloop/testing/cluster';
import { kerasPredict, kerasPython, makeKerasModel, relDiff, type F32Array } from '@metaloop/testing/keras';
import { requireTensorflow, startTfWorker } from '@metaloop/testing/tfjs';

const CONF = join(ROOT, 'deploy', 'nats', 'nats-test.conf');
const PASS = { coordinator: 'coordinator-test-password', worker: 'worker-test-password', cli: 'cli-test-password' } as const;
const roleEnv = (role: keyof typeof PASS) => ({ METALOOP_NATS_USER: role, METALOOP_NATS_PASSWORD: PASS[role] });
const children = childPids();
const IMAGE = 12;
const WAYS = 5;

/** A small spec around `model` (glyphs 12×12, 5-way 1-shot, MAML, a checkpoint at the end). */
function specYaml(name: string, modelPath: string, steps: number): string {
  return [
    `name: ${name}`,
    'seed: 11',
    `task: { family: synthetic-glyphs, ways: ${WAYS}, shots: 1, queries: 2, imageSize: ${IMAGE} }`,
    `model: { kind: keras, path: ${modelPath}, init: weights }`,
    'algorithm: { kind: maml, innerSteps: 1, innerLr: 0.1 }',
    `outer: { optimizer: adam, lr: 0.01, metaBatch: 4, shardSize: 2, steps: ${steps} }`,
    'eval: { every: 0, tasks: 4, innerSteps: 1 }',
    `checkpoint: { every: ${steps}, keep: 2 }`,
    'workers: { backend: tensorflow }',
    '',
  ].join('\n');
}

/** Deterministic inputs [n, 12, 12, 1] in [0, 1). */
function inputs(n: number, seed: number): F32Array {
  const data = new Float32Array(n * IMAGE * IMAGE);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32;
  }
  return { shape: [n, IMAGE, IMAGE, 1], data };
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

/** The TF.js Layers model in `dir` (model.json + shards) loaded through tf.io.fromMemory. */
async function loadTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; format: string };
  assert.equal(json.format, 'layers-model');
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const bytes = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => readFileSync(join(dir, p)))));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs, weightData }));
}

describe('Keras round trip: Keras → Metaloop on NATS → Keras and TF.js', { timeout: 900_000 }, () => {
  let nats: NatsServer;
  const procs: Proc[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'metaloop-keras-'));
  const cli = () => ['--nats', nats.url, '--nats-user', 'cli', '--nats-password', PASS.cli];
  const describeProcs = () => procs.map((p) => p.tail(15)).join('\n');

  before(async () => {
    kerasPython(); // fails loudly, naming the install command
    requireTensorflow();
    await tf.setBackend('cpu');
    nats = await startNatsServer({ configFile: CONF });
    procs.push((await startCoordinator('coordinator', nats.url, { env: roleEnv('coordinator') })).proc);
    procs.push(startTfWorker('kw1', nats.url, { env: roleEnv('worker') }), startTfWorker('kw2', nats.url, { env: roleEnv('worker') }));
    await waitFor('the coordinator to answer the CLI', 60_000, async () => (await metaloopCli([...cli(), 'list'])).code === 0, describeProcs);
  });

  after(async () => {
    await Promise.allSettled(procs.map((p) => p.stop(3000)));
    await nats?.stop();
  });

  /** submit --watch under the CLI role; returns the run id and the CLI's stderr. */
  async function train(spec: string): Promise<{ runId: string; stderr: string }> {
    const r = await metaloopCli([...cli(), 'submit', spec, '--watch', '--json'], {}, 300_000);
    assert.equal(r.code, 0, `submit --watch:\n${r.stdout}\n${r.stderr}\n${describeProcs()}`);
    const last = lastJson(r.stdout);
    assert.equal(last.status, 'succeeded', r.stdout);
    return { runId: String(last.runId), stderr: r.stderr };
  }

  async function exportRun(runId: string, out: string, checkpoint = 'latest'): Promise<void> {
    const r = await metaloopCli([...cli(), 'export', runId, '--checkpoint', checkpoint, '--out', out], {}, 180_000);
    assert.equal(r.code, 0, `export:\n${r.stdout}\n${r.stderr}`);
  }

  /** Metaloop's two forwards of an export on x, and the moving statistics its TF.js file holds. */
  async function metaloopPredictions(exp: string, x: F32Array, tfModel: tf.LayersModel) {
    const m = await loadExportedModel(exp);
    try {
      const stats = new Map<string, BatchNormStatistics>();
      for (const l of tfModel.layers) {
        if (l.getClassName() !== 'BatchNormalization') continue;
        const w = l.getWeights();
        stats.set(l.name, { mean: w[w.length - 2]!.dataSync() as Float32Array, variance: w[w.length - 1]!.dataSync() as Float32Array });
      }
      assert.ok(stats.size > 0, 'the model has batch norm layers');
      const transductive = m.predict(x.data, x.shape[0]!);
      const fixed = tf.tidy(() => forwardWithStatistics(m.spec, m.weights, tf.tensor(x.data, [...x.shape]), stats).dataSync() as Float32Array);
      return { transductive, fixed: Float32Array.from(fixed), stats };
    } finally {
      m.dispose();
    }
  }

  /** Keras and TF.js predict what Metaloop predicts, in both batch-norm modes; returns the differences. */
  async function samePredictions(exp: string, label: string): Promise<Record<string, number>> {
    const x = inputs(8, 3);
    const tfModel = await loadTfjs(join(exp, 'tfjs-layers'));
    const ml = await metaloopPredictions(exp, x, tfModel);
    const k = await kerasPredict(children, join(exp, 'model.keras'), x, ['predict', 'training']);
    const xt = tf.tensor(x.data, [...x.shape]);
    const tfPredict = (tfModel.predict(xt) as tf.Tensor).dataSync();
    const tfTrain = (tfModel.apply(xt, { training: true }) as tf.Tensor).dataSync();
    const diffs = {
      'keras training=True vs transductive': relDiff(k.training!.data, ml.transductive),
      'keras predict vs fixed statistics': relDiff(k.predict!.data, ml.fixed),
      'tfjs training vs transductive': relDiff(tfTrain, ml.transductive),
      'tfjs predict vs fixed statistics': relDiff(tfPredict, ml.fixed),
    };
    console.log(`# ${label}: ${Object.entries(diffs).map(([w, d]) => `${w} ${d.toExponential(2)}`).join('; ')} (Keras ${k.keras} on ${k.backend})`);
    for (const [what, d] of Object.entries(diffs)) assert.ok(d <= 1e-5, `${label}: ${what} differ by ${d} (relative)`);
    // The modes differ (the moving statistics are not this batch's): each comparison above has teeth.
    assert.ok(relDiff(ml.fixed, ml.transductive) > 1e-3, `${label}: fixed and batch statistics give the same predictions`);
    xt.dispose();
    tfModel.dispose();
    return diffs;
  }

  it('a Keras residual net: init: weights travels bit for bit, trains on NATS, and the export predicts alike in Keras and TF.js', async () => {
    const model = join(dir, 'residual.keras');
    await makeKerasModel(children, model, { imageSize: IMAGE, channels: 1, classes: WAYS, filters: 4 });
    const spec = join(dir, 'residual.yaml');
    writeFileSync(spec, specYaml('keras-residual', 'residual.keras', 3));
    const { runId, stderr } = await train(spec);
    assert.match(stderr, /weights of .*residual\.keras: \d+ KiB, sha256 [0-9a-f]{12}…, uploaded \d+ bytes/);
    assert.match(stderr, /bn0: moving_mean and moving_variance not used/);

    // Checkpoint 0 is the file's weights, bit for bit.
    const exp0 = join(dir, 'residual-0');
    await exportRun(runId, exp0, '0');
    const theta0 = await loadExportedModel(exp0);
    const keras0 = await kerasPredict(children, model, null, ['weights']);
    const names = { kernel: 'w', bias: 'b', gamma: 'scale', beta: 'offset' } as const;
    let compared = 0;
    for (const [layer, vars] of Object.entries(keras0.weights!)) {
      const keras = layer.startsWith('conv') ? (['kernel', 'bias'] as const) : layer.startsWith('bn') ? (['gamma', 'beta'] as const) : (['kernel', 'bias'] as const);
      keras.slice(0, layer === 'conv2' ? 1 : 2).forEach((v, i) => {
        const t = theta0.weights[`${layer}.${names[v]}`];
        assert.ok(t, `${layer}.${names[v]} in θ₀`);
        assert.deepEqual(Buffer.from((t.dataSync() as Float32Array).buffer), Buffer.from(vars[i]!.data.buffer), `${layer} ${v}`);
        compared++;
      });
    }
    theta0.dispose();
    assert.equal(compared, 13, 'conv0 w b, bn0 γ β, conv1 w b, bn1 γ β, conv2 w, bn2 γ β, head w b');

    const exp = join(dir, 'residual-out');
    await exportRun(runId, exp);
    await samePredictions(exp, 'keras residual');
  });

  it('a TF.js Layers model.json with a convolution shortcut: the upload resumes across processes, and the export predicts alike', async () => {
    // A two-branch model made with TF.js itself (two convolutions at the same depth: Keras' layer order matters on export).
    const input = tf.input({ shape: [IMAGE, IMAGE, 1], name: 'image' });
    const main = tf.layers.reLU({ name: 'relu' }).apply(tf.layers.batchNormalization({ name: 'bn' }).apply(tf.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input))) as tf.SymbolicTensor;
    const skip = tf.layers.conv2d({ filters: 3, kernelSize: 1, name: 'skip' }).apply(input) as tf.SymbolicTensor;
    const joined = tf.layers.add({ name: 'join' }).apply([main, skip]) as tf.SymbolicTensor;
    const pooled = tf.layers.flatten({ name: 'flat' }).apply(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(joined)) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: WAYS, name: 'head' }).apply(pooled) as tf.SymbolicTensor;
    const built = tf.model({ inputs: input, outputs: out, name: 'tfjs_net' });
    const tfjsDir = mkdtempSync(join(dir, 'tfjs-in-'));
    await built.save(
      tf.io.withSaveHandler((a) => {
        writeFileSync(join(tfjsDir, 'model.json'), JSON.stringify({ format: 'layers-model', generatedBy: a.generatedBy, modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
        writeFileSync(join(tfjsDir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
        return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } });
      }),
    );
    const spec = join(tfjsDir, 'spec.yaml');
    writeFileSync(spec, specYaml('tfjs-shortcut', 'model.json', 2));

    // An upload cut short: the first 1000 bytes of θ₀ sent by another client (as the CLI role), then the CLI goes on from there.
    const loaded = await loadRunSpec(spec);
    const bytes = loaded.weights!.bytes;
    const nc = await connect({ servers: nats.url, user: 'cli', pass: PASS.cli });
    const first = metaloop.UploadRequest.encode({ sha256: loaded.weights!.sha256, totalBytes: bytes.byteLength, offset: 0, data: bytes.subarray(0, 1000), kind: 'init-weights' }).finish();
    const reply = metaloop.UploadReply.decode((await nc.request(subjects().api('upload'), first, { timeout: 5000 })).data);
    await nc.close();
    assert.equal(Number(reply.receivedBytes), 1000);
    const { runId, stderr } = await train(spec);
    assert.match(stderr, new RegExp(`uploaded ${bytes.byteLength - 1000} bytes`), stderr);

    const exp0 = join(dir, 'tfjs-0');
    await exportRun(runId, exp0, '0');
    const theta0 = await loadExportedModel(exp0);
    for (const w of built.weights) {
      const [layer, v] = w.originalName.split('/') as [string, string];
      const param = { kernel: 'w', bias: 'b', gamma: 'scale', beta: 'offset' }[v];
      if (!param) continue; // moving statistics
      assert.deepEqual([...(theta0.weights[`${layer}.${param}`]!.dataSync() as Float32Array)], [...(w.read().dataSync() as Float32Array)], w.originalName);
    }
    theta0.dispose();
    const exp = join(dir, 'tfjs-out');
    await exportRun(runId, exp);
    await samePredictions(exp, 'tfjs shortcut');
  });

  it('refuses an unsupported layer at submit, naming the layer, its class and the supported list (exit 3)', async () => {
    const d = mkdtempSync(join(dir, 'bad-'));
    const layer = (className: string, name: string, config: object, from: string | null) => ({
      module: 'keras.layers',
      class_name: className,
      config: { name, ...config },
      name,
      inbound_nodes: from ? [{ args: [{ class_name: '__keras_tensor__', config: { shape: [null, 4], dtype: 'float32', keras_history: [from, 0, 0] } }], kwargs: {} }] : [],
    });
    const config = {
      class_name: 'Functional',
      config: {
        name: 'bad',
        layers: [layer('InputLayer', 'in', { batch_shape: [null, IMAGE, IMAGE, 1] }, null), layer('SeparableConv2D', 'sep', { filters: 2, kernel_size: 3 }, 'in'), layer('Flatten', 'flat', {}, 'sep'), layer('Dense', 'head', { units: WAYS }, 'flat')],
        input_layers: ['in', 0, 0],
        output_layers: ['head', 0, 0],
      },
    };
    writeFileSync(join(d, 'bad.keras'), zipSync({ 'config.json': strToU8(JSON.stringify(config)) }));
    writeFileSync(join(d, 'spec.yaml'), specYaml('bad', 'bad.keras', 1));
    const r = await metaloopCli([...cli(), 'submit', join(d, 'spec.yaml')]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /bad\.keras: layer "sep" \(SeparableConv2D\): Keras class SeparableConv2D is not supported; Metaloop reads .*Conv2D.*Dense/);
  });
});

#!/usr/bin/env node
// Checks that @tensorflow/tfjs-node loads from the worker package and runs on the
// `tensorflow` backend. Used by scripts/tfjs-node-from-wheel.sh.
//
//   node check.cjs <repo-root> [--ops]
//
// Basic check: require('@tensorflow/tfjs-node') resolved from worker/, backend is
// 'tensorflow' on the SAME tfjs-core instance the worker imports, and a tiny matMul,
// conv2d and gradient give hand-computed values.
// --ops: additionally compares backend-sensitive ops against the cpu backend
// (conv2d, Conv2DBackpropFilter, maxPool and its gradient, nested tf.grads through
// matMul/relu) and reports which of the kernels MAML cares about each backend has.
'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');

const root = path.resolve(process.argv[2] ?? '.');
const wantOps = process.argv.includes('--ops');
const req = createRequire(path.join(root, 'worker', 'package.json'));

function fail(msg) {
  console.error(`check: FAIL: ${msg}`);
  process.exit(1);
}

function close(a, b, tol, what) {
  if (a.length !== b.length) fail(`${what}: length ${a.length} != ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(d <= tol)) fail(`${what}: element ${i}: ${a[i]} vs ${b[i]}`);
    worst = Math.max(worst, d);
  }
  return worst;
}

// Deterministic data without touching any backend's RNG.
function data(n, seed) {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

async function main() {
  let tf;
  try {
    tf = req('@tensorflow/tfjs-node');
  } catch (err) {
    fail(`require('@tensorflow/tfjs-node') from ${root}/worker threw: ${err && err.message}`);
  }
  await tf.ready();
  const core = req('@tensorflow/tfjs-core');
  if (tf.getBackend() !== 'tensorflow') fail(`tf.getBackend() is ${tf.getBackend()}`);
  if (core.getBackend() !== 'tensorflow') {
    fail(`the worker's @tensorflow/tfjs-core sees backend ${core.getBackend()}: tfjs-node ` +
      'loaded a different tfjs-core instance');
  }
  const binding = tf.backend().binding;
  const tfVersion = binding && binding.TF_Version;

  const before = tf.memory().numTensors;
  const [mm, conv, g] = tf.tidy(() => [
    tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]])).dataSync(),
    tf.conv2d(tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 3, 3, 1]), tf.ones([2, 2, 1, 1]), 1, 'valid')
      .dataSync(),
    tf.grad((v) => v.square().sum())(tf.tensor1d([1, 2, 3])).dataSync(),
  ]);
  close(Array.from(mm), [19, 22, 43, 50], 0, 'matMul');
  close(Array.from(conv), [12, 16, 24, 28], 0, 'conv2d');
  close(Array.from(g), [2, 4, 6], 0, 'grad of sum(x^2)');
  if (tf.memory().numTensors !== before) fail(`leaked ${tf.memory().numTensors - before} tensors`);
  console.log(`check: ok: @tensorflow/tfjs-node ${tf.version['tfjs-node']} on backend ` +
    `'tensorflow' (TensorFlow C library ${tfVersion}); matMul, conv2d, grad match`);

  if (wantOps) await opsCheck(tf);
}

async function opsCheck(tf) {
  const run = async (backend, fn) => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const t0 = process.hrtime.bigint();
    const out = tf.tidy(fn);
    const vals = out.dataSync();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    out.dispose();
    const leaked = tf.memory().numTensors - before;
    if (leaked !== 0) fail(`${backend}: leaked ${leaked} tensors`);
    return { vals, ms };
  };
  const xs = data(4 * 28 * 28 * 8, 1);
  const ws = data(3 * 3 * 8 * 16, 2);
  const w2 = data(16 * 8, 3);
  const x = () => tf.tensor4d(xs, [4, 28, 28, 8]);
  const w = () => tf.tensor4d(ws, [3, 3, 8, 16]);
  const cases = {
    conv2d: () => tf.conv2d(x(), w(), 1, 'same'),
    Conv2DBackpropFilter: () => tf.engine().runKernel('Conv2DBackpropFilter',
      { x: x(), dy: tf.conv2d(x(), w(), 1, 'same') },
      { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 8, 16] }),
    'grad conv2d wrt filter': () => tf.grad((f) => tf.conv2d(x(), f, 1, 'same').square().sum())(w()),
    maxPool: () => tf.maxPool(x(), 2, 2, 'valid'),
    'grad maxPool (MaxPoolGrad)': () => tf.grad((v) => tf.maxPool(v, 2, 2, 'valid').square().sum())(x()),
    'nested tf.grads matMul/relu': () => {
      // d/dW of sum(dL/dW * V) with L = sum(relu(X W)^2): a Hessian-vector product.
      const X = tf.tensor2d(data(32 * 16, 4), [32, 16]);
      const V = tf.tensor2d(data(16 * 8, 5), [16, 8]);
      const inner = (W) => tf.grads((Wi) => tf.matMul(X, Wi).relu().square().sum())([W])[0];
      return tf.grads((W) => inner(W).mul(V).sum())([tf.tensor2d(w2, [16, 8])])[0];
    },
  };
  for (const [name, fn] of Object.entries(cases)) {
    const cpu = await run('cpu', fn);
    const nat = await run('tensorflow', fn);
    const worst = close(Array.from(nat.vals), Array.from(cpu.vals), 1e-3, name);
    console.log(`check: ops: ${name}: tensorflow matches cpu (max rel diff ${worst.toExponential(1)}); ` +
      `${nat.ms.toFixed(1)} ms vs cpu ${cpu.ms.toFixed(1)} ms (first call)`);
  }
  for (const k of ['MaxPoolWithArgmax', 'MaxPoolGrad', 'Conv2DBackpropFilter', 'Conv2DBackpropInput']) {
    const has = (b) => (tf.getKernel(k, b) ? 'yes' : 'NO');
    console.log(`check: kernel ${k}: tensorflow ${has('tensorflow')}, cpu ${has('cpu')}`);
  }
  // Second order through maxPool needs the gradient of MaxPoolGrad, which tfjs does not register.
  await tf.setBackend('tensorflow');
  try {
    tf.tidy(() => tf.grad((v) => tf.grad((u) => tf.maxPool(u, 2, 2, 'valid').sum())(v).square().sum())(x()));
    console.log('check: second-order through maxPool: works on tensorflow');
  } catch (err) {
    console.log(`check: second-order through maxPool on tensorflow throws: ${err.message.split('\n')[0]}`);
  }
}

main().catch((err) => fail(err && err.stack ? err.stack : String(err)));

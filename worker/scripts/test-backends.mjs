#!/usr/bin/env node
/**
 * The backend-sensitive worker tests again on every other backend present (issue 10): the main
 * `node --test dist-test/` run is the cpu pass (METALOOP_TEST_BACKEND unset = cpu; the kernel files
 * there also cover wasm side by side); this runs the files below once more per backend with
 * METALOOP_TEST_BACKEND=<name>. wasm always runs (it ships with the worker); tensorflow runs when
 * @tensorflow/tfjs-node loads (built by scripts/tfjs-node-from-wheel.sh) and is reported, not
 * failed, when it is not installed. An installed tfjs-node that fails to load is a failure.
 *
 * Usage (from worker/, after the build): node scripts/test-backends.mjs [backend...]
 * Exit 1 when any pass fails or a required backend cannot start.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist-test');

/** Meta-gradients vs finite differences (every algorithm, MLP and Conv4), registered gradients, leaks, e2e. */
const COMMON = [
  'algorithms/variants.test.js',
  'gradients/register.test.js',
  'gradients/bitwise.test.js',
  'model/mlp.test.js',
  'model/meta-gradient.test.js',
  'model/layers.test.js',
  'model/presets.test.js',
  'engine.test.js',
  'losses.test.js',
  'learning.test.js',
  'backend-e2e.test.js',
];
/** Files that test cpu and wasm side by side in the main run; with METALOOP_TEST_BACKEND set they test only that backend. */
const SIDE_BY_SIDE = ['kernels/kernels.test.js', 'kernels/elementwise.test.js', 'model/batched.test.js'];
/** The tensorflow backend's own kernels (kernels/tensorflow). */
const TENSORFLOW_ONLY = ['kernels/tensorflow/tensorflow-kernels.test.js'];
const FILES = { wasm: COMMON, tensorflow: [...COMMON, ...SIDE_BY_SIDE, ...TENSORFLOW_ONLY] };

/** Does the backend start in a fresh process? {ok} or {ok: false, installed, reason}. */
function probe(name) {
  if (name === 'tensorflow') {
    try {
      createRequire(join(root, 'package.json')).resolve('@tensorflow/tfjs-node');
    } catch {
      return { ok: false, installed: false, reason: 'not installed (run scripts/tfjs-node-from-wheel.sh)' };
    }
  }
  const code = `
    const tf = await import('@tensorflow/tfjs-core');
    const { initTestBackend } = await import(${JSON.stringify(join(dist, 'testing/backend.js'))});
    await initTestBackend(${JSON.stringify(name)});
    if (tf.getBackend() !== ${JSON.stringify(name)}) throw new Error('active backend is ' + tf.getBackend());
    tf.tidy(() => { if (tf.sum(tf.matMul(tf.ones([2, 3]), tf.ones([3, 2]))).dataSync()[0] !== 12) throw new Error('matMul check failed'); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  if (r.status === 0) return { ok: true };
  const lines = `${r.stderr}`.split('\n').filter((l) => /Error|error:/.test(l) && !/cuInit|cuda/i.test(l));
  return { ok: false, installed: true, reason: `does not load: ${(lines[0] ?? `exit ${r.status}`).trim().slice(0, 300)}` };
}

const wanted = process.argv.slice(2);
const backends = wanted.length > 0 ? wanted : ['wasm', 'tensorflow'];
const summary = [['cpu', 'main run (node --test dist-test/)']];
let failed = false;

for (const name of backends) {
  if (!(name in FILES)) {
    console.error(`test-backends: unknown backend ${name} (cpu is the main run; extra passes: ${Object.keys(FILES).join(', ')})`);
    process.exit(2);
  }
  const p = probe(name);
  if (!p.ok) {
    // tfjs-node is an optional dependency of the product, not of its tests: absent fails too,
    // unless the caller opted out explicitly (then the closing summary says SKIPPED).
    const skipped = name === 'tensorflow' && !p.installed && process.env.METALOOP_SKIP_TENSORFLOW === '1';
    console.log(`\n### backend ${name}: ${p.reason}${skipped ? ' — SKIPPED (METALOOP_SKIP_TENSORFLOW=1)' : ' — FAIL'}`);
    summary.push([name, `${skipped ? 'SKIPPED' : 'FAIL'}: ${p.reason}`]);
    if (!skipped) failed = true;
    continue;
  }
  const files = FILES[name].map((f) => join(dist, f));
  console.log(`\n### backend ${name}: METALOOP_TEST_BACKEND=${name} node --test ${FILES[name].join(' ')}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, METALOOP_TEST_BACKEND: name },
  });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const ok = r.status === 0;
  if (!ok) failed = true;
  console.log(`### backend ${name}: ${ok ? 'pass' : `FAIL (exit ${r.status ?? r.signal})`} in ${secs} s`);
  summary.push([name, `${ok ? 'pass' : 'FAIL'} — ${files.length} files in ${secs} s`]);
}

console.log('\n### backend-sensitive tests per backend');
for (const [name, what] of summary) console.log(`  ${name.padEnd(11)} ${what}`);
process.exit(failed ? 1 : 0);

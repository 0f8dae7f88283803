import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SpecError } from './errors.js';
import { headParamNames, initParams, modelLayout, paramLayout, taskDims } from './layout.js';
import { validateSpec } from './spec.js';

const glyphs = (model: Record<string, unknown>, algorithm: Record<string, unknown> = { kind: 'maml' }, task: Record<string, unknown> = {}) =>
  validateSpec({ name: 'g', task: { family: 'synthetic-glyphs', ...task }, model, algorithm });

describe('conv4 and image-task layouts', () => {
  test('glyphs defaults and dims', () => {
    const spec = glyphs({ kind: 'conv4' });
    assert.equal(spec.task.family, 'synthetic-glyphs');
    assert.deepEqual(taskDims(spec), { inputs: 784, outputs: 5, inputShape: [28, 28, 1], image: { size: 28, channels: 1 }, family: 'synthetic-glyphs' });
    assert.equal(spec.model.kind === 'conv4' && spec.model.filters, 64);
  });

  test('conv4 layout, max-pool and stride', () => {
    // The head's input is the last feature map, by shape inference: each block halves the side by
    // a 2×2 'valid' max-pool (floor) or a stride-2 'same' conv (ceil).
    const headIn = (imageSize: number, pool: string) => modelLayout(glyphs({ kind: 'conv4', filters: 2, pool }, { kind: 'maml' }, { imageSize })).at(-2)!.shape[0];
    assert.equal(headIn(28, 'max'), 1 * 2);
    assert.equal(headIn(84, 'max'), 5 * 5 * 2);
    assert.equal(headIn(28, 'stride'), 2 * 2 * 2);
    assert.equal(headIn(12, 'stride'), 1 * 2);
    const spec = glyphs({ kind: 'conv4', filters: 4, pool: 'stride' }, { kind: 'maml' }, { imageSize: 12, ways: 3 });
    const layout = modelLayout(spec);
    assert.deepEqual(layout.map((t) => t.name).slice(0, 5), ['conv0.w', 'conv0.b', 'bn0.scale', 'bn0.offset', 'conv1.w']);
    assert.deepEqual(layout[0]!.shape, [3, 3, 1, 4]);
    assert.deepEqual(layout[4]!.shape, [3, 3, 4, 4]);
    assert.deepEqual(layout.at(-2), { name: 'head.w', shape: [4, 3] });
    assert.deepEqual(headParamNames(spec), ['head.w', 'head.b']);
    assert.deepEqual(paramLayout(spec), layout);
  });

  test('fewshot-images channels flow into conv4', () => {
    const spec = validateSpec({
      name: 'm',
      task: { family: 'fewshot-images', path: '/data/mini', imageSize: 84, channels: 3 },
      model: { kind: 'conv4', filters: 32 },
      algorithm: { kind: 'maml' },
    });
    const layout = modelLayout(spec);
    assert.deepEqual(layout[0]!.shape, [3, 3, 3, 32]);
    assert.deepEqual(layout.at(-2)!.shape, [5 * 5 * 32, 5]);
  });

  test('init: Glorot conv kernels, unit BN scales, zero offsets and biases, seeded', () => {
    const spec = glyphs({ kind: 'conv4', filters: 8 });
    const a = initParams(spec);
    const b = initParams(spec);
    assert.deepEqual(a.data, b.data);
    let off = 0;
    for (const t of a.layout) {
      const n = t.shape.reduce((x, y) => x * y, 1);
      const v = a.data.subarray(off, off + n);
      if (t.name.endsWith('.scale')) assert.ok(v.every((x) => x === 1), t.name);
      else if (t.name.endsWith('.b') || t.name.endsWith('.offset')) assert.ok(v.every((x) => x === 0), t.name);
      else {
        const [kh, kw, cin, cout] = t.shape.length === 4 ? t.shape : [1, 1, t.shape[0]!, t.shape[1]!];
        const limit = Math.sqrt(6 / (kh! * kw! * cin! + kh! * kw! * cout!));
        assert.ok(v.every((x) => Math.abs(x) <= limit) && v.some((x) => Math.abs(x) > limit / 2), t.name);
      }
      off += n;
    }
  });

  test('Meta-SGD and MAML++ learned rates are in the layout and start at innerLr', () => {
    const meta = glyphs({ kind: 'conv4', filters: 4 }, { kind: 'metasgd', innerLr: 0.4 });
    const model = modelLayout(meta);
    const full = paramLayout(meta);
    assert.equal(full.length, 2 * model.length);
    assert.deepEqual(full[model.length], { name: 'lr.conv0.w', shape: [3, 3, 1, 4] });
    const lslr = glyphs({ kind: 'conv4', filters: 4 }, { kind: 'anil', innerSteps: 3, innerLr: 0.1, learnedLayerLr: true });
    assert.deepEqual(paramLayout(lslr).slice(-2), [
      { name: 'lslr.head.w', shape: [3] },
      { name: 'lslr.head.b', shape: [3] },
    ]);
    const init = initParams(lslr);
    assert.ok(init.data.subarray(init.data.length - 6).every((x) => Math.abs(x - 0.1) < 1e-7));
  });

  test('mismatches are rejected with the field named', () => {
    const bad = (f: () => unknown, field: string, re: RegExp) => {
      assert.throws(f, (err: unknown) => err instanceof SpecError && err.issues.some((i) => i.path === field && re.test(i.message)));
    };
    bad(() => validateSpec({ name: 's', task: { family: 'sinusoid' }, model: { kind: 'conv4' }, algorithm: { kind: 'maml' } }), 'model.kind', /image task family/);
    bad(() => glyphs({ kind: 'conv4', imageSize: 32 }), 'model.imageSize', /must equal task.imageSize/);
    bad(() => glyphs({ kind: 'conv4', channels: 3 }), 'model.channels', /channels/);
    bad(() => glyphs({ kind: 'conv4' }, { kind: 'maml' }, { imageSize: 12 }), 'task.imageSize', /at least 16/);
    bad(() => glyphs({ kind: 'conv4' }, { kind: 'reptile', learnedLayerLr: true }), 'algorithm.learnedLayerLr', /no gradient/);
    bad(() => glyphs({ kind: 'conv4' }, { kind: 'fomaml', multiStepLoss: true }), 'algorithm.multiStepLoss', /MAML\+\+/);
    bad(() => glyphs({ kind: 'conv4' }, { kind: 'maml' }, { ways: 20, classes: { train: 10 } }), 'task.classes.train', /20-way/);
    bad(() => validateSpec({ name: 'x', task: { family: 'fewshot-images' }, model: { kind: 'conv4' }, algorithm: { kind: 'maml' } }), 'task.path', /required/);
  });
});

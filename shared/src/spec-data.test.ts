/** The dataset task schemas (spec-data.ts): defaults, refusals naming the field, datasetRefs. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { datasetRefs } from './dataset-ref.js';
import { SpecError } from './errors.js';
import { taskDims } from './layout.js';
import { validateSpec } from './spec.js';

const refused = (input: unknown, path: string, message: RegExp) =>
  assert.throws(() => validateSpec(input), (e: unknown) => e instanceof SpecError && e.issues.some((i) => i.path === path && message.test(i.message)), `expected ${path} ~ ${message}`);

const text = (task: Record<string, unknown> = {}, model: Record<string, unknown> = { kind: 'mlp' }) => ({ name: 't', task: { family: 'fewshot-text', path: 'x.jsonl', ...task }, model, algorithm: { kind: 'maml' } });
const images = (task: Record<string, unknown> = {}) => ({ name: 'i', task: { family: 'fewshot-images', path: 'mini.mlpack', imageSize: 84, channels: 3, ...task }, model: { kind: 'conv4' }, algorithm: { kind: 'maml' } });

const cnn = (inputDim: number) => ({
  kind: 'layers',
  layers: [
    { type: 'Embedding', input_dim: inputDim, output_dim: 8 },
    { type: 'Conv1D', filters: 4, kernel_size: 3, padding: 'same', activation: 'relu' },
    { type: 'GlobalMaxPooling1D' },
    { type: 'Dense' },
  ],
});

describe('dataset task schemas', () => {
  test('fewshot-text defaults, its dims and its datasets', () => {
    const s = validateSpec(text({ vectors: { path: 'glove.6B.50d.txt' } }, cnn(20_000)));
    assert.ok(s.task.family === 'fewshot-text');
    assert.deepEqual([s.task.maxLength, s.task.vocab.size, s.task.vocab.minCount, s.task.format], [40, 20_000, 1, 'auto']);
    assert.deepEqual(taskDims(s).inputShape, [40]);
    assert.deepEqual(taskDims(s).sequence, { length: 40, vocab: 20_000 });
    assert.deepEqual(datasetRefs(s).map((r) => [r.field, r.path, r.sha256]), [['task.path', 'x.jsonl', undefined], ['task.vectors.path', 'glove.6B.50d.txt', undefined]]);
  });

  test('fewshot-images: layouts, normalize, sha256', () => {
    const s = validateSpec(images({ layout: 'csv', normalize: { mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] }, sha256: 'a'.repeat(64) }));
    assert.deepEqual(datasetRefs(s), [{ role: 'task', field: 'task.path', path: 'mini.mlpack', sha256: 'a'.repeat(64) }]);
    refused(images({ layout: 'folders' }), 'task.layout', /one of "auto", "omniglot", "classes", "splits", "csv"/);
    refused(images({ sha256: 'ABC' }), 'task.sha256', /64 lower-case hex digits/);
    refused(images({ normalize: { mean: [0.5, 0.5], std: [0.2] } }), 'task.normalize', /one value per channel/);
    refused(images({ normalize: { mean: [0.5], std: [0] } }), 'task.normalize.std.0', />/);
  });

  test('a text model: conv4 refused, an Embedding with fewer ids than the vocabulary refused naming the layer', () => {
    refused(text({}, { kind: 'conv4' }), 'model.kind', /image task family/);
    refused(text({ vocab: { size: 500 } }, cnn(100)), 'model.layers.0.input_dim', /vocabulary of task\.vocab\.size = 500: input_dim must be >= 500/);
    assert.ok(validateSpec(text({ vocab: { size: 500 } }, cnn(500))));
  });

  test('task.vectors without an Embedding reading the token ids is refused, saying what to use', () => {
    refused(text({ vectors: { path: 'glove.txt' } }), 'task.vectors', /has none: use a kind: layers model starting with \{ type: Embedding, input_dim: 20000/);
    // An Embedding that reads another layer's output is not fed the token ids.
    const late = { kind: 'layers', layers: [{ type: 'Reshape', target_shape: [40] }, ...cnn(20_000).layers] };
    refused(text({ vectors: { path: 'glove.txt' } }, late), 'task.vectors', /has none/);
  });
});

/**
 * fewshot-text on fixtures this test writes (a JSONL of {label, text}, a FewRel-format JSON, GloVe
 * vectors): tokens, the meta-train vocabulary, padding/truncation, entity markers, deterministic
 * tasks, a shard computed end to end, and every bad input refused with its message.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { validateSpec } from '@metaloop/shared';
import { fixtureDir, removeFixtures, writeFewRelFixture, writeJsonlFixture } from '@metaloop/testing/datasets';
import { readGlove } from '../data/glove.js';
import { readTextDataset, tokenize } from '../data/text-datasets.js';
import { PAD, UNK } from '../data/vocab.js';
import { computeShard } from '../engine.js';
import { initParams } from '@metaloop/shared';
import { DatasetError } from '../errors.js';
import { createFewshotText } from './text.js';

after(removeFixtures);

const spec = (path: string, extra: Record<string, unknown> = {}) =>
  validateSpec({ name: 'txt', task: { family: 'fewshot-text', path, ways: 2, shots: 1, queries: 2, maxLength: 6, classes: { train: 3, val: 1 }, ...extra }, model: { kind: 'mlp', hidden: [8] }, algorithm: { kind: 'maml', innerLr: 0.1 } });

const refused = (fn: () => unknown, pattern: RegExp) => assert.throws(fn, (e: unknown) => e instanceof DatasetError && pattern.test(e.message), `expected a DatasetError matching ${pattern}`);

describe('fewshot-text', () => {
  test('word-level tokens: words, inner apostrophes, punctuation; lower-cased', () => {
    assert.deepEqual(tokenize("Don't panic, it's 42!"), ["don't", 'panic', ',', "it's", '42', '!']);
    assert.deepEqual(tokenize('Keep Case', false), ['Keep', 'Case']);
  });

  test('JSONL: classes by label, vocabulary from meta-train only, ids padded and truncated to maxLength, deterministic tasks', () => {
    const path = writeJsonlFixture(6, 4);
    const fam = createFewshotText(spec(path));
    assert.deepEqual(fam.splits.train.map((c) => c.name), ['topic0', 'topic1', 'topic2']);
    assert.deepEqual(fam.splits.test.map((c) => c.name), ['topic4', 'topic5']);
    const v = fam.vocabulary;
    assert.equal(v.words[PAD], '<pad>');
    assert.equal(v.words[UNK], '<unk>');
    assert.ok(v.ids.has('word0') && v.ids.has('common'), 'train words are in the vocabulary');
    assert.ok(!v.ids.has('word4'), 'a word seen only in meta-test classes is not');
    assert.equal(v.words[2], 'about', 'most frequent first, ties in code-unit order');
    assert.deepEqual(fam.inputShape, [6]);
    const t = fam.sample(3);
    assert.equal(t.support.n, 2);
    assert.equal(t.query.x.length, 4 * 6);
    // "Word0 common text number 0 about word0 …" (> 6 tokens) is truncated to 6 ids.
    for (let i = 0; i < t.support.n; i++) assert.ok(t.support.x.subarray(i * 6, i * 6 + 6).every((id) => id !== PAD), 'long texts fill maxLength');
    assert.deepEqual(fam.sample(3), t, 'the same seed draws the same task');
    const held = createFewshotText(spec(path, { maxLength: 20 })).sample(1, 'test');
    const row = [...held.query.x.subarray(0, 20)];
    assert.equal(row[0], UNK, '"word4" is unknown to the vocabulary');
    assert.deepEqual(row.slice(10), new Array(10).fill(PAD), 'short texts are padded with <pad>');
    const small = createFewshotText(spec(path, { vocab: { size: 5, minCount: 1 } }));
    assert.equal(small.vocabulary.words.length, 5, 'vocab.size caps the vocabulary');
    const rare = createFewshotText(spec(path, { vocab: { size: 1000, minCount: 5 } }));
    assert.ok(!rare.vocabulary.ids.has('0'), 'a word seen 3 times in meta-train is below minCount 5');
    assert.ok(rare.vocabulary.ids.has('more0'), 'one seen 6 times is kept');
  });

  test('FewRel: relation classes, head and tail wrapped in marker tokens (in the vocabulary)', () => {
    const path = writeFewRelFixture(5, 3);
    const data = readTextDataset(path);
    assert.equal(data.format, 'fewrel');
    assert.deepEqual(data.classes[0]!.texts[1], ['the', '[E1]', 'thing1', '[/E1]', 'verb0', 'the', '[E2]', 'other1', '[/E2]', 'in', 'place0', '.']);
    const fam = createFewshotText(spec(path, { maxLength: 12 }));
    assert.deepEqual(fam.vocabulary.words.slice(0, 6), ['<pad>', '<unk>', '[E1]', '[/E1]', '[E2]', '[/E2]']);
    const t = fam.sample(0);
    assert.equal(t.support.x[1], 2, 'the [E1] marker id');
  });

  test('GloVe vectors: the rows of the vocabulary, in id order; words without a vector reported', () => {
    const path = writeJsonlFixture(6, 4);
    const fam = createFewshotText(spec(path));
    const glove = join(fixtureDir(), 'glove.txt');
    writeFileSync(glove, 'common 0.5 -1 2\nunrelated 9 9 9\nword0 1 2 3\nwörd 7 7 7\n');
    const m = readGlove(glove, fam.vocabulary);
    assert.equal(m.dim, 3);
    const row = (w: string) => [...m.data.subarray(fam.vocabulary.ids.get(w)! * 3, fam.vocabulary.ids.get(w)! * 3 + 3)];
    assert.deepEqual(row('common'), [0.5, -1, 2]);
    assert.deepEqual(row('word0'), [1, 2, 3]);
    assert.ok(m.missing.includes(PAD) && m.missing.includes(fam.vocabulary.ids.get('text')!));
    writeFileSync(glove, 'common 0.5 -1 2\nword0 1 2\n');
    refused(() => readGlove(glove, fam.vocabulary), /line 2: 2 values, the file's first line has 3/);
  });

  test('a shard of text tasks computes end to end (MLP on token ids): finite gradient and losses', async () => {
    const s = spec(writeJsonlFixture(6, 4));
    const r = await computeShard(s, initParams(s).data, { kind: 'train', taskSeeds: [1, 2] });
    assert.equal(r.kind, 'train');
    if (r.kind === 'train') {
      assert.ok(Number.isFinite(r.preLossSum) && r.grad.every(Number.isFinite));
      assert.ok(r.grad.some((g) => g !== 0));
    }
  });

  test('bad data: an empty text, a line that is not JSON, a class with too few texts, a bad entity span', () => {
    const dir = fixtureDir();
    const lines = (l: string[]) => writeJsonlFixture(0, 0, fixtureDir(), l);
    refused(() => createFewshotText(spec(lines(['{"label":"a","text":"x y"}', '{"label":"b","text":"  ... "}'.replace('...', '')]))), /line 2: empty text/);
    refused(() => createFewshotText(spec(lines(['{"label":"a","text":"x"}', '{"label": "b", text: 1}']))), /line 2 is not JSON/);
    refused(() => createFewshotText(spec(lines(['{"label":"a"}']))), /line 1: expected \{"label"/);
    const few = lines(['a', 'b', 'c', 'd', 'e'].flatMap((l) => [`{"label":"${l}","text":"one ${l}"}`, `{"label":"${l}","text":"two ${l}"}`]));
    refused(() => createFewshotText(spec(few)), /fewer than shots \+ queries = 3 texts: a \(2\)/);
    const fewrel = join(dir, 'bad.json');
    writeFileSync(fewrel, JSON.stringify({ P1: [{ tokens: ['a', 'b'], h: ['a', 'Q1', [[0]]], t: ['b', 'Q2', [[5]]] }] }));
    refused(() => readTextDataset(fewrel), /relation P1 instance 0 \(tail "t"\) has no valid entity span/);
    writeFileSync(fewrel, JSON.stringify({ P1: [{ tokens: [], h: [], t: [] }] }));
    refused(() => readTextDataset(fewrel), /empty text/);
    refused(() => readTextDataset(join(dir, 'none.jsonl')), /no such file/);
  });
});

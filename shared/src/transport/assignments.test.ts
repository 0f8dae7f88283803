import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { metaloop } from '../gen/metaloop.js';
import { inlineGroups } from './assignments.js';

describe('inlineGroups: results in as few requests as fit inline', () => {
  const bytes = (n: number) => new Uint8Array(n).fill(7);
  const encoded = (g: Uint8Array[]) => metaloop.ResultBatch.encode({ results: g }).finish().byteLength;

  test('groups consecutive results, each group\'s ResultBatch within the limit, order kept', () => {
    const results = [bytes(300_000), bytes(300_000), bytes(300_000), bytes(100), bytes(500_000)];
    const limit = 768 * 1024;
    const groups = inlineGroups(results, limit);
    assert.deepEqual(groups.map((g) => g.map((r) => r.byteLength)), [[300_000, 300_000], [300_000, 100], [500_000]]);
    for (const g of groups) assert.ok(encoded(g) <= limit, `${encoded(g)} bytes`);
    assert.deepEqual(groups.flat(), results, 'every result once, in order');
  });

  test('a limit met exactly: the framing (tag and length) counts', () => {
    const r = bytes(1000);
    const one = encoded([r]);
    assert.equal(inlineGroups([r, r], 2 * one).length, 1);
    assert.equal(inlineGroups([r, r], 2 * one - 1).length, 2);
  });

  test('a result above the limit alone is its own group (it goes through the stash); no limit: one group', () => {
    assert.deepEqual(inlineGroups([bytes(10), bytes(2000), bytes(10)], 1000).map((g) => g.length), [1, 1, 1]);
    assert.equal(inlineGroups([bytes(10), bytes(2_000_000)], Infinity).length, 1);
  });
});

/**
 * wasm's UnsortedSegmentSum (the project's, ./unsorted-segment-sum.ts) against tfjs-backend-cpu's
 * own kernel: random rows, duplicate ids, an id out of range (dropped), inner dims of any rank.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Rng } from '@metaloop/shared';
import * as tf from '@tensorflow/tfjs-core';
import { randomTensor } from '@metaloop/testing/numerics';
import { initTestBackend } from '../testing/backend.js';
import '../tfjs-setup.js';

describe('UnsortedSegmentSum on wasm', () => {
  before(async () => {
    await initTestBackend('wasm');
  });
  after(async () => {
    await tf.setBackend('cpu');
  });

  const cases: [number, number[], number][] = [[9, [3], 4], [5, [2, 3], 7], [1, [1], 1]];
  for (const [rows, inner, segments] of cases) {
    test(`${rows} rows of [${inner.join(', ')}] into ${segments} segments equals tfjs-backend-cpu`, async () => {
      const rng = new Rng(rows * 31 + segments);
      const xs = randomTensor(rng, [rows, ...inner]);
      const values = await xs.data();
      const ids = Array.from({ length: rows }, (_, i) => (i === rows - 1 && rows > 1 ? segments : rng.int(segments)));
      const run = async (backend: string) => {
        await tf.setBackend(backend);
        return tf.tidy(() => tf.unsortedSegmentSum(tf.tensor(values, [rows, ...inner]), tf.tensor1d(ids, 'int32'), segments).dataSync());
      };
      const want = await run('cpu');
      const got = await run('wasm');
      assert.equal(got.length, segments * inner.reduce((a, b) => a * b, 1));
      assert.deepEqual(Array.from(got), Array.from(want));
      xs.dispose();
    });
  }
});

// node --test bench/lib/ — the transport suite's verdicts (bench/lib/verdict.mjs).
import assert from 'node:assert/strict';
import test from 'node:test';
import { meanDifference, overheadVerdict, ratioInterval, ratioVerdict, t975 } from './verdict.mjs';

const steady = (mean, n, jitter) => Array.from({ length: n }, (_, i) => mean + (i % 2 === 0 ? jitter : -jitter));

test('meanDifference: Welch half-width of the difference of means', () => {
  const d = meanDifference([1, 2, 3, 4], [3, 4, 5, 6]);
  assert.equal(d.diff, 2);
  // Both variances 5/3, n = 4: se = sqrt(2 * 5/12), df = 6.
  assert.ok(Math.abs(d.df - 6) < 1e-9);
  assert.ok(Math.abs(d.half - 2.447 * Math.sqrt(10 / 12)) < 1e-9);
  assert.equal(meanDifference([1], [2, 3]).half, Infinity, 'one sample cannot be told apart from noise');
  assert.equal(t975(0.5), Infinity);
  assert.equal(t975(1000), 1.96);
});

test('a negative overhead is inconclusive, never met', () => {
  const inproc = steady(40, 80, 5);
  const dist = steady(39, 80, 5);
  const d = meanDifference(inproc, dist);
  assert.ok(d.diff < 0);
  assert.equal(overheadVerdict(d.diff, d.half, 3 * 0.4), 'inconclusive');
  // Even with no noise at all.
  assert.equal(overheadVerdict(-0.5, 0, 1.2), 'inconclusive');
});

test('an overhead smaller than its noise is inconclusive; above it, met or missed by the whole interval', () => {
  assert.equal(overheadVerdict(0.5, 0.8, 1.2), 'inconclusive', 'within noise');
  assert.equal(overheadVerdict(0.9, 0.2, 1.2), 'met', '[0.7, 1.1] within 1.2');
  assert.equal(overheadVerdict(5, 1, 1.2), 'missed', '[4, 6] above 1.2');
  assert.equal(overheadVerdict(1.3, 0.5, 1.2), 'inconclusive', 'the target lies inside [0.8, 1.8]');
  assert.equal(overheadVerdict(NaN, 0, 1.2), 'inconclusive');
  assert.equal(overheadVerdict(2, Infinity, 1.2), 'inconclusive');
});

test('ratio: the overhead interval carried over; target inside the interval is inconclusive', () => {
  const r = ratioInterval(40, 10, 2);
  assert.equal(r.value, 40 / 50);
  assert.equal(r.lo, 40 / 52);
  assert.equal(r.hi, 40 / 48);
  assert.equal(ratioVerdict(r, 0.85), 'missed');
  assert.equal(ratioVerdict(r, 0.7), 'met');
  assert.equal(ratioVerdict(r, 0.8), 'inconclusive');
  assert.equal(ratioVerdict(ratioInterval(40, 0, Infinity), 0.85), 'inconclusive');
});

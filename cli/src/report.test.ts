import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { meanCi } from './eval.js';
import { renderReport } from './report.js';
import { escapeHtml, svgPlot } from './svg-plot.js';

describe('report and meta-test helpers', () => {
  it('svgPlot: one polyline point per value, escaped names, log axis over a wide range', () => {
    const svg = svgPlot({ id: 'p', title: 'a<b', xLabel: 'x', yLabel: 'y' }, [
      { name: 'one & two', color: '#000', xs: [1, 2, 3, 4], ys: [100, 10, 1, 0.1], markers: true },
    ]);
    const pts = /points="([^"]*)"/.exec(svg)![1]!.split(' ');
    assert.equal(pts.length, 4);
    assert.equal((svg.match(/<circle /g) ?? []).length, 4);
    assert.match(svg, /data-series="one &amp; two"/);
    assert.match(svg, /a&lt;b/);
    assert.match(svg, /\(log\)/);
    // equal steps on a log axis: equal pixel gaps
    const ys = pts.map((p) => Number(p.split(',')[1]));
    assert.ok(Math.abs(ys[1]! - ys[0]! - (ys[3]! - ys[2]!)) < 0.2);
    assert.equal(escapeHtml(`"'<>&`), '&quot;&#39;&lt;&gt;&amp;');
  });

  it('renderReport: the spec, the timings, an empty history says so', () => {
    const html = renderReport({
      record: { runId: 'r-1', name: 'n', state: 'running', step: 0, steps: 5, spec: { name: '<x>' } },
      history: { version: 1, runId: 'r-1', steps: [], preLoss: [], postLoss: [], timeMs: [], evals: [], checkpoints: [] },
    });
    assert.match(html, /no data recorded/);
    assert.match(html, /<pre id="spec">name: &lt;x&gt;\n<\/pre>/);
    assert.doesNotMatch(html, /<x>/);
  });

  it('renderReport: evaluations with accuracy get an accuracy plot; CIs become error bars and ± in the table', () => {
    const ev = (step: number) => ({ step, tasks: 10, innerSteps: [1, 5], preLoss: 1.5, postLoss: [1, 0.5], accuracy: [0.4, 0.6], ci95: [0.05, 0.04], lossCi95: [0.1, 0.08], preLossCi95: 0.2, timeMs: step });
    const html = renderReport({
      record: { runId: 'r-2', state: 'succeeded' },
      history: { version: 1, runId: 'r-2', steps: [1, 2], preLoss: [2, 1.8], postLoss: [1.9, 1.7], timeMs: [1, 2], evals: [ev(1), ev(2)], checkpoints: [] },
    });
    assert.match(html, /id="eval-accuracy"/);
    assert.equal((html.match(/<line class="ci"/g) ?? []).length, 2 * 3 + 2 * 2);
    assert.match(html, /0\.5 ± 0\.08 \(acc 0\.6 ± 0\.04\)/);
  });

  it('meanCi: mean, sample std and 1.96·s/√n', () => {
    const m = meanCi([1, 2, 3, 4]);
    assert.equal(m.mean, 2.5);
    assert.ok(Math.abs(m.std - Math.sqrt(5 / 3)) < 1e-12);
    assert.ok(Math.abs(m.ci95 - (1.96 * Math.sqrt(5 / 3)) / 2) < 1e-12);
    assert.equal(meanCi([7]).ci95, 0);
    assert.ok(Number.isNaN(meanCi([]).mean));
  });
});


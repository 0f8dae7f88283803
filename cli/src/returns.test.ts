/**
 * Meta-RL runs in the CLI (./returns.ts through format.ts, watch.ts, report.ts): status, progress,
 * listings, events and the report show returns and the gain from adaptation, never a loss.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metaloop } from '@metaloop/shared';
import { listTable, progressLine, recordJson, statusLines, summaryLines } from './format.js';
import { renderReport } from './report.js';
import { barLine, eventJson, eventLine } from './watch.js';

const lastEval: metaloop.IEvalSummary = {
  step: 40,
  tasks: 40,
  innerSteps: [1, 2, 3],
  preReturn: -43.2,
  postReturn: [-31.7, -22.7, -18.0],
  preReturnCi95: 4.1,
  returnCi95: [3.9, 3.0, 1.8],
  ci95: [3.9, 3.0, 1.8],
  gain: [11.5, 20.5, 25.2],
  gainCi95: [0.8, 1.9, 2.8],
};
const record = metaloop.RunRecord.create({
  runId: 'nav-1', name: 'nav', state: metaloop.RunState.RUN_STATE_RUNNING, step: 40, steps: 60, rl: true, preReturn: -40.0, postReturn: -29.5, lastEval,
});

describe('meta-RL figures in the CLI', () => {
  it('status, progress and summary lines speak of returns and gains', () => {
    const text = [...statusLines(record), progressLine(record), ...summaryLines(record), barLine(record, 200)].join('\n');
    assert.doesNotMatch(text, /loss/i);
    assert.match(text, /train return: -40\.0 -> -29\.5/);
    assert.match(text, /return -43\.2 ± 4\.1 before adaptation, -31\.7 ± 3\.9 after 1 step \(gain \+11\.5 ± 0\.80\)/);
    assert.match(text, /eval at step 40: return -18\.0 ± 1\.8 after 3 steps \(gain \+25\.2 ± 2\.8\)/);
    assert.match(text, /eval@40 return -18\.0@3 \(gain \+25\.2±2\.8@3\)/);
    const j = recordJson(record) as { rl: boolean; preReturn: number; lastEval: { gain: number[]; gainCi95: number[] } };
    assert.equal(j.rl, true);
    assert.deepEqual(j.lastEval.gain, [11.5, 20.5, 25.2]);
  });

  it('listings give RL runs return columns; supervised rows keep their losses', () => {
    const sup = metaloop.RunRecord.create({ runId: 'sin-1', state: metaloop.RunState.RUN_STATE_RUNNING, step: 5, steps: 9, postLoss: 0.25 });
    const [head, rl, s] = listTable([record, sup]);
    assert.match(head!, /TRAIN RETURN\s+EVAL RETURN/);
    assert.match(rl!, /-29\.5\s+-18\.0 @40 \(3 steps\)/);
    assert.match(s!, /0\.250/);
  });

  it('events: step and eval lines and JSON carry returns', () => {
    const step = { runId: 'nav-1', kind: metaloop.Event.Kind.KIND_STEP, step: 3, rl: true, preReturn: -50, postReturn: -41, preLoss: 0, postLoss: 0 };
    assert.match(eventLine(step), /STEP return -50\.0 -> -41\.0/);
    assert.deepEqual(eventJson(step).preReturn, -50);
    assert.equal('preLoss' in eventJson(step), false);
    const ev = { runId: 'nav-1', kind: metaloop.Event.Kind.KIND_EVAL, step: 40, eval: lastEval };
    assert.match(eventLine(ev), /EVAL 40 tasks: return -43\.2 -> -31\.7@1 -22\.7@2 -18\.0@3 \(gain \+25\.2±2\.8@3\)/);
    assert.deepEqual((eventJson(ev).eval as { gainCi95: number[] }).gainCi95, [0.8, 1.9, 2.8]);
  });

  it('the report plots returns and the gain from adaptation, with CI bars', () => {
    const ev = (step: number) => ({ step, tasks: 40, innerSteps: [1, 3], preLoss: 0, postLoss: [], accuracy: [], ci95: [], preReturn: -44, postReturn: [-31, -18], preReturnCi95: 4, returnCi95: [3, 2], gain: [12, 25], gainCi95: [1, 2], timeMs: step });
    const html = renderReport({
      record: { runId: 'nav-1', state: 'succeeded' },
      history: { version: 1, runId: 'nav-1', steps: [1, 2], preLoss: [0, 0], postLoss: [0, 0], preReturn: [-60, -55], postReturn: [-50, -45], timeMs: [1, 2], evals: [ev(1), ev(2)], checkpoints: [] },
    });
    for (const id of ['train-return', 'eval-return', 'eval-gain']) assert.match(html, new RegExp(`id="${id}"`));
    assert.doesNotMatch(html, /id="train-loss"|id="eval-loss"/);
    assert.match(html, /data-series="gain after 3 steps"/);
    assert.match(html, /<th>return after 1 step \(gain\)<\/th>/);
    assert.match(html, /-18 ± 2 \(gain 25 ± 2\)/);
    assert.equal((html.match(/<line class="ci"/g) ?? []).length, 2 * 3 + 2 * 2);
  });
});

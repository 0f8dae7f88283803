/** Issue 16 items 6 and 7: what the CLI prints about a run says what each number is, and only what is true. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metaloop, type RunStateName, stateToProto } from '@metaloop/shared';
import { listTable, progressLine, recordJson, statusLines } from './format.js';
import { barLine, eventJson, eventLine } from './watch.js';

const spec = JSON.stringify({ eval: { every: 500, tasks: 600 }, outer: { steps: 1000 } });

function record(state: RunStateName, step: number, classification: boolean): metaloop.IRunRecord {
  return {
    runId: 'glyphs-1a2b3c',
    state: stateToProto(state),
    step,
    steps: 1000,
    specJson: spec,
    preLoss: step > 0 ? 1.61 : 0,
    postLoss: step > 0 ? 1.2 : 0,
    stepsPerSec: step > 0 ? 12.5 : 0,
    tasksPerSec: step > 0 ? 200 : 0,
    lastEval:
      step >= 500
        ? {
            step: 500,
            tasks: 600,
            innerSteps: [1, 10],
            preLoss: 1.61,
            postLoss: [1.37, 0.98],
            lossCi95: [0.04, 0.03],
            ...(classification ? { accuracy: [0.452, 0.612], ci95: [0.012, 0.011] } : { ci95: [0.04, 0.03] }),
          }
        : null,
  };
}

describe('run output', () => {
  it('before the first step: no made-up train loss', () => {
    const r = record('running', 0, false);
    for (const text of [progressLine(r), barLine(r, 160), ...statusLines(r), ...listTable([r])]) {
      assert.doesNotMatch(text, /0\.00+ ?(->|→) ?0\.00+/, text);
    }
    assert.match(progressLine(r), /train loss - \(no step yet\)/);
  });

  it('classification: accuracy ± CI in the progress line, the bar, status and list, each number named', () => {
    const r = record('running', 700, true);
    assert.match(progressLine(r), /eval at step 500: accuracy 61\.2% ± 1\.1 after 10 steps/);
    assert.match(barLine(r, 200), /eval@500 acc 61\.2%±1\.1/);
    const status = statusLines(r).join('\n');
    assert.match(status, /last eval: {2}at step 500 on 600 tasks: loss 1\.61 before adaptation, 1\.37 ± 0\.040 after 1 step, 0\.980 ± 0\.030 after 10 steps; accuracy 45\.2% ± 1\.2 after 1 step, 61\.2% ± 1\.1 after 10 steps/);
    const [head, row] = listTable([r]);
    assert.match(head!, /EVAL LOSS\s+EVAL ACCURACY/);
    assert.match(row!, /0\.980 @500 \(10 steps\)\s+61\.2% ± 1\.1/);
  });

  it('regression: the evaluation figure is named a loss', () => {
    const r = record('running', 700, false);
    assert.match(progressLine(r), /eval at step 500: loss 0\.980 ± 0\.030 after 10 steps/);
    assert.match(barLine(r, 200), /eval@500 loss 0\.980/);
    assert.match(listTable([r])[1]!, /\s-\s+\d{4}-|\s-$/);
  });

  it('a paused run shows no ETA; a running one does', () => {
    assert.doesNotMatch(barLine(record('paused', 700, false), 200), /ETA/);
    assert.match(barLine(record('running', 700, false), 200), /ETA \d/);
  });

  it('while an evaluation runs (the final one included) the line says so', () => {
    const final = { ...record('running', 1000, true) };
    assert.match(progressLine(final), /evaluating 600 held-out tasks…/);
    assert.match(barLine(final, 200), /evaluating 600 held-out tasks…/);
    assert.doesNotMatch(progressLine(record('running', 700, true)), /evaluating/);
  });

  it('the evaluation in flight shows its progress: the progress line, the bar, status, status --json and event lines', () => {
    const r = { ...record('running', 1000, true), evalTasksDone: 240, evalTasks: 600 };
    assert.match(progressLine(r), /evaluating 240\/600 held-out tasks…/);
    assert.match(barLine(r, 200), /evaluating 240\/600 held-out tasks…/);
    assert.match(statusLines(r).join('\n'), /now: {8}evaluating 240\/600 held-out tasks…/);
    assert.deepEqual(recordJson(r).evaluating, { tasksDone: 240, tasks: 600 });
    assert.equal(recordJson(record('running', 700, true)).evaluating, null);
    // A periodic evaluation too (not only the final one), and none once the run stopped running.
    assert.match(progressLine({ ...record('running', 500, false), evalTasksDone: 0, evalTasks: 600 }), /evaluating 0\/600 held-out tasks…/);
    assert.doesNotMatch(progressLine({ ...r, state: stateToProto('paused') }), /evaluating/);
    const ev = { runId: 'r', kind: metaloop.Event.Kind.KIND_EVAL_PROGRESS, step: 1000, evalTasksDone: 240, evalTasks: 600, timestampMs: 0 };
    assert.match(eventLine(ev), /step 1000 EVALUATING 240\/600 held-out tasks$/);
    assert.deepEqual(eventJson(ev), { runId: 'r', kind: 'eval-progress', step: 1000, timestampMs: 0, evalTasksDone: 240, evalTasks: 600 });
  });

  it('a recorded step (no speed in the history) does not end with "- steps/s"', () => {
    const line = eventLine({ runId: 'r', kind: metaloop.Event.Kind.KIND_STEP, step: 3, preLoss: 1, postLoss: 0.5, timestampMs: 0 });
    assert.doesNotMatch(line, /steps\/s/);
    assert.match(eventLine({ runId: 'r', kind: metaloop.Event.Kind.KIND_STEP, step: 3, preLoss: 1, postLoss: 0.5, stepsPerSec: 4, timestampMs: 0 }), /4\.00 steps\/s$/);
  });
});

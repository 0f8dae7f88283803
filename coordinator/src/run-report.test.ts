/** Issue 16 item 7: the training speed leaves out the time spent evaluating, the evaluation in flight too. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RunClock } from './run-report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RunClock', () => {
  it('steps/s does not sink while an evaluation runs, nor after it', async () => {
    const clock = new RunClock();
    clock.start();
    await sleep(100);
    clock.stepsThisSession = 10;
    const training = clock.rates(4).stepsPerSec;
    clock.beginEvaluation();
    await sleep(300);
    // Counting the 300 ms of evaluation would show about a quarter of the training speed.
    const during = clock.rates(4);
    assert.ok(during.stepsPerSec >= training * 0.9, `during the evaluation: ${during.stepsPerSec} steps/s, training ran at ${training}`);
    assert.equal(during.tasksPerSec, during.stepsPerSec * 4);
    clock.endEvaluation();
    const after = clock.rates(4).stepsPerSec;
    assert.ok(after >= training * 0.9, `after the evaluation: ${after} steps/s, training ran at ${training}`);
    assert.ok(clock.seconds() >= 0.4, 'the run time still counts the evaluation');
  });
});

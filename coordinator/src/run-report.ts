/**
 * What a run tells the world while it trains: its wall clock (running time over all coordinator
 * sessions, rates of this session), the run record in KV and the history beside the checkpoints
 * (each written in order, the latest content winning; failures logged, never fatal) and progress
 * events on `<prefix>.events.<run>`. RunLoop owns one.
 */
import { metaloop, type Bus, type Logger, type RunStore, type Subjects } from '@metaloop/shared';
import type { RunHistory } from './history.js';

export interface ReportContext {
  readonly transport: Pick<RunStore, 'putRun' | 'putHistory'> & Pick<Bus, 'publish'>;
  readonly subjects: Subjects;
  readonly logger: Logger;
  readonly recordIntervalMs: number;
}

/** Running time of a run: before this session, this session's closed spans, the open one. */
export class RunClock {
  private runningSince: number | null = null;
  private sessionSeconds = 0;
  /** Steps applied in this coordinator session (rates are of this session). */
  stepsThisSession = 0;
  /** Time this session spent evaluating: not in the steps/s (training speed). */
  private evalSeconds = 0;
  /** When the evaluation in flight began (null: none). */
  private evalSince: number | null = null;

  constructor(private readonly secondsBefore = 0) {}

  start(): void {
    if (this.runningSince === null) this.runningSince = Date.now();
  }

  pause(): void {
    if (this.runningSince !== null) {
      this.sessionSeconds += (Date.now() - this.runningSince) / 1000;
      this.runningSince = null;
    }
  }

  private session(): number {
    return this.sessionSeconds + (this.runningSince === null ? 0 : (Date.now() - this.runningSince) / 1000);
  }

  /** Wall time spent running (all sessions). */
  seconds(): number {
    return this.secondsBefore + this.session();
  }

  /** An evaluation begins: from now until endEvaluation() the time is left out of the training rates. */
  beginEvaluation(): void {
    this.evalSince ??= Date.now();
  }

  /** The evaluation in flight ended. */
  endEvaluation(): void {
    if (this.evalSince !== null) this.evalSeconds += (Date.now() - this.evalSince) / 1000;
    this.evalSince = null;
  }

  /**
   * Training speed of this session: running time less the time spent evaluating, the evaluation
   * in flight included (the speed shown while the final evaluation runs does not sink).
   */
  rates(metaBatch: number): { stepsPerSec: number; tasksPerSec: number } {
    const evaluating = this.evalSince === null ? 0 : (Date.now() - this.evalSince) / 1000;
    const s = this.session() - this.evalSeconds - evaluating;
    const stepsPerSec = s > 0 ? this.stepsThisSession / s : 0;
    return { stepsPerSec, tasksPerSec: stepsPerSec * metaBatch };
  }
}

export class RunReporter {
  private recordChain: Promise<void> = Promise.resolve();
  private historyChain: Promise<void> = Promise.resolve();
  /** When the record / history was last queued for writing. */
  lastRecordMs = 0;
  lastHistoryMs = 0;

  constructor(
    private readonly ctx: ReportContext,
    private readonly runId: string,
    private readonly history: RunHistory,
    private readonly record: () => metaloop.RunRecord,
    private readonly rates: () => { stepsPerSec: number; tasksPerSec: number },
  ) {}

  /** Queue a write of the current record (writes stay in order; the latest content wins). */
  writeRecord(): void {
    this.lastRecordMs = Date.now();
    this.recordChain = this.recordChain.then(async () => {
      try {
        await this.ctx.transport.putRun(this.runId, metaloop.RunRecord.encode(this.record()).finish());
      } catch (err) {
        this.ctx.logger.warn('writing the run record failed', { run: this.runId, error: String(err) });
      }
    });
  }

  /** Whether no record was written for `recordIntervalMs`. */
  recordDue(): boolean {
    return Date.now() - this.lastRecordMs >= this.ctx.recordIntervalMs;
  }

  /** Queue a write of the history when it changed (in order; failures are logged, never fatal). */
  writeHistory(): void {
    this.lastHistoryMs = Date.now();
    if (!this.history.changed) return;
    const bytes = this.history.encode();
    this.historyChain = this.historyChain.then(async () => {
      try {
        await this.ctx.transport.putHistory(this.runId, bytes);
      } catch (err) {
        this.ctx.logger.warn('writing the run history failed', { run: this.runId, error: String(err) });
      }
    });
  }

  /** Waits until queued record writes are done. */
  flush(): Promise<void> {
    return this.recordChain;
  }

  /** Waits until queued record and history writes are done. */
  async flushAll(): Promise<void> {
    await this.recordChain;
    await this.historyChain;
  }

  /** Publish a progress event (step, rates and time added here); failures are logged at debug. */
  emit(step: number, event: metaloop.IEvent): void {
    const { stepsPerSec, tasksPerSec } = this.rates();
    try {
      this.ctx.transport.publish(
        this.ctx.subjects.events(this.runId),
        metaloop.Event.encode({ runId: this.runId, step, timestampMs: Date.now(), stepsPerSec, tasksPerSec, ...event }).finish(),
      );
    } catch (err) {
      this.ctx.logger.debug('publishing an event failed', { run: this.runId, error: String(err) });
    }
  }
}

/**
 * The coordinator: serves the control API, owns the active runs (one RunLoop each), routes shard
 * results to them, counts rejected results by reason, and resumes active runs from their latest
 * checkpoint when it starts.
 */
import { randomBytes } from 'node:crypto';
import { layoutSize, metaloop, paramLayout, parseSpec, SpecError, type Closer, type ResultAck, type ResultMessage, type RunSpec } from '@metaloop/shared';
import { kindFromProto, RejectCounter, type RejectReason } from './result.js';
import { decodeResult } from './validate.js';
import { serveApi } from './api.js';
import { exportBlob, historyBlob, serveDataApi, type RunBlob } from './artifacts.js';
import { RunHistory } from './history.js';
import { ConflictError, LifecycleError, UnknownRunError } from './errors.js';
import { resumePoint, type CheckpointData } from './checkpoint.js';
import { compileCoordinatorOptions, type CompiledCoordinatorOptions, type CoordinatorOptions } from './coordinator-options.js';
import { isTerminal, stateFromProto } from './run-state.js';
import type { RunContext } from './run-context.js';
import { RunLoop } from './run-loop.js';
import { FairShare } from './scheduler.js';
import { WorkerView } from './workers.js';
import { DirectSender, queueSender } from './dispatch.js';
import { initialParams, initWeightsOf, storeInitialCheckpoint } from './init-weights.js';
import { serveUploads, UploadStaging } from './uploads.js';

export type CoordinatorState = 'created' | 'running' | 'closing' | 'closed';

const ACCEPTED: ResultAck = { accepted: true };

export class Coordinator {
  readonly options: CompiledCoordinatorOptions;
  /** Rejected results by reason, since start. */
  readonly rejects = new RejectCounter();
  private stateName: CoordinatorState = 'created';
  private readonly active = new Map<string, RunLoop>();
  /** Runs that ended in this process (their late results are stale, not unknown). */
  private readonly ended = new Set<string>();
  private readonly closers: Closer[] = [];
  private refreshTimer: ReturnType<typeof setInterval> | undefined;
  private closed: { promise: Promise<void>; resolve: () => void };
  private closePromise: Promise<void> | null = null;
  private readonly readyState: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void };
  private readonly ctx: RunContext;
  /** Live workers from their heartbeats (the `workers` API verb, direct dispatch, the live-workers metric). */
  readonly workers: WorkerView;
  /** Blobs brought by the `upload` verb (θ₀ of `init: weights` runs) until a submit takes them. */
  readonly uploads: UploadStaging;

  private constructor(options: CompiledCoordinatorOptions) {
    this.options = options;
    let resolve = () => {};
    const promise = new Promise<void>((r) => (resolve = r));
    this.closed = { promise, resolve };
    let ok = () => {};
    let fail: (err: unknown) => void = () => {};
    const ready = new Promise<void>((res, rej) => {
      ok = res;
      fail = rej;
    });
    ready.catch(() => {});
    this.readyState = { promise: ready, resolve: ok, reject: fail };
    this.workers = new WorkerView(15_000, options.logger.child('workers'));
    // θ₀ as a TensorBundle: 4 bytes a parameter and the tensors' names and shapes.
    this.uploads = new UploadStaging({ maxBlobBytes: options.limits.maxParams * 4 + (1 << 20) });
    const fixed = options.maxInFlightShards;
    const fairShare = new FairShare(() => (fixed > 0 ? fixed : Math.max(8, 2 * this.workers.count())));
    this.ctx = {
      transport: options.transport,
      sender: options.dispatch === 'direct' ? new DirectSender(options.transport, this.workers) : queueSender(options.transport),
      subjects: options.subjects,
      logger: options.logger,
      resultTimeoutMs: options.resultTimeoutMs,
      recordIntervalMs: options.recordIntervalMs,
      maxShardFailures: options.maxShardFailures,
      rejects: this.rejects,
      observer: options.metrics,
      fairShare,
      speculativeFactor: options.speculativeFactor,
      speculativeMinMs: options.speculativeMinMs,
      liveWorkers: () => this.workers.count(),
    };
  }

  // async so that invalid options reject the returned promise rather than throw.
  // eslint-disable-next-line @typescript-eslint/require-await
  static async create(options: CoordinatorOptions): Promise<Coordinator> {
    return new Coordinator(compileCoordinatorOptions(options));
  }

  get state(): CoordinatorState {
    return this.stateName;
  }

  /** Resolves once `run()` serves the API and has resumed the active runs; rejects if it failed. */
  ready(): Promise<void> {
    return this.readyState.promise;
  }

  /**
   * Serve the API, consume results and resume the active runs of KV; resolves after `close()`.
   * Refuses a second call.
   */
  async run(): Promise<void> {
    if (this.stateName !== 'created') throw new LifecycleError('run the coordinator', this.stateName);
    this.stateName = 'running';
    const { transport, subjects: subj, logger } = this.options;
    try {
      this.closers.push(this.workers.watch(transport, subj));
      // One worker view: the `workers` verb and the live-workers metric count the same workers.
      if (this.options.metrics) this.closers.push(this.options.metrics.watchWorkers(this.workers));
      this.closers.push(
        await transport.consumeResults((msg) => {
          this.onResult(msg);
        }),
      );
      // Hot-path results (direct dispatch): one request each, the reply is the ack.
      // A worker's reply is held for its next assignment only while it holds none of our shards.
      this.closers.push(transport.serveResults((msg) => this.onResult(msg), { holdReply: (token) => this.ctx.sender.idle(token) }));
      this.closers.push(
        ...serveApi(
          transport,
          subj,
          {
            submit: (yaml, source, priority) => this.submit(yaml, source, priority),
            workers: () => Promise.resolve(this.workers.list()),
            list: (all) => this.list(all),
            status: (id) => this.status(id),
            cancel: (id) => this.cancel(id),
            pause: (id) => this.pause(id),
            resume: (id) => this.resume(id),
          },
          logger,
        ),
        serveUploads(transport, subj, this.uploads, logger.child('uploads')),
        ...serveDataApi(
          transport,
          subj,
          {
            exportBlob: (id, selector) => this.exportParams(id, selector),
            history: async (id) => historyBlob(await this.status(id), await this.history(id)),
          },
          logger,
        ),
      );
      this.refreshTimer = setInterval(() => {
        for (const loop of this.active.values()) loop.refreshRecord();
      }, Math.max(100, Math.floor(this.options.recordIntervalMs / 2)));
      if (this.options.resume) await this.resumeActiveRuns();
      logger.info('coordinator running', { transport: transport.address, prefix: subj.prefix });
      this.readyState.resolve();
    } catch (err) {
      this.readyState.reject(err);
      await this.close();
      throw err;
    }
    await this.closed.promise;
  }

  /** Stop serving, stop the run loops (they stay active in KV for a restart). Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    this.stateName = 'closing';
    this.readyState.reject(new LifecycleError('serve', 'closed'));
    clearInterval(this.refreshTimer);
    for (const c of this.closers.splice(0)) {
      await c.close().catch((err: unknown) => this.options.logger.warn('closing a subscription failed', { error: String(err) }));
    }
    await Promise.all([...this.active.values()].map((loop) => loop.stop().catch(() => {})));
    this.active.clear();
    this.stateName = 'closed';
    this.closed.resolve();
  }

  // ---- API operations (also usable as a library) ----

  /** Validate and start a run; returns its first record. */
  async submit(specText: string, source = 'run spec', priority = 0): Promise<metaloop.IRunRecord> {
    this.assertRunning('submit a run');
    const spec = parseSpec(specText, source);
    this.checkLimits(spec, source);
    if (!Number.isInteger(priority) || priority < 0 || priority > 1000) {
      throw new SpecError([{ path: 'priority', message: `expected a whole number 1..1000 (0 = the spec's workers.priority), got ${priority}` }], source);
    }
    const weights = initWeightsOf(spec);
    if (!weights && spec.task.family === 'fewshot-text' && spec.task.vectors) {
      // The vectors are θ₀ (made by the CLI, which reads the data); without them the run would silently start elsewhere.
      throw new SpecError(
        [{ path: 'task.vectors', message: "word vectors become θ₀ through model.weights, and this spec names none: submit it with `metaloop submit` (or `local`) where task.path and task.vectors.path are readable (--data-dir); the CLI builds θ₀ from them and uploads it" }],
        source,
      );
    }
    let theta0: Float32Array | undefined;
    if (weights) {
      const blob = this.uploads.get(weights.sha256);
      if (!blob) {
        throw new SpecError([{ path: 'model.weights.sha256', message: `this coordinator holds no upload ${weights.sha256.slice(0, 12)}…: \`metaloop submit\` and \`metaloop local\` upload a Keras file's weights before they submit; run the command again` }], source);
      }
      theta0 = initialParams(spec, blob, source);
    }
    const known = new Set(await this.options.transport.listRuns());
    let runId = '';
    do runId = `${spec.name}-${randomBytes(3).toString('hex')}`;
    while (known.has(runId) || this.active.has(runId));
    const createdMs = Date.now();
    // θ₀ from uploaded weights becomes checkpoint 0 before the run exists: its durable copy.
    const checkpoint = theta0 ? await storeInitialCheckpoint(this.options.transport, runId, spec, theta0, createdMs) : undefined;
    const loop = this.startLoop(runId, spec, createdMs, checkpoint, undefined, undefined, priority);
    await loop.flush();
    this.options.logger.info('run submitted', { run: runId, source, steps: spec.outer.steps });
    return loop.record();
  }

  async list(all = true): Promise<metaloop.IRunRecord[]> {
    const ids = new Set([...(await this.options.transport.listRuns()), ...this.active.keys()]);
    const records: metaloop.IRunRecord[] = [];
    for (const id of ids) {
      const rec = await this.record(id);
      if (!rec) continue;
      if (!all && isTerminal(stateFromProto(rec.state))) continue;
      records.push(rec);
    }
    return records.sort((a, b) => (a.createdMs ?? 0) - (b.createdMs ?? 0));
  }

  async status(runId: string): Promise<metaloop.IRunRecord> {
    const rec = await this.record(runId);
    if (!rec) throw new UnknownRunError(runId);
    return rec;
  }

  async cancel(runId: string): Promise<metaloop.IRunRecord> {
    const loop = this.active.get(runId);
    if (loop) {
      await loop.cancel();
      return loop.record();
    }
    const rec = await this.status(runId);
    const state = stateFromProto(rec.state);
    if (isTerminal(state)) throw new ConflictError(runId, `run ${runId} already ended (${state})`);
    // Active in KV but not run by this coordinator (e.g. resume disabled): mark it cancelled.
    const updated = metaloop.RunRecord.create({
      ...rec,
      state: metaloop.RunState.RUN_STATE_CANCELLED,
      updatedMs: Date.now(),
      finishedMs: Date.now(),
    });
    await this.options.transport.purgeWork(runId).catch(() => {});
    await this.options.transport.putRun(runId, metaloop.RunRecord.encode(updated).finish());
    return updated;
  }

  async pause(runId: string): Promise<metaloop.IRunRecord> {
    const loop = this.activeLoop(runId);
    loop.pause();
    await loop.flush();
    return loop.record();
  }

  async resume(runId: string): Promise<metaloop.IRunRecord> {
    const loop = this.activeLoop(runId);
    loop.resume();
    await loop.flush();
    return loop.record();
  }

  /** The run's per-step history (live for an active run, else as stored). */
  async history(runId: string): Promise<RunHistory> {
    const loop = this.active.get(runId);
    if (loop) return loop.history;
    await this.status(runId);
    const bytes = await this.options.transport.getHistory(runId);
    return bytes ? RunHistory.decode(bytes) : new RunHistory(runId);
  }

  /** θ of a run for `metaloop export`: selector latest | best | current | <checkpoint step>. */
  async exportParams(runId: string, selector = 'latest'): Promise<RunBlob> {
    return exportBlob(this.options.transport, await this.status(runId), await this.history(runId), selector);
  }

  /** Resolves when the run has ended in this coordinator (or immediately when it is not active). */
  async finished(runId: string): Promise<metaloop.IRunRecord> {
    const loop = this.active.get(runId);
    if (loop) {
      await loop.start();
      await loop.flush();
      return loop.record();
    }
    return this.status(runId);
  }

  // ---- internals ----

  /** The deployment's run-spec limits, as a SpecError naming the field. */
  private checkLimits(spec: RunSpec, source: string): void {
    const l = this.options.limits;
    const issues: { path: string; message: string }[] = [];
    const params = layoutSize(paramLayout(spec));
    if (params > l.maxParams) {
      issues.push({ path: 'model', message: `the model has ${params} parameters, above this coordinator's limit of ${l.maxParams}: make it smaller (or raise --max-params)` });
    }
    if (spec.outer.metaBatch > l.maxMetaBatch) {
      issues.push({ path: 'outer.metaBatch', message: `${spec.outer.metaBatch} is above this coordinator's limit of ${l.maxMetaBatch} (--max-meta-batch)` });
    }
    if (spec.outer.steps > l.maxSteps) {
      issues.push({ path: 'outer.steps', message: `${spec.outer.steps} is above this coordinator's limit of ${l.maxSteps} (--max-steps)` });
    }
    if (issues.length > 0) throw new SpecError(issues, source);
  }

  private assertRunning(what: string): void {
    if (this.stateName !== 'running') throw new LifecycleError(what, this.stateName);
  }

  private activeLoop(runId: string): RunLoop {
    const loop = this.active.get(runId);
    if (loop) return loop;
    throw this.ended.has(runId)
      ? new ConflictError(runId, `run ${runId} is not active`)
      : new UnknownRunError(runId);
  }

  private async record(runId: string): Promise<metaloop.IRunRecord | null> {
    const loop = this.active.get(runId);
    if (loop) return loop.record();
    const bytes = await this.options.transport.getRun(runId).catch(() => null);
    if (!bytes) return null;
    try {
      return metaloop.RunRecord.decode(bytes);
    } catch {
      return null;
    }
  }

  private startLoop(
    runId: string,
    spec: RunSpec,
    createdMs: number,
    checkpoint?: CheckpointData,
    previous?: metaloop.RunRecord,
    history?: RunHistory,
    priority?: number,
  ): RunLoop {
    const loop = new RunLoop(this.ctx, { runId, spec, createdMs, checkpoint, previous, history, priority });
    this.active.set(runId, loop);
    if (previous && stateFromProto(previous.state) === 'paused') loop.pause();
    void loop.start().finally(() => {
      if (this.active.get(runId) === loop && this.stateName === 'running') {
        this.active.delete(runId);
        this.ended.add(runId);
      }
    });
    return loop;
  }

  private async resumeActiveRuns(): Promise<void> {
    const { transport, logger } = this.options;
    for (const runId of await transport.listRuns()) {
      const from = await resumePoint(transport, runId, logger);
      if (!from) continue;
      const { record: rec, spec, checkpoint, history } = from;
      // Shards the previous (killed) session left in the work queue are of no use: this session
      // re-issues every step since the checkpoint. Drop them before any is computed for nothing.
      // (Direct dispatch: workers drop the old session's assignments themselves, assignments.ts.)
      await transport.purgeWork(runId).catch((err: unknown) => logger.warn('cannot purge the previous session\'s queued shards', { run: runId, error: String(err) }));
      logger.info('resuming run', { run: runId, fromStep: checkpoint?.step ?? 0 });
      this.startLoop(runId, spec, rec.createdMs, checkpoint, rec, history);
    }
  }

  /** One result (either dispatch mode): decoded once, judged by its run; the verdict is its ack. */
  private onResult(msg: ResultMessage): ResultAck {
    const decoded = decodeResult(msg.data, msg.runId);
    if (!decoded.ok) return this.reject('malformed', decoded.detail, msg.runId);
    const runId = decoded.result.runId;
    const loop = this.active.get(runId);
    if (!loop) {
      return this.ended.has(runId)
        ? this.reject('stale', `run ${runId} has ended`, runId)
        : this.reject('unknown_run', `no active run ${runId}`, runId);
    }
    const verdict = loop.offer(decoded.result);
    if (!verdict.accepted) return this.reject(verdict.reason, verdict.detail, runId);
    const train = kindFromProto(decoded.result.kind) === 'train';
    this.options.metrics?.resultAccepted(runId, { tasks: decoded.result.tasks, staleness: verdict.staleness ?? 0, train });
    return ACCEPTED;
  }

  private reject(reason: RejectReason, detail: string, runId: string): ResultAck {
    this.rejects.add(reason);
    this.active.get(runId)?.countRejected(reason);
    // Label only runs this coordinator knows: result messages must not create arbitrary series.
    this.options.metrics?.resultRejected(this.active.has(runId) || this.ended.has(runId) ? runId : undefined, reason);
    const level = reason === 'duplicate' || reason === 'stale' ? 'debug' : 'warn';
    this.options.logger[level]('result rejected', { run: runId, reason, detail });
    return { accepted: false, reason, detail };
  }
}

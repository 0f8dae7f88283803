/**
 * The worker's heartbeats: one Heartbeat message on the heartbeat subject when run() starts and
 * every heartbeatMs after, until close() (the timer never keeps the process alive). What a beat
 * says: identity, backend and device, state (ready / busy / draining), shards and tasks done, the
 * task rate since the last beat, the datasets the worker checked, its GPU. A beat that cannot be
 * sent is logged at debug and the next one tries again.
 */
import { metaloop, subjects } from '@metaloop/shared';
import type { BackendInfo } from './backend.js';
import { errorText } from './errors.js';
import { heartbeatGpuFields, type GpuInfo } from './gpu.js';
import type { CompiledWorkerOptions } from './options.js';

/** What the worker is doing at the moment of a beat. */
export interface WorkerPulse {
  readonly backend: BackendInfo;
  readonly draining: boolean;
  readonly busy: boolean;
  readonly shardsDone: number;
  readonly tasksDone: number;
  readonly datasets: metaloop.IDatasetHeld[];
}

type HeartbeatOptions = Pick<CompiledWorkerOptions, 'id' | 'transport' | 'logger' | 'prefix' | 'heartbeatMs' | 'version' | 'pid' | 'hostname'>;

const now = () => performance.now();

export class Heartbeats {
  private timer: ReturnType<typeof setInterval> | undefined;
  private rateMark = { at: now(), tasks: 0 };

  constructor(
    private readonly o: HeartbeatOptions,
    private readonly gpu: GpuInfo | undefined,
    private readonly pulse: () => WorkerPulse,
  ) {}

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), this.o.heartbeatMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.beat(); // last word: draining
  }

  private beat(): void {
    try {
      this.o.transport.publish(subjects(this.o.prefix).heartbeat(), this.encode());
    } catch (err) {
      this.o.logger.debug('heartbeat not sent', { error: errorText(err) });
    }
  }

  private encode(): Uint8Array {
    const p = this.pulse();
    const t = now();
    const rate = t > this.rateMark.at ? ((p.tasksDone - this.rateMark.tasks) * 1000) / (t - this.rateMark.at) : 0;
    this.rateMark = { at: t, tasks: p.tasksDone };
    return metaloop.Heartbeat.encode({
      workerId: this.o.id,
      backend: p.backend.name,
      device: p.backend.device,
      version: this.o.version,
      load: p.busy ? 1 : 0,
      shardsDone: p.shardsDone,
      tasksDone: p.tasksDone,
      tasksPerSec: rate,
      timestampMs: Date.now(),
      pid: this.o.pid,
      hostname: this.o.hostname,
      state: p.draining ? 'draining' : p.busy ? 'busy' : 'ready',
      datasets: p.datasets,
      ...heartbeatGpuFields(this.gpu),
    }).finish();
  }
}

/**
 * The set-up the chaos suites share: a nats-server with JetStream on disk, a coordinator process,
 * worker processes started (and replaced) on demand, an API client; every process stopped by pid
 * in close(). Failure messages carry the processes' last log lines (describeProcs).
 */
import assert from 'node:assert/strict';
import { startNatsServer, type NatsServer } from '@metaloop/shared';
import type { ApiClient } from '@metaloop/client';
import { apiClient, startCoordinator, type CoordinatorProcOptions } from './cluster.js';
import { waitFor, type Proc } from './proc.js';

export interface ChaosClusterOptions {
  /** How each coordinator process starts (e.g. leases, `--speculative-min-ms`). */
  readonly coordinator?: CoordinatorProcOptions;
  /** Starts the `n`-th worker process (1, 2, …) against `url`. */
  readonly startWorker: (n: number, url: string) => Proc;
}

export class ChaosCluster {
  /** Every process started, in order (coordinators and workers). */
  readonly procs: Proc[] = [];
  /** The worker processes started, live or not. */
  readonly workers: Proc[] = [];
  private natsServer: NatsServer | undefined;
  private api: { client: ApiClient; close: () => Promise<void> } | undefined;
  private current: { proc: Proc; metricsPort: number } | undefined;
  private workerSeq = 0;

  constructor(private readonly o: ChaosClusterOptions) {}

  /** Starts nats-server, the API client, a coordinator (waits for its API) and `workers` workers. */
  async start(workers: number): Promise<void> {
    this.natsServer = await startNatsServer();
    this.api = await apiClient(this.natsServer.url);
    await this.newCoordinator();
    for (let i = 0; i < workers; i++) this.newWorker();
  }

  get nats(): NatsServer {
    assert.ok(this.natsServer, 'ChaosCluster.start() was not called');
    return this.natsServer;
  }

  get client(): ApiClient {
    assert.ok(this.api, 'ChaosCluster.start() was not called');
    return this.api.client;
  }

  /** The latest coordinator process. */
  get coordinator(): Proc {
    assert.ok(this.current, 'no coordinator started');
    return this.current.proc;
  }

  /** The latest coordinator's /metrics port. */
  get metricsPort(): number {
    return this.current?.metricsPort ?? 0;
  }

  /** The last lines of every live process (and of the latest coordinator), then nats-server's. */
  readonly describeProcs = (): string =>
    this.procs
      .filter((p) => !p.exited || p === this.current?.proc)
      .map((p) => p.tail(12))
      .join('\n') + `\n--- nats ---\n${this.natsServer?.logTail() ?? ''}`;

  /** Why the latest coordinator exited, or undefined while it runs. */
  readonly coordinatorDead = (): string | undefined => this.current?.proc.exitReason();

  /** Starts a coordinator process and waits until its API answers. */
  readonly newCoordinator = async (): Promise<Proc> => {
    this.current = await startCoordinator(`coordinator-${this.procs.length}`, this.nats.url, this.o.coordinator);
    this.procs.push(this.current.proc);
    await waitFor('coordinator API', 30_000, async () => (await this.client.list()).length >= 0, this.describeProcs, this.coordinatorDead);
    return this.current.proc;
  };

  /** Starts one more worker process. */
  readonly newWorker = (): Proc => {
    const w = this.o.startWorker(++this.workerSeq, this.nats.url);
    this.procs.push(w);
    this.workers.push(w);
    return w;
  };

  liveWorkers(): Proc[] {
    return this.workers.filter((w) => !w.exited);
  }

  /**
   * kill -9 of the coordinator (then `whileDown`), then a new one: waits until it logs that it
   * resumes `runId` and returns that log line.
   */
  async replaceCoordinator(runId: string, whileDown?: () => Promise<void>): Promise<string> {
    const old = this.coordinator;
    await old.kill();
    assert.equal(old.exited?.signal, 'SIGKILL');
    await whileDown?.();
    const fresh = await this.newCoordinator();
    const line = await waitFor('the new coordinator to resume the run', 30_000, () => fresh.output().find((l) => /resuming run/.test(l)), this.describeProcs, this.coordinatorDead);
    assert.match(line, new RegExp(runId));
    return line;
  }

  /** Closes the API client, stops every process (by pid) and nats-server; safe after a failed start. */
  async close(): Promise<void> {
    await this.api?.close().catch(() => {});
    await Promise.allSettled(this.procs.map((p) => p.stop(3000)));
    await this.natsServer?.stop();
  }
}

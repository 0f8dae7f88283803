/**
 * A coordinator and QuadraticWorkers on one in-process bus: the set-up of the coordinator's and the
 * CLI's in-process tests. The caller passes how to create its coordinator, so a package's tests
 * exercise their own build of it (this package never imports the coordinator for them).
 */
import { InProcTransport } from '@metaloop/shared';
import { QuadraticWorker, type QuadraticWorkerOptions } from './quadratic-worker.js';

/** What the cluster needs of a coordinator. */
export interface ServingCoordinator {
  run(): Promise<unknown>;
  ready(): Promise<unknown>;
  close(): Promise<unknown>;
}

export type ClusterWorkerOptions = Omit<QuadraticWorkerOptions, 'transport' | 'id'> & { readonly id?: string };

export interface InProcCluster<C extends ServingCoordinator> {
  readonly bus: InProcTransport;
  readonly coordinator: C;
  /** Started, with ids w0, w1, … unless given. */
  readonly workers: QuadraticWorker[];
  /** Stops the coordinator (waits for its loop), then the workers. */
  readonly close: () => Promise<void>;
}

/**
 * Creates the coordinator on its own connection to `bus` (a new bus with `leaseMs`, default 2 s,
 * unless given), waits until it is ready, then starts one QuadraticWorker per entry of `workers`
 * (QuadraticWorker takes shards from the work queue: create the coordinator with queue dispatch).
 */
export async function startInProcCluster<C extends ServingCoordinator>(
  create: (transport: InProcTransport) => Promise<C>,
  workers: readonly ClusterWorkerOptions[] = [],
  options: { bus?: InProcTransport; leaseMs?: number } = {},
): Promise<InProcCluster<C>> {
  const bus = options.bus ?? (await InProcTransport.create({ leaseMs: options.leaseMs ?? 2000 }));
  const ct = bus.connect();
  const coordinator = await create(ct);
  const running = coordinator.run();
  await coordinator.ready();
  const started = workers.map((w, i) => new QuadraticWorker({ id: `w${i}`, ...w, transport: bus.connect() }));
  started.forEach((w) => w.start());
  let closed: Promise<void> | undefined;
  return {
    bus,
    coordinator,
    workers: started,
    close: () =>
      (closed ??= (async () => {
        await coordinator.close();
        await running;
        for (const w of started) await w.close();
        await ct.close();
      })()),
  };
}

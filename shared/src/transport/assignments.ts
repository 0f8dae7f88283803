/**
 * The Assignments role on a Bus (core NATS or in-process): the hot path of one round trip per
 * shard. The coordinator publishes a shard to one worker's subject `<prefix>.assign.<worker>.<run>.<attempt>`
 * and holds the lease itself (re-assigning when the worker leaves or its lease runs out); the worker
 * sends its ShardResult as one request on `<prefix>.hot.results.<msgId>` and the coordinator's
 * reply is the ack. No broker state: what must survive a restart stays in JetStream.
 *
 * A worker that gives a shard back (nak: a transient failure) retries it itself after the delay,
 * as a queue would redeliver it, up to `maxDeliver` deliveries; it then reports the failure
 * (worker.ts `fail()`), or, when closing, drops it: its `draining` heartbeat makes the
 * coordinator re-assign every shard it held.
 */
import { subjects, type Subjects } from '../subjects.js';
import type { AssignedOptions, Assignments, Bus, Closer, ResultMessage, WorkMessage } from '../transport.js';

/** Deliveries of an assigned shard on one worker before its failure is reported (as MaxDeliver). */
export const DIRECT_MAX_DELIVER = 5;

export class BusAssignments implements Assignments {
  private readonly subj: Subjects;

  constructor(
    private readonly bus: Bus,
    prefix: string,
    /** Aborts every consumer when the connection closes. */
    private readonly closing: AbortSignal,
  ) {
    this.subj = subjects(prefix);
  }

  assign(workerId: string, runId: string, attempt: number, data: Uint8Array): void {
    this.bus.publish(`${this.subj.assign(workerId)}.${runId}.${attempt}`, data);
  }

  consumeAssigned(workerId: string, options: AssignedOptions = {}): AsyncIterable<WorkMessage> {
    const stem = `${this.subj.assign(workerId)}.`;
    const maxDeliver = options.maxDeliver ?? DIRECT_MAX_DELIVER;
    const signal = AbortSignal.any([this.closing, ...(options.signal ? [options.signal] : [])]);
    const ready: WorkMessage[] = [];
    let wake: (() => void) | null = null;
    const push = (m: WorkMessage) => {
      if (signal.aborted) return;
      ready.push(m);
      wake?.();
    };
    const make = (data: Uint8Array, runId: string, deliveryCount: number): WorkMessage => ({
      data,
      runId,
      deliveryCount,
      maxDeliver,
      ack: async () => {},
      nak: (delayMs = 0) => {
        if (deliveryCount >= maxDeliver) return;
        const again = () => push(make(data, runId, deliveryCount + 1));
        if (delayMs > 0) setTimeout(again, delayMs).unref?.();
        else setImmediate(again);
      },
      working: () => {},
      term: () => {},
    });
    const sub: Closer = this.bus.subscribe(`${stem}>`, (data, subject) => {
      const [runId, attempt] = subject.slice(stem.length).split('.');
      const n = Number(attempt);
      if (!runId || !Number.isInteger(n) || n < 0) return;
      // Delivery count = the coordinator's attempt + 1 (+ this worker's own retries), as a queue
      // counts redeliveries: a shard re-assigned after its worker died reports delivery > 1.
      push(make(data, runId, n + 1));
    });
    return {
      async *[Symbol.asyncIterator]() {
        const onAbort = () => wake?.();
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          for (;;) {
            while (ready.length === 0 && !signal.aborted) await new Promise<void>((r) => (wake = r));
            wake = null;
            if (signal.aborted) return;
            // A new macrotask per message, as a network delivery would (see InProcTransport.consumeWork).
            await new Promise<void>((r) => setImmediate(r));
            yield ready.shift()!;
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
          ready.length = 0;
          await sub.close();
        }
      },
    };
  }

  async sendResult(runId: string, msgId: string, data: Uint8Array, timeoutMs: number): Promise<void> {
    void runId; // the msgId starts with the run id (`<run>.<step>.<shard>…`)
    await this.bus.request(`${this.subj.hotResults(runId)}.${msgId.startsWith(`${runId}.`) ? msgId.slice(runId.length + 1) : msgId}`, data, timeoutMs);
  }

  serveResults(handler: (msg: ResultMessage) => Promise<void> | void): Closer {
    const stem = `${this.subj.prefix}.hot.results.`;
    return this.bus.serve(this.subj.hotResultsAll(), async (data, subject) => {
      const rest = (subject ?? '').slice(stem.length);
      const dot = rest.indexOf('.');
      const runId = dot > 0 ? rest.slice(0, dot) : rest;
      await handler({ data, runId, msgId: rest });
      return new Uint8Array(0);
    });
  }
}

/**
 * Direct dispatch: a batch's results go to the coordinator as one request (transport
 * sendResults) until it acks them. When it does not (no coordinator answering: killed,
 * restarting; NATS down) the same bytes go again every retryDelayMs rather than the shards being
 * recomputed, for up to 3 × resultAckMs; the sending stops as soon as `giveUp()` says so (the
 * shards' session was superseded — a restarted coordinator re-issued them, the results are of no
 * use — or the worker closes). Then the last error is thrown. The coordinator keeps one result
 * per shard, so a resend is at most a duplicate; the reply's acks say what became of each.
 */
import type { Logger, WorkerTransport } from '@metaloop/shared';
import { errorText } from './errors.js';

export interface SendResultsOptions {
  readonly transport: Pick<WorkerTransport, 'sendResults'>;
  readonly workerId: string;
  readonly runId: string;
  /** Encoded ShardResults. */
  readonly results: readonly Uint8Array[];
  /** Their shards' message ids (logs). */
  readonly ids: readonly string[];
  readonly resultAckMs: number;
  readonly retryDelayMs: number;
  /** True when sending again is of no use. */
  readonly giveUp: () => boolean;
  readonly log: Logger;
}

export async function sendUntilAcked(o: SendResultsOptions): Promise<void> {
  const until = performance.now() + 3 * o.resultAckMs;
  for (let sends = 1; ; sends++) {
    try {
      const acks = await o.transport.sendResults(o.workerId, o.runId, o.results, o.resultAckMs);
      acks.forEach((a, i) => {
        if (!a.accepted) o.log.debug('result rejected by the coordinator', { msgId: o.ids[i], reason: a.reason, detail: a.detail });
      });
      return;
    } catch (err) {
      if (o.giveUp() || performance.now() + o.retryDelayMs >= until) throw err;
      o.log.info('results not acked, sending them again', { msgIds: o.ids, sends, error: errorText(err) });
      await new Promise<void>((r) => setTimeout(r, o.retryDelayMs));
      if (o.giveUp()) throw err;
    }
  }
}

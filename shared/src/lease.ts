/**
 * The lease: how long a worker may hold a shard of the work queue (the JetStream consumer's
 * AckWait) before it goes to another worker, how often the holder extends it (in-progress acks),
 * how many deliveries a shard gets (MaxDeliver), and how long the coordinator waits for a result
 * before it re-issues the shard itself. The queues that apply it: transport/nats-resources.ts (the
 * consumer's ack_wait/max_deliver), transport/inproc-queues.ts (the in-process equivalent); its
 * holders: worker.ts (in-progress acks), the coordinator (resultTimeoutMs, shard-round.ts).
 */

/** A work item's lease (consumer AckWait) when not told otherwise. */
export const DEFAULT_LEASE_MS = 30_000;

/** Deliveries of one work item (consumer MaxDeliver) when not told otherwise. */
export const DEFAULT_MAX_DELIVER = 5;

/** How long a worker reads the consumer's lease settings from the server before it asks again. */
export const LEASE_REFRESH_MS = 5000;

/** The lease settings a work consumer has on the server. */
export interface LeaseSettings {
  readonly leaseMs: number;
  readonly maxDeliver: number;
}

/** Lease settings from a JetStream consumer's ack_wait (ns) and max_deliver (≤ 0: unlimited). */
export function leaseFromConsumer(ackWaitNanos: number | undefined, maxDeliver: number | undefined): LeaseSettings {
  const max = maxDeliver ?? -1;
  return { leaseMs: Math.round((ackWaitNanos ?? 0) / 1e6), maxDeliver: max > 0 ? max : Number.MAX_SAFE_INTEGER };
}

/**
 * How often a worker extends the lease of the shard it computes: its own interval, but at least
 * three times within the lease the work consumer really has (its owner sets it), never under 10 ms.
 */
export function extendIntervalMs(requestedMs: number, leaseMs: number | undefined): number {
  return Math.max(10, Math.min(requestedMs, leaseMs ? Math.floor(leaseMs / 3) : Infinity));
}

/**
 * How long the coordinator waits for a shard's result before it re-issues the shard: the queue
 * redelivers it maxDeliver times, one lease each, so only after all of them (+1 lease).
 */
export function defaultResultTimeoutMs(leaseMs: number, maxDeliver: number): number {
  return leaseMs * (maxDeliver + 1);
}

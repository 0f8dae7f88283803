/**
 * The one Transport interface coordinator and worker logic talk through. `NatsTransport`
 * (JetStream) and `InProcTransport` (the embedded default of `metaloop local`) both implement it;
 * one contract test suite runs against both. Nothing outside a transport imports a NATS client.
 */

export interface Closer {
  close(): Promise<void>;
}

/** One work item (an encoded Shard) leased to a worker. */
export interface WorkMessage {
  readonly data: Uint8Array;
  readonly runId: string;
  /** 1 on first delivery, 2 on the first redelivery, … */
  readonly deliveryCount: number;
  /** The lease of this delivery (consumer AckWait), when the transport knows it. */
  readonly leaseMs?: number;
  /** Deliveries before the queue drops the item (consumer MaxDeliver), when known. */
  readonly maxDeliver?: number;
  /** Done: remove from the queue. */
  ack(): Promise<void>;
  /** Give it back for redelivery (after `delayMs`). */
  nak(delayMs?: number): void;
  /** Still working: extend the lease. */
  working(): void;
  /** Never redeliver (poison message). */
  term(): void;
}

/** One result message (an encoded ShardResult) as the coordinator receives it. */
export interface ResultMessage {
  readonly data: Uint8Array;
  readonly runId: string;
  readonly msgId: string;
}

export interface WorkQueueOptions {
  /** Lease of a work item: redelivered when not acked within it. */
  readonly leaseMs: number;
  /** Deliveries before a work item is dropped. */
  readonly maxDeliver: number;
}

export interface ConsumeOptions {
  readonly signal?: AbortSignal;
  /** Longest a single pull waits before looping (checks `signal`). */
  readonly pollMs?: number;
}

export interface Transport {
  readonly kind: 'nats' | 'inproc';
  /** Human-readable address (URL or "in-process"). */
  readonly address: string;

  // ---- work queue (JetStream WorkQueue stream, one shared durable pull consumer) ----
  /** Publish one work item; a second publish with the same msgId is dropped (de-duplication). */
  publishWork(runId: string, msgId: string, data: Uint8Array): Promise<void>;
  /** Yield work items one at a time until `signal` aborts or the transport closes. */
  consumeWork(options?: ConsumeOptions): AsyncIterable<WorkMessage>;
  /** Drop every queued work item of a run (cancel). */
  purgeWork(runId: string): Promise<void>;

  // ---- results ----
  publishResult(runId: string, msgId: string, data: Uint8Array): Promise<void>;
  /** Deliver results to `handler` one at a time, in arrival order. */
  consumeResults(handler: (msg: ResultMessage) => Promise<void> | void): Promise<Closer>;

  // ---- parameter versions (Object Store `params`) ----
  putParams(runId: string, version: number, data: Uint8Array): Promise<void>;
  /** Throws NotFoundError when absent. */
  getParams(runId: string, version: number): Promise<Uint8Array>;
  deleteParams(runId: string, version: number): Promise<void>;

  // ---- run records (KV `runs`) ----
  putRun(runId: string, data: Uint8Array): Promise<void>;
  getRun(runId: string): Promise<Uint8Array | null>;
  listRuns(): Promise<string[]>;

  // ---- checkpoints (Object Store `checkpoints`) ----
  putCheckpoint(runId: string, step: number, data: Uint8Array): Promise<void>;
  getCheckpoint(runId: string, step: number): Promise<Uint8Array>;
  listCheckpoints(runId: string): Promise<number[]>;
  deleteCheckpoint(runId: string, step: number): Promise<void>;

  // ---- per-step history of a run (beside its checkpoints; never listed as one) ----
  putHistory(runId: string, data: Uint8Array): Promise<void>;
  /** null when the run has no stored history. */
  getHistory(runId: string): Promise<Uint8Array | null>;

  // ---- core pub/sub: events and heartbeats ----
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Closer;

  // ---- request/reply: the control API ----
  serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array>): Closer;
  /** Throws RequestTimeoutError when nobody answers in time. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;

  /** Flush and close. Idempotent. */
  close(): Promise<void>;
}

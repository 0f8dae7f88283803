/**
 * The transport, split by role (docs/architecture.md): the work channel
 * (`WorkQueue`), the `ResultStream`, the `ParamStore` (θ versions), the `RunStore` (run records,
 * checkpoints, history) and the `Bus` (core pub/sub and request/reply). Each process depends on
 * the roles it uses: the worker on `WorkerTransport`, the CLI client on the `Bus` alone, the
 * coordinator on all of them (`Transport`). `connectNats()` (transport/nats.ts) and
 * `createInProc()` (transport/inproc.ts, the embedded default of `metaloop local`) make a
 * connection that plays every role; one contract suite (@metaloop/testing's transport/contract.ts) runs against both.
 * Nothing outside a transport imports a NATS client.
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
  /** Direct assignment: the coordinator session that assigned it. */
  readonly session?: string;
  /**
   * Direct assignment: true once another coordinator session assigned work of this run to this
   * consumer (its own coordinator is gone; the new one re-issued the shard): drop it, do not retry.
   */
  stale?(): boolean;
}

/** One result message (an encoded ShardResult) as the coordinator receives it. */
export interface ResultMessage {
  readonly data: Uint8Array;
  readonly runId: string;
  readonly msgId: string;
}

/** The coordinator's verdict on one result (direct dispatch: it travels back in the reply). */
export interface ResultAck {
  readonly accepted: boolean;
  /** Rejected: why (stale, duplicate, malformed, …). */
  readonly reason?: string;
  readonly detail?: string;
}

/** One shard of an assignment: an encoded Shard and the coordinator's attempt (0 = first issue). */
export interface AssignedShard {
  readonly data: Uint8Array;
  readonly attempt: number;
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

/** Human-readable address and lifecycle of a connection (every role carries it in errors and logs). */
export interface Connection {
  readonly kind: 'nats' | 'inproc';
  /** Human-readable address (URL or "in-process"). */
  readonly address: string;
  /** Flush and close. Idempotent. */
  close(): Promise<void>;
}

/** The work channel: shards to workers (NATS: JetStream WorkQueue stream, one shared durable pull consumer). */
export interface WorkQueue {
  /** Publish one work item; a second publish with the same msgId is dropped (de-duplication). */
  publishWork(runId: string, msgId: string, data: Uint8Array): Promise<void>;
  /** Yield work items one at a time until `signal` aborts or the transport closes. */
  consumeWork(options?: ConsumeOptions): AsyncIterable<WorkMessage>;
  /** Drop every queued work item of a run (cancel). */
  purgeWork(runId: string): Promise<void>;
}

/** Shard results from workers to the coordinator. */
export interface ResultStream {
  publishResult(runId: string, msgId: string, data: Uint8Array): Promise<void>;
  /** Deliver results to `handler` one at a time, in arrival order. */
  consumeResults(handler: (msg: ResultMessage) => Promise<void> | void): Promise<Closer>;
}

export interface AssignedOptions {
  readonly signal?: AbortSignal;
  /** Deliveries of one shard on this worker (its own retries after nak) before it reports the failure. Default 5. */
  readonly maxDeliver?: number;
  /** Called with the number of shards dropped because their coordinator session was superseded. */
  readonly onStale?: (runId: string, dropped: number) => void;
}

/**
 * Direct assignment, the hot path of synchronous mode (core NATS, no broker state): the
 * coordinator sends a worker all its shards of a round in one message and holds each shard's lease
 * itself; the worker returns their results in one request whose reply acks each of them
 * (transport/assignments.ts). Messages per step grow with workers, not shards.
 */
export interface Assignments {
  /**
   * Send shards of one run to one worker in one message (fire and forget; the coordinator's lease
   * covers loss). `session` names the coordinator session (a subject token; default '0'): a
   * worker drops the shards of a session once another one assigns work of the run. It may ride on
   * the reply to a result request of that worker being held (one message fewer).
   */
  assign(workerId: string, runId: string, shards: readonly AssignedShard[], session?: string): void;
  /**
   * The shards assigned to `workerId`, in batches: every shard of one run and session ready at the
   * time (an assignment, or local retries that came due together), in arrival order. Each is a
   * WorkMessage of its own (deliveryCount = attempt + 1, + 1 per local retry after nak).
   */
  consumeAssigned(workerId: string, options?: AssignedOptions): AsyncIterable<WorkMessage[]>;
  /**
   * Send encoded ShardResults of one run in one request; resolves with the coordinator's ack of
   * each, in order (throws on timeout, or when the coordinator's handler failed: send them again).
   * Payloads above max_payload go through the `blobs` store. Assignments riding on the reply reach
   * `workerId`'s consumer.
   */
  sendResults(workerId: string, runId: string, results: readonly Uint8Array[], timeoutMs: number): Promise<ResultAck[]>;
  /** Coordinator: take hot-path results, one handler call per result; its verdicts are the acks of the reply. */
  serveResults(handler: (msg: ResultMessage) => Promise<ResultAck | void> | ResultAck | void, options?: ServeResultsOptions): Closer;
}

export interface ServeResultsOptions {
  /**
   * Whether to hold the reply to a worker's results for its next assignment, given the worker's
   * subject token (`workerToken`): only when the worker has nothing else to do for this
   * coordinator (it waits for the reply; with shards still to compute it must not). Default: always.
   */
  readonly holdReply?: (workerToken: string) => boolean;
}

export interface PutParamsOptions {
  /**
   * Write the durable copy now (NATS: Object Store `params`): at checkpoints and the end of a run.
   * Otherwise a version is broadcast and kept by its publisher, and written durably only when a
   * reader that missed the broadcast asks for it. Default false.
   */
  readonly durable?: boolean;
}

/**
 * Parameter versions θ_t: broadcast to workers (the live path); a version's durable copy (NATS:
 * Object Store `params`) is written at checkpoints and for a reader that asks for it (a late or
 * reconnecting worker), never on every step.
 */
export interface ParamStore {
  putParams(runId: string, version: number, data: Uint8Array, options?: PutParamsOptions): Promise<void>;
  /** Throws NotFoundError when absent (not broadcast to this reader, not stored, its publisher does not hold it). */
  getParams(runId: string, version: number): Promise<Uint8Array>;
  /** The publisher no longer needs the version (its durable copy goes too, unless it is the run's latest durable one). */
  deleteParams(runId: string, version: number): Promise<void>;
}

/** What must survive a restart: run records (KV `runs`), checkpoints and per-step history (Object Store `checkpoints`). */
export interface RunStore {
  putRun(runId: string, data: Uint8Array): Promise<void>;
  getRun(runId: string): Promise<Uint8Array | null>;
  listRuns(): Promise<string[]>;
  putCheckpoint(runId: string, step: number, data: Uint8Array): Promise<void>;
  getCheckpoint(runId: string, step: number): Promise<Uint8Array>;
  listCheckpoints(runId: string): Promise<number[]>;
  deleteCheckpoint(runId: string, step: number): Promise<void>;
  /** The per-step history of a run (beside its checkpoints; never listed as one). */
  putHistory(runId: string, data: Uint8Array): Promise<void>;
  /** null when the run has no stored history. */
  getHistory(runId: string): Promise<Uint8Array | null>;
}

/** Core NATS: events and heartbeats (pub/sub), the control API (request/reply). What the CLI uses. */
export interface Bus {
  publish(subject: string, data: Uint8Array): void;
  subscribe(subject: string, handler: (data: Uint8Array, subject: string) => void): Closer;
  /** Answer requests on `subject` (wildcards allowed; the handler gets the request's subject). */
  serve(subject: string, handler: (data: Uint8Array, subject: string) => Promise<Uint8Array>): Closer;
  /** Throws RequestTimeoutError when nobody answers in time. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
}

/**
 * What a worker uses: take work, send results, read θ and the run's spec, publish heartbeats.
 * (A worker needs no run listing, checkpoints, history, params writes nor the request/reply API.)
 */
export type WorkerTransport = Connection &
  Pick<WorkQueue, 'consumeWork'> &
  Pick<ResultStream, 'publishResult'> &
  Pick<Assignments, 'consumeAssigned' | 'sendResults'> &
  Pick<ParamStore, 'getParams'> &
  Pick<RunStore, 'getRun'> &
  Pick<Bus, 'publish'>;

/** A connection playing every role: what the coordinator uses (and what the factories make). */
export interface Transport extends Connection, WorkQueue, ResultStream, Assignments, ParamStore, RunStore, Bus {}

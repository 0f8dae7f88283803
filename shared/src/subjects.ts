/**
 * Every NATS subject, stream, bucket and consumer name Metaloop uses, in one place: the API, work
 * queue, results, events, heartbeats, direct assignment, hot-path results, θ asked for and θ broadcast subjects
 * (a subject's stem is its function at run id '': `subjects().work('')` = `metaloop.work.`), the
 * JetStream streams and consumers, and the KV/object store buckets (runs, params, checkpoints, blobs).
 * (Reply inboxes are the NATS client's own `_INBOX.>`.)
 */

import { SubjectError } from './errors.js';

export const DEFAULT_PREFIX = 'metaloop';

export const API_VERBS = [
  'submit',
  'list',
  'status',
  'cancel',
  'pause',
  'resume',
  'workers',
  'export',
  'history',
  'upload',
] as const;
export type ApiVerb = (typeof API_VERBS)[number];

const RUN_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Run ids travel inside subjects and object names: keep them to [a-z0-9-]. */
export function assertRunId(runId: string): void {
  if (!RUN_ID.test(runId)) {
    throw new SubjectError(`invalid run id ${JSON.stringify(runId)}: use 1-63 characters of a-z, 0-9 and '-'`, runId);
  }
}

/**
 * A worker id as one subject token: ids of [A-Za-z0-9_-] stay as they are; others (dots, colons)
 * become `_x` + their hex bytes (no such plain id starts with `_x` followed only by hex by chance
 * that matters: ids are chosen by the operator, and a clash only shares an assignment subject).
 */
export function workerToken(workerId: string): string {
  return /^[A-Za-z0-9_-]+$/.test(workerId) ? workerId : `_x${Buffer.from(workerId, 'utf8').toString('hex')}`;
}

export interface Subjects {
  readonly prefix: string;
  api(verb: ApiVerb): string;
  work(runId: string): string;
  workAll(): string;
  results(runId: string): string;
  resultsAll(): string;
  events(runId: string): string;
  eventsAll(): string;
  heartbeat(): string;
  /** Direct assignment (core NATS): shards for one worker go to `<stem>.<run>.<attempt>.<session>`. */
  assign(workerId: string): string;
  assignAll(): string;
  /** Hot-path results (core request/reply; the reply is the ack): `<stem>.<msgId>`. */
  hotResults(runId: string): string;
  hotResultsAll(): string;
  /**
   * A parameter version asked for (core request/reply, worker → the run's coordinator):
   * `<stem>.<version>`; the reply comes once its Object Store copy is written.
   */
  hotParams(runId: string): string;
  hotParamsAll(): string;
  /** Stem of a run's θ broadcast (core NATS): chunks go to `<stem>.<version>.<i>.<n>.<bytes>`. */
  params(runId: string): string;
  paramsAll(): string;
  /** JetStream resources (names cannot contain dots). */
  readonly workStream: string;
  readonly resultsStream: string;
  readonly workConsumer: string;
  readonly resultsConsumer: string;
  readonly runsBucket: string;
  readonly paramsBucket: string;
  readonly checkpointsBucket: string;
  /** Object store of payloads too big for one message (results and shards above inlineMaxBytes). */
  readonly blobsBucket: string;
}

export function subjects(prefix = DEFAULT_PREFIX): Subjects {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new SubjectError(`invalid subject prefix ${JSON.stringify(prefix)}: use tokens of [A-Za-z0-9_-] separated by dots`, prefix);
  }
  const tag = prefix.replace(/\./g, '_');
  const upper = tag.toUpperCase();
  return {
    prefix,
    api: (verb) => `${prefix}.api.${verb}`,
    work: (runId) => `${prefix}.work.${runId}`,
    workAll: () => `${prefix}.work.>`,
    results: (runId) => `${prefix}.results.${runId}`,
    resultsAll: () => `${prefix}.results.>`,
    events: (runId) => `${prefix}.events.${runId}`,
    eventsAll: () => `${prefix}.events.>`,
    heartbeat: () => `${prefix}.workers.heartbeat`,
    assign: (workerId) => `${prefix}.assign.${workerToken(workerId)}`,
    assignAll: () => `${prefix}.assign.>`,
    hotResults: (runId) => `${prefix}.hot.results.${runId}`,
    hotResultsAll: () => `${prefix}.hot.results.>`,
    hotParams: (runId) => `${prefix}.hot.params.${runId}`,
    hotParamsAll: () => `${prefix}.hot.params.>`,
    params: (runId) => `${prefix}.params.${runId}`,
    paramsAll: () => `${prefix}.params.>`,
    workStream: `${upper}_WORK`,
    resultsStream: `${upper}_RESULTS`,
    workConsumer: `${tag}-workers`,
    resultsConsumer: `${tag}-coordinator`,
    runsBucket: tag === 'metaloop' ? 'runs' : `${tag}-runs`,
    paramsBucket: tag === 'metaloop' ? 'params' : `${tag}-params`,
    checkpointsBucket: tag === 'metaloop' ? 'checkpoints' : `${tag}-checkpoints`,
    blobsBucket: tag === 'metaloop' ? 'blobs' : `${tag}-blobs`,
  };
}

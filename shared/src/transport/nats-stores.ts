/**
 * The RunStore role on JetStream: run records in the KV bucket `runs`; checkpoints and each run's
 * per-step history in the Object Store `checkpoints` (history as `<run>/history`, which
 * listCheckpoints skips: it lists digits only). Part of NatsTransport (nats.ts).
 */
import { NotFoundError, TransportError } from '../errors.js';
import { assertRunId } from '../subjects.js';
import type { RunStore } from '../transport.js';
import { CHUNK_BYTES, type NatsResources } from './nats-resources.js';

const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function assertIndex(what: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new TransportError(`${what} must be a non-negative integer, got ${n}`);
}

/** What the store needs from its connection. */
export interface StoreHost {
  assertOpen(): void;
  /** Run `fn`, retrying transient failures (NATS restarting). */
  retry<T>(what: string, fn: () => Promise<T>): Promise<T>;
  /** The JetStream buckets (a light client throws). */
  res(): NatsResources;
  /** Wait for the background durable puts of a run's parameter versions. */
  settleParams(runId: string): Promise<void>;
}

export class NatsRunStore implements RunStore {
  constructor(private readonly h: StoreHost) {}

  async putCheckpoint(runId: string, step: number, data: Uint8Array): Promise<void> {
    this.h.assertOpen();
    assertRunId(runId);
    assertIndex('checkpoint step', step);
    // The run's parameter versions are durable before a checkpoint that follows them.
    await this.h.settleParams(runId);
    const name = `${runId}/${step}`;
    await this.h.retry(`put checkpoint ${name}`, () => this.h.res().checkpoints.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data));
  }

  async getCheckpoint(runId: string, step: number): Promise<Uint8Array> {
    this.h.assertOpen();
    const name = `${runId}/${step}`;
    const data = await this.h.retry(`get checkpoint ${name}`, () => this.h.res().checkpoints.getBlob(name));
    if (!data) throw new NotFoundError('checkpoint', name);
    return data;
  }

  async listCheckpoints(runId: string): Promise<number[]> {
    this.h.assertOpen();
    const head = `${runId}/`;
    const infos = await this.h.retry(`list checkpoints of ${runId}`, () => this.h.res().checkpoints.list());
    return infos
      .filter((i) => !i.deleted && i.name.startsWith(head) && /^\d+$/.test(i.name.slice(head.length)))
      .map((i) => Number(i.name.slice(head.length)))
      .sort((a, b) => a - b);
  }

  async deleteCheckpoint(runId: string, step: number): Promise<void> {
    this.h.assertOpen();
    const name = `${runId}/${step}`;
    await this.h.retry(`delete checkpoint ${name}`, async () => {
      await this.h.res().checkpoints.delete(name).catch((err: unknown) => {
        if (!/not found/i.test(errMessage(err))) throw err;
      });
    });
  }

  // Stored as `<run>/history` in the checkpoints object store: listCheckpoints only lists digits.
  async putHistory(runId: string, data: Uint8Array): Promise<void> {
    this.h.assertOpen();
    assertRunId(runId);
    const name = `${runId}/history`;
    await this.h.retry(`put history ${name}`, () => this.h.res().checkpoints.putBlob({ name, options: { max_chunk_size: CHUNK_BYTES } }, data));
  }

  async getHistory(runId: string): Promise<Uint8Array | null> {
    this.h.assertOpen();
    const name = `${runId}/history`;
    return this.h.retry(`get history ${name}`, () => this.h.res().checkpoints.getBlob(name));
  }

  // ---- run records (KV) ----

  async putRun(runId: string, data: Uint8Array): Promise<void> {
    this.h.assertOpen();
    assertRunId(runId);
    await this.h.retry(`put run ${runId}`, () => this.h.res().runs.put(runId, data));
  }

  async getRun(runId: string): Promise<Uint8Array | null> {
    this.h.assertOpen();
    const e = await this.h.retry(`get run ${runId}`, () => this.h.res().runs.get(runId));
    return e && e.operation === 'PUT' ? e.value : null;
  }

  async listRuns(): Promise<string[]> {
    this.h.assertOpen();
    return this.h.retry('list runs', async () => {
      const out: string[] = [];
      for await (const k of await this.h.res().runs.keys()) out.push(k);
      return out.sort();
    });
  }
}

/**
 * ApiClient: the control API over the request/reply Bus (what the CLI uses). Errors answered by the
 * coordinator become ApiCallError (with its code and field); no answer at all is the transport's
 * RequestTimeoutError ("is a coordinator running?").
 */
import { ApiCallError, DEFAULT_PREFIX, isTerminal, metaloop, stateFromProto, subjects, type Bus, type Subjects } from '@metaloop/shared';
import { createHash } from 'node:crypto';
import { uploadBlob, type UploadOptions, type Uploaded } from './upload-client.js';

/** A blob read through the `export` or `history` verb (all chunks joined, sha256 checked). */
export interface FetchedBlob {
  readonly runId: string;
  /** export: the step of θ. */
  readonly step: number;
  /** export: `checkpoint` or `params` (the current parameters when there is no checkpoint). */
  readonly source: string;
  readonly specJson: string;
  readonly data: Uint8Array;
  readonly sha256: string;
}

export interface ApiClientOptions {
  /** The request/reply bus: all the client uses (a light NATS client, jetstream: false). */
  readonly transport: Bus;
  readonly prefix?: string;
  /** Per-request timeout. Default 5000. */
  readonly timeoutMs?: number;
}

export interface WaitOptions {
  /** Status polling period. Default 1000. */
  readonly pollMs?: number;
  /** Called with every record polled. */
  readonly onRecord?: (record: metaloop.RunRecord) => void;
  readonly signal?: AbortSignal;
}

function check(error: metaloop.IApiError | null | undefined): void {
  if (error && error.code) throw new ApiCallError(error.code, error.message ?? error.code, error.field || undefined);
}

export class ApiClient {
  private readonly transport: Bus;
  private readonly subjects: Subjects;
  private readonly timeoutMs: number;

  constructor(options: ApiClientOptions) {
    this.transport = options.transport;
    this.subjects = subjects(options.prefix ?? DEFAULT_PREFIX);
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  private async runCall(verb: 'submit' | 'status' | 'cancel' | 'pause' | 'resume', data: Uint8Array): Promise<metaloop.RunRecord> {
    const reply = metaloop.RunReply.decode(await this.transport.request(this.subjects.api(verb), data, this.timeoutMs));
    check(reply.error);
    if (!reply.run) throw new ApiCallError('INTERNAL', `the coordinator answered ${verb} without a run record`);
    return metaloop.RunRecord.create(reply.run);
  }

  /**
   * Submit a run spec (YAML text); returns the new run's record. `priority` (1..1000) overrides the
   * spec's workers.priority: the run's share of the workers relative to other runs.
   */
  submit(specText: string, source = 'run spec', options: { priority?: number } = {}): Promise<metaloop.RunRecord> {
    return this.runCall('submit', metaloop.SubmitRequest.encode({ specText, source, priority: options.priority ?? 0 }).finish());
  }

  /** The coordinator's live workers: id, backend, device, shards/s (shardsPerSec), last seen (lastSeenMs). */
  async workers(): Promise<metaloop.Heartbeat[]> {
    const reply = metaloop.WorkersReply.decode(await this.transport.request(this.subjects.api('workers'), new Uint8Array(0), this.timeoutMs));
    check(reply.error);
    return reply.workers.map((w) => metaloop.Heartbeat.create(w));
  }

  status(runId: string): Promise<metaloop.RunRecord> {
    return this.runCall('status', metaloop.RunRequest.encode({ runId }).finish());
  }

  cancel(runId: string): Promise<metaloop.RunRecord> {
    return this.runCall('cancel', metaloop.RunRequest.encode({ runId }).finish());
  }

  pause(runId: string): Promise<metaloop.RunRecord> {
    return this.runCall('pause', metaloop.RunRequest.encode({ runId }).finish());
  }

  resume(runId: string): Promise<metaloop.RunRecord> {
    return this.runCall('resume', metaloop.RunRequest.encode({ runId }).finish());
  }

  /** Every run the coordinator knows (only the active ones with `all: false`). */
  async list(all = true): Promise<metaloop.RunRecord[]> {
    const data = metaloop.ListRequest.encode({ all }).finish();
    const reply = metaloop.ListReply.decode(await this.transport.request(this.subjects.api('list'), data, this.timeoutMs));
    check(reply.error);
    return reply.runs.map((r) => metaloop.RunRecord.create(r));
  }

  private async blob(verb: 'export' | 'history', runId: string, selector = ''): Promise<FetchedBlob> {
    const parts: Uint8Array[] = [];
    let offset = 0;
    let first: metaloop.BlobReply | null = null;
    for (;;) {
      const req = metaloop.BlobRequest.encode({ runId, selector, offset }).finish();
      const reply = metaloop.BlobReply.decode(await this.transport.request(this.subjects.api(verb), req, this.timeoutMs));
      check(reply.error);
      if (first && (reply.sha256 !== first.sha256 || Number(reply.totalBytes) !== Number(first.totalBytes))) {
        throw new ApiCallError('CONFLICT', `the ${verb} data of run ${runId} changed while it was read; try again`);
      }
      first ??= reply;
      parts.push(reply.data);
      offset += reply.data.byteLength;
      if (offset >= Number(reply.totalBytes)) break;
      if (reply.data.byteLength === 0) throw new ApiCallError('INTERNAL', `the coordinator sent an empty ${verb} chunk at offset ${offset}`);
    }
    const data = new Uint8Array(Buffer.concat(parts));
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (sha256 !== first.sha256) throw new ApiCallError('INTERNAL', `${verb} of run ${runId}: sha256 mismatch after transfer`);
    return { runId: first.runId, step: first.step, source: first.source, specJson: first.specJson, data, sha256 };
  }

  /** θ of a run as an encoded TensorBundle: selector latest | best | current | a checkpoint step. */
  exportParams(runId: string, selector = 'latest'): Promise<FetchedBlob> {
    return this.blob('export', runId, selector);
  }

  /** Send a blob to the coordinator in chunks (resumable; `upload` verb, upload-client.ts); returns its sha256. */
  upload(data: Uint8Array, options: Omit<UploadOptions, 'timeoutMs'>): Promise<Uploaded> {
    return uploadBlob(this.transport, this.subjects, data, { ...options, timeoutMs: this.timeoutMs });
  }

  /** The run's per-step history (JSON bytes, see history.ts). */
  history(runId: string): Promise<FetchedBlob> {
    return this.blob('history', runId);
  }

  /** Poll the run's status until it has succeeded, failed or been cancelled; returns the final record. */
  async waitFor(runId: string, options: WaitOptions = {}): Promise<metaloop.RunRecord> {
    const pollMs = options.pollMs ?? 1000;
    for (;;) {
      options.signal?.throwIfAborted();
      const rec = await this.status(runId);
      options.onRecord?.(rec);
      if (isTerminal(stateFromProto(rec.state))) return rec;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollMs);
        function done() {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        }
        options.signal?.addEventListener('abort', done, { once: true });
      });
    }
  }
}

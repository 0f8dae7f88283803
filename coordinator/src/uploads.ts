/**
 * The `upload` verb: a blob the CLI brings to the coordinator, in chunks that each stay far below
 * NATS' 1 MiB max_payload, named by the sha256 of its bytes: today θ₀ read from a Keras file for a
 * run with `init: weights` (the CLI is a light client without JetStream rights, so the bytes come
 * over the API bus and the coordinator stores them). The coordinator holds an upload in memory
 * until a submit takes it, and that submit makes it durable as the run's checkpoint 0
 * (coordinator.ts). An upload cut short resumes: every reply says how many bytes the coordinator
 * holds, and the client sends from there. The same bytes always give the same name, so uploading
 * twice costs one probe.
 */
import { createHash } from 'node:crypto';
import { metaloop, type Closer, type Logger, type Subjects, type Transport } from '@metaloop/shared';
import { toApiError } from './api.js';
import { UploadError } from './errors.js';

export interface UploadStagingOptions {
  /** Largest blob taken (bytes). */
  readonly maxBlobBytes: number;
  /** Blobs held at once; the least recently used goes first. Default 4. */
  readonly maxBlobs?: number;
  /** An upload untouched this long is forgotten. Default one hour. */
  readonly idleMs?: number;
  readonly now?: () => number;
}

interface Staged {
  readonly total: number;
  readonly bytes: Uint8Array;
  received: number;
  complete: boolean;
  touchedMs: number;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** The uploads a coordinator holds (in memory, until a submit takes them or they go idle). */
export class UploadStaging {
  private readonly staged = new Map<string, Staged>();
  private readonly maxBlobs: number;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(private readonly options: UploadStagingOptions) {
    this.maxBlobs = options.maxBlobs ?? 4;
    this.idleMs = options.idleMs ?? 3_600_000;
    this.now = options.now ?? Date.now;
  }

  /** Take one chunk (or a probe: empty data); returns what the coordinator now holds of the blob. */
  offer(req: metaloop.IUploadRequest): { received: number; complete: boolean } {
    const sha256 = req.sha256 ?? '';
    const total = Number(req.totalBytes ?? 0);
    const offset = Number(req.offset ?? 0);
    const data = req.data ?? new Uint8Array(0);
    if (!SHA256.test(sha256)) throw new UploadError(sha256, `upload: sha256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`);
    if (!Number.isSafeInteger(total) || total < 1) throw new UploadError(sha256, `upload ${sha256.slice(0, 12)}: total_bytes must be >= 1, got ${total}`);
    if (total > this.options.maxBlobBytes) {
      throw new UploadError(sha256, `upload ${sha256.slice(0, 12)}: ${total} bytes is above this coordinator's limit of ${this.options.maxBlobBytes} (it follows --max-params)`);
    }
    this.expire();
    let s = this.staged.get(sha256);
    if (s && s.total !== total) throw new UploadError(sha256, `upload ${sha256.slice(0, 12)}: total_bytes ${total} differs from the ${s.total} of the upload in progress`);
    if (!s) {
      if (data.byteLength === 0 && offset === 0) return { received: 0, complete: false }; // a probe holds nothing
      this.makeRoom();
      s = { total, bytes: new Uint8Array(total), received: 0, complete: false, touchedMs: this.now() };
      this.staged.set(sha256, s);
    }
    s.touchedMs = this.now();
    if (s.complete || data.byteLength === 0 || offset !== s.received) return { received: s.received, complete: s.complete };
    if (offset + data.byteLength > total) {
      throw new UploadError(sha256, `upload ${sha256.slice(0, 12)}: a chunk of ${data.byteLength} bytes at ${offset} runs past total_bytes ${total}`);
    }
    s.bytes.set(data, offset);
    s.received += data.byteLength;
    if (s.received === total) {
      const got = createHash('sha256').update(s.bytes).digest('hex');
      if (got !== sha256) {
        this.staged.delete(sha256);
        throw new UploadError(sha256, `upload ${sha256.slice(0, 12)}: the bytes received hash to ${got.slice(0, 12)}…, not to their name: upload again`);
      }
      s.complete = true;
    }
    return { received: s.received, complete: s.complete };
  }

  /** The bytes of a complete upload, or undefined. */
  get(sha256: string): Uint8Array | undefined {
    this.expire();
    const s = this.staged.get(sha256);
    if (!s?.complete) return undefined;
    s.touchedMs = this.now();
    return s.bytes;
  }

  private expire(): void {
    const now = this.now();
    for (const [k, s] of this.staged) if (now - s.touchedMs > this.idleMs) this.staged.delete(k);
  }

  private makeRoom(): void {
    while (this.staged.size >= this.maxBlobs) {
      let oldest: string | undefined;
      let oldestMs = Infinity;
      for (const [k, s] of this.staged) {
        if (s.touchedMs < oldestMs) {
          oldest = k;
          oldestMs = s.touchedMs;
        }
      }
      if (oldest === undefined) return;
      this.staged.delete(oldest);
    }
  }
}

/** Serve `<prefix>.api.upload` from `staging`. */
export function serveUploads(transport: Transport, subj: Subjects, staging: UploadStaging, logger: Logger): Closer {
  return transport.serve(subj.api('upload'), (bytes) => {
    try {
      let req: metaloop.UploadRequest;
      try {
        req = metaloop.UploadRequest.decode(bytes);
      } catch (err) {
        throw new UploadError('', `cannot decode UploadRequest: ${(err as Error).message}`);
      }
      const r = staging.offer(req);
      if (r.complete && Number(req.offset ?? 0) + (req.data?.byteLength ?? 0) === r.received && (req.data?.byteLength ?? 0) > 0) {
        logger.info('upload complete', { sha256: req.sha256, bytes: r.received, kind: req.kind });
      }
      return Promise.resolve(metaloop.UploadReply.encode({ receivedBytes: r.received, complete: r.complete }).finish());
    } catch (err) {
      const error = toApiError(err);
      if (error.code === 'INTERNAL') logger.error('api upload failed', { error: String(err) });
      return Promise.resolve(metaloop.UploadReply.encode({ error }).finish());
    }
  });
}

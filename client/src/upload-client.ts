/**
 * The client side of the `upload` verb (uploads.ts): send a blob to the coordinator in chunks
 * below NATS' max_payload, resuming from what the coordinator already holds; returns its sha256,
 * the name a run spec gives it.
 */
import { createHash } from 'node:crypto';
import { ApiCallError, metaloop, type Bus, type Subjects } from '@metaloop/shared';

/** Bytes per upload chunk: half of NATS' default 1 MiB max_payload. */
export const UPLOAD_CHUNK_BYTES = 512 * 1024;

export interface UploadOptions {
  /** What the blob is (logged by the coordinator). */
  readonly kind: string;
  readonly chunkBytes?: number;
  readonly timeoutMs: number;
  /** Called after every reply with the bytes the coordinator holds. */
  readonly onProgress?: (received: number, total: number) => void;
}

export interface Uploaded {
  readonly sha256: string;
  readonly bytes: number;
  /** Bytes this call sent (0 when the coordinator held the whole blob already). */
  readonly sent: number;
}

/** Upload `data` (resumable: an interrupted upload goes on from the coordinator's count). */
export async function uploadBlob(bus: Bus, subj: Subjects, data: Uint8Array, o: UploadOptions): Promise<Uploaded> {
  const sha256 = createHash('sha256').update(data).digest('hex');
  const chunk = Math.max(1, Math.min(o.chunkBytes ?? UPLOAD_CHUNK_BYTES, UPLOAD_CHUNK_BYTES));
  const call = async (offset: number, bytes: Uint8Array) => {
    const req = metaloop.UploadRequest.encode({ sha256, totalBytes: data.byteLength, offset, data: bytes, kind: o.kind }).finish();
    const reply = metaloop.UploadReply.decode(await bus.request(subj.api('upload'), req, o.timeoutMs));
    if (reply.error?.code) throw new ApiCallError(reply.error.code, reply.error.message ?? reply.error.code, reply.error.field || undefined);
    const received = Number(reply.receivedBytes);
    o.onProgress?.(received, data.byteLength);
    return { received, complete: reply.complete };
  };
  let state = await call(0, new Uint8Array(0)); // how much the coordinator holds already
  let sent = 0;
  while (!state.complete) {
    const at = state.received;
    if (at >= data.byteLength) throw new ApiCallError('INTERNAL', `upload ${sha256.slice(0, 12)}: the coordinator holds all ${at} bytes but did not accept the blob`);
    const part = data.subarray(at, Math.min(at + chunk, data.byteLength));
    state = await call(at, part);
    sent += part.byteLength;
    if (state.received <= at && !state.complete) throw new ApiCallError('INTERNAL', `upload ${sha256.slice(0, 12)}: the coordinator took no bytes at offset ${at}`);
  }
  return { sha256, bytes: data.byteLength, sent };
}

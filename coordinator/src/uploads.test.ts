import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ApiCallError, InProcTransport, metaloop, silentLogger, subjects } from '@metaloop/shared';
import { UploadError } from './errors.js';
import { uploadBlob } from '@metaloop/client';
import { serveUploads, UploadStaging } from './uploads.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const subj = subjects('metaloop');

describe('UploadStaging', () => {
  it('takes chunks in order, answers what it holds, and checks the sha256 at the end', () => {
    const blob = new Uint8Array(randomBytes(100));
    const s = new UploadStaging({ maxBlobBytes: 1000 });
    const h = sha(blob);
    assert.deepEqual(s.offer({ sha256: h, totalBytes: 100, offset: 0, data: new Uint8Array(0) }), { received: 0, complete: false });
    assert.deepEqual(s.offer({ sha256: h, totalBytes: 100, offset: 0, data: blob.subarray(0, 40) }), { received: 40, complete: false });
    // A chunk out of place (a retry of the first, or one ahead) changes nothing: the reply says where to go on.
    assert.deepEqual(s.offer({ sha256: h, totalBytes: 100, offset: 0, data: blob.subarray(0, 40) }), { received: 40, complete: false });
    assert.deepEqual(s.offer({ sha256: h, totalBytes: 100, offset: 80, data: blob.subarray(80) }), { received: 40, complete: false });
    assert.equal(s.get(h), undefined, 'an incomplete upload is not handed out');
    assert.deepEqual(s.offer({ sha256: h, totalBytes: 100, offset: 40, data: blob.subarray(40) }), { received: 100, complete: true });
    assert.deepEqual(s.get(h), blob);
  });

  it('refuses bytes that do not hash to their name, and forgets them', () => {
    const blob = new Uint8Array(randomBytes(10));
    const wrong = sha(new Uint8Array(10));
    const s = new UploadStaging({ maxBlobBytes: 1000 });
    assert.throws(() => s.offer({ sha256: wrong, totalBytes: 10, offset: 0, data: blob }), (e: unknown) => e instanceof UploadError && /hash to .* not to their name/.test(e.message));
    assert.deepEqual(s.offer({ sha256: wrong, totalBytes: 10, offset: 0, data: new Uint8Array(0) }), { received: 0, complete: false });
  });

  it('refuses a blob above the limit, a bad name, a changed size and a chunk past the end', () => {
    const s = new UploadStaging({ maxBlobBytes: 8 });
    const h = sha(new Uint8Array(8));
    assert.throws(() => s.offer({ sha256: h, totalBytes: 9, offset: 0, data: new Uint8Array(1) }), /9 bytes is above this coordinator's limit of 8/);
    assert.throws(() => s.offer({ sha256: 'abc', totalBytes: 8, offset: 0, data: new Uint8Array(1) }), /64 lowercase hex/);
    s.offer({ sha256: h, totalBytes: 8, offset: 0, data: new Uint8Array(4) });
    assert.throws(() => s.offer({ sha256: h, totalBytes: 7, offset: 4, data: new Uint8Array(1) }), /differs from the 8/);
    assert.throws(() => s.offer({ sha256: h, totalBytes: 8, offset: 4, data: new Uint8Array(5) }), /runs past total_bytes 8/);
  });

  it('forgets idle uploads and keeps at most maxBlobs (the least recently used goes)', () => {
    let now = 0;
    const s = new UploadStaging({ maxBlobBytes: 100, maxBlobs: 2, idleMs: 1000, now: () => now });
    const blobs = [1, 2, 3].map((i) => new Uint8Array(4).fill(i));
    const put = (b: Uint8Array) => s.offer({ sha256: sha(b), totalBytes: 4, offset: 0, data: b });
    put(blobs[0]!);
    now = 10;
    put(blobs[1]!);
    now = 20;
    assert.ok(s.get(sha(blobs[0]!)), 'touching the first makes the second the oldest');
    put(blobs[2]!);
    assert.ok(s.get(sha(blobs[0]!)));
    assert.equal(s.get(sha(blobs[1]!)), undefined);
    now = 5000;
    assert.equal(s.get(sha(blobs[0]!)), undefined, 'idle for longer than idleMs');
  });
});

describe('upload verb over a bus', () => {
  it('uploads in chunks, resumes an interrupted upload from what the coordinator holds, and a second upload sends nothing', async () => {
    const bus = await InProcTransport.create();
    const server = bus.connect();
    const client = bus.connect();
    const staging = new UploadStaging({ maxBlobBytes: 1 << 20 });
    const closer = serveUploads(server, subj, staging, silentLogger);
    try {
      const blob = new Uint8Array(randomBytes(300_000));
      const h = sha(blob);
      // An upload cut off after its first chunk (the client process died).
      const first = metaloop.UploadRequest.encode({ sha256: h, totalBytes: blob.byteLength, offset: 0, data: blob.subarray(0, 100_000), kind: 'init-weights' }).finish();
      const r = metaloop.UploadReply.decode(await client.request(subj.api('upload'), first, 2000));
      assert.equal(Number(r.receivedBytes), 100_000);
      const progress: number[] = [];
      const up = await uploadBlob(client, subj, blob, { kind: 'init-weights', chunkBytes: 64 * 1024, timeoutMs: 2000, onProgress: (n) => progress.push(n) });
      assert.equal(up.sha256, h);
      assert.equal(up.sent, 200_000, 'only the bytes the coordinator lacked were sent');
      assert.deepEqual(progress.slice(0, 2), [100_000, 100_000 + 64 * 1024]);
      assert.deepEqual(staging.get(h), blob);
      const again = await uploadBlob(client, subj, blob, { kind: 'init-weights', timeoutMs: 2000 });
      assert.equal(again.sent, 0);
      // The coordinator's refusal reaches the client as an ApiCallError with its code.
      const tooBig = new Uint8Array(2 << 20);
      await assert.rejects(uploadBlob(client, subj, tooBig, { kind: 'init-weights', timeoutMs: 2000 }), (e: unknown) => e instanceof ApiCallError && e.code === 'BAD_REQUEST' && /above this coordinator's limit/.test(e.message));
    } finally {
      await closer.close();
      await bus.close();
    }
  });
});

/**
 * A benchmark worker process for the params suite: the product's parameter API on its own NATS
 * connection (bench/lib/params-api.mjs) plus one plain NATS connection for control and for the
 * bare broadcast. Controlled over core NATS (request/reply on bench.ctl.<id>):
 *   {op:'fetch', run, version, bytes, tag} → getParams(run, version) as a worker does for a shard,
 *     check length and pattern, reply {ok, getMs, fromBroadcast};
 *   {op:'broadcast', on:bool} → (un)subscribe to the bare chunked core-NATS broadcast (bench.pv.>):
 *     each chunk's subject is bench.pv.<version>.<index>.<count>.<totalBytes>.<chunkBytes>.<tag>; the
 *     payload is copied once into a reused, preallocated buffer; when all chunks are in, publish
 *     bench.done;
 *   {op:'ping'} → {ok:true}.
 * Usage: node params-worker.mjs <natsUrl> <id>
 */
import { connect } from '@nats-io/transport-node';
import { openParams } from './params-api.mjs';
import { checkPattern } from './pattern.mjs';

const [url, id] = process.argv.slice(2);
if (!url || !id) {
  console.error('usage: params-worker.mjs <natsUrl> <id>');
  process.exit(2);
}
// Never outlive the bench (it also SIGKILLs us by pid on exit).
setInterval(() => process.ppid === 1 && process.exit(3), 1000).unref();

const params = await openParams(url, `bench-worker-${id}`);
const nc = await connect({ servers: url, name: `bench-worker-${id}-raw` });
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const dec = (d) => JSON.parse(new TextDecoder().decode(d));

let buf = new Uint8Array(0);
let bc = null; // { version, count, got, total, chunkBytes, tag, seen: Uint8Array }
let bcSub = null;

function onChunk(msg) {
  const [, , v, i, n, total, chunk, tag] = msg.subject.split('.');
  const version = Number(v);
  const index = Number(i);
  if (!bc || bc.version !== version) {
    const totalBytes = Number(total);
    if (buf.byteLength < totalBytes) buf = new Uint8Array(totalBytes);
    bc = { version, count: Number(n), got: 0, total: totalBytes, chunkBytes: Number(chunk), tag: Number(tag), seen: new Uint8Array(Number(n)) };
  }
  if (bc.seen[index]) return;
  bc.seen[index] = 1;
  buf.set(msg.data, index * bc.chunkBytes);
  bc.got += 1;
  if (bc.got === bc.count) nc.publish('bench.done', enc({ id, version, ok: checkPattern(buf.subarray(0, bc.total), bc.tag) }));
}

nc.subscribe(`bench.ctl.${id}`, {
  callback: (err, msg) => {
    if (err) return;
    const req = dec(msg.data);
    void (async () => {
      try {
        if (req.op === 'broadcast') {
          if (req.on && !bcSub) bcSub = nc.subscribe('bench.pv.>', { callback: (e, m) => !e && onChunk(m) });
          if (!req.on && bcSub) {
            bcSub.unsubscribe();
            bcSub = null;
          }
          await nc.flush();
          msg.respond(enc({ ok: true }));
        } else if (req.op === 'fetch') {
          const served = params.servedFromBroadcast();
          const t = performance.now();
          const data = await params.get(req.run, req.version);
          const getMs = performance.now() - t;
          const ok = !!data && data.byteLength === req.bytes && checkPattern(data, req.tag);
          msg.respond(enc({ ok, getMs, fromBroadcast: params.servedFromBroadcast() > served }));
        } else if (req.op === 'ping') {
          msg.respond(enc({ ok: true }));
        }
      } catch (e) {
        msg.respond(enc({ ok: false, error: e instanceof Error ? e.message : String(e) }));
      }
    })();
  },
});
await nc.flush();
console.log(`ready ${id}`);

const shutdown = async () => {
  await params.close().catch(() => undefined);
  await nc.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

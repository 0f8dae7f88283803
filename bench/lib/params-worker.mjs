/**
 * A benchmark worker process for the params suite: one NatsTransport plus one plain NATS
 * connection. Controlled over core NATS (request/reply on bench.ctl.<id>):
 *   {op:'fetch', mode:'transport'|'store'|'raw', run, version, bytes, sha} → fetch the version
 *     (NatsTransport as shipped: broadcast cache, else the store; a NatsTransport with
 *     paramsBroadcast off: the Object Store only; the raw Object Store), check it, reply {ok, getMs, served};
 *   {op:'broadcast', on:bool} → (un)subscribe to chunked core-NATS broadcasts (bench.pv.>): each
 *     chunk's subject is bench.pv.<version>.<index>.<count>.<totalBytes>.<chunkBytes>; the payload is copied
 *     once into a reused, preallocated buffer; when all chunks are in, publish bench.done.
 * Usage: node params-worker.mjs <natsUrl> <id>
 */
import { NatsTransport } from '@metaloop/shared';
import { jetstream } from '@nats-io/jetstream';
import { Objm, setSha256Backend } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { checkPattern } from './pattern.mjs';

const [url, id] = process.argv.slice(2);
if (!url || !id) {
  console.error('usage: params-worker.mjs <natsUrl> <id>');
  process.exit(2);
}
// Never outlive the bench (it also SIGKILLs us by pid on exit).
const parentWatch = setInterval(() => {
  if (process.ppid === 1) process.exit(3);
}, 1000);
parentWatch.unref();

const transport = await NatsTransport.create({ servers: url, name: `bench-worker-${id}` });
const storeTransport = await NatsTransport.create({ servers: url, name: `bench-worker-${id}-store`, paramsBroadcast: false });
const nc = await connect({ servers: url, name: `bench-worker-${id}-raw` });
const rawStore = await new Objm(jetstream(nc)).open('bench-raw');
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const dec = (d) => JSON.parse(new TextDecoder().decode(d));

let buf = new Uint8Array(0);
let bc = null; // { version, count, got, total, firstMs, seen: Uint8Array }
let bcSub = null;

function onChunk(msg) {
  const [, , v, i, n, total, chunk] = msg.subject.split('.');
  const version = Number(v);
  const index = Number(i);
  const count = Number(n);
  const totalBytes = Number(total);
  if (!bc || bc.version !== version) {
    if (buf.byteLength < totalBytes) buf = new Uint8Array(totalBytes);
    bc = { version, count, got: 0, total: totalBytes, firstMs: performance.now(), firstAt: performance.timeOrigin + performance.now(), chunkBytes: Number(chunk), seen: new Uint8Array(count) };
  }
  if (bc.seen[index]) return;
  bc.seen[index] = 1;
  buf.set(msg.data, index * bc.chunkBytes);
  bc.got += 1;
  if (bc.got === bc.count) {
    const view = buf.subarray(0, bc.total);
    const ok = checkPattern(view, version);
    const lastAt = performance.timeOrigin + performance.now();
    nc.publish('bench.done', enc({ id, version, ok, recvMs: performance.now() - bc.firstMs, firstAt: bc.firstAt, lastAt }));
  }
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
          setSha256Backend(req.sha ?? 'js');
          const served = transport.paramsBroadcast.stats.served;
          const t = performance.now();
          const data =
            req.mode === 'raw'
              ? await rawStore.getBlob(`${req.run}/${req.version}`)
              : await (req.mode === 'store' ? storeTransport : transport).getParams(req.run, req.version);
          const getMs = performance.now() - t;
          const ok = !!data && data.byteLength === req.bytes && checkPattern(data, req.version);
          msg.respond(enc({ ok, getMs, fromBroadcast: transport.paramsBroadcast.stats.served > served }));
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
  await transport.close().catch(() => undefined);
  await storeTransport.close().catch(() => undefined);
  await nc.close().catch(() => undefined);
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

/**
 * params: a steady-state loop of consecutive parameter versions to N worker processes through the
 * product's parameter API as shipped (bench/lib/params-api.mjs: putParams → each worker's
 * getParams, the coordinator's deleteParams of version v−2; no durable copy per version — the
 * Object Store copy is written at checkpoints and for a worker that asks), against the floor of
 * this machine measured in the same run: the same bytes over plain TCP loopback from this process
 * to N receiver processes (one hop each), and the bare chunked core-NATS broadcast of the same
 * bytes (no product code, no store): shipped ≤ 1.3 × bare broadcast for Conv4 and 8 MiB.
 */
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { layoutSize, paramLayout, startNatsServer, validateSpec } from '@metaloop/shared';
import { connect } from '@nats-io/transport-node';
import { openParams } from '../lib/params-api.mjs';
import { fillPattern } from '../lib/pattern.mjs';
import { spawnTracked, stopAll } from '../lib/procs.mjs';
import { fmt, summary } from '../lib/stats.mjs';

export const title = 'params — consecutive parameter versions to N workers against the TCP floor and the bare NATS broadcast';
export const timeoutMs = 600_000;

const HERE = dirname(fileURLToPath(import.meta.url));
const WORKER = join(HERE, '..', 'lib', 'params-worker.mjs');
const SINK = join(HERE, '..', 'lib', 'tcp-sink.mjs');
const MiB = 2 ** 20;
const BROADCAST_CHUNK = 512 * 1024;
const OP_TIMEOUT_MS = 60_000;
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const dec = (d) => JSON.parse(new TextDecoder().decode(d));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function conv4Bytes() {
  const spec = validateSpec({
    name: 'conv4-5w1s',
    seed: 1,
    task: { family: 'synthetic-glyphs', ways: 5, shots: 1, queries: 15 },
    model: { kind: 'conv4', filters: 64 },
    algorithm: { kind: 'maml', innerSteps: 1, innerLr: 0.01 },
    outer: { optimizer: 'adam', lr: 0.001, metaBatch: 32, steps: 1, shardSize: 8 },
  });
  return layoutSize(paramLayout(spec)) * 4;
}

const withTimeout = (p, ms, what) =>
  Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms).unref())]);

/** Two buffers with checkable patterns (tag 0 and 1): version v sends buffers[v & 1], no fill in the loop. */
function patterned(bytes) {
  return [0, 1].map((tag) => {
    const b = new Uint8Array(bytes);
    fillPattern(b, tag);
    return b;
  });
}

/** Time `versions` consecutive iterations of `one(v)` after `warmup` untimed ones, then `finish()` inside the time. */
async function loop({ warmup, versions }, one, finish = async () => {}) {
  for (let v = 1; v <= warmup; v++) await one(v);
  const per = [];
  const t0 = performance.now();
  let last = t0;
  for (let v = warmup + 1; v <= warmup + versions; v++) {
    await one(v);
    const now = performance.now();
    per.push(now - last);
    last = now;
  }
  await finish(warmup + versions);
  const totalMs = performance.now() - t0;
  return { meanMs: totalMs / versions, per: summary(per), settleMs: performance.now() - last };
}

export async function run({ quick, log, signal }) {
  const conv4 = conv4Bytes();
  const sizes = quick
    ? [
        { label: 'Conv4', bytes: conv4, versions: 8, warmup: 2, target: 2, overBroadcast: 1.3 },
        { label: '8 MiB', bytes: 8 * MiB, versions: 3, warmup: 1, target: 2, overBroadcast: 1.3 },
      ]
    : [
        { label: 'Conv4', bytes: conv4, versions: 30, warmup: 3, target: 2, overBroadcast: 1.3 },
        { label: '8 MiB', bytes: 8 * MiB, versions: 5, warmup: 1, target: 2, overBroadcast: 1.3 },
        { label: '64 MiB', bytes: 64 * MiB, versions: 2, warmup: 1, target: 3 },
      ];
  const workerCounts = quick ? [1, 2] : [1, 2, 4];
  const maxN = Math.max(...workerCounts);

  const server = await startNatsServer();
  const children = [];
  const sockets = [];
  let pub = null;
  let nc = null;
  try {
    log(`nats-server ${server.url} (pid ${server.pid})`);
    pub = await openParams(server.url, 'bench-publisher');
    nc = await connect({ servers: server.url, name: 'bench-publisher-raw' });
    const maxPayload = nc.info.max_payload;

    // N worker processes (the product's parameter API) and N plain TCP receivers.
    const ready = [];
    const ports = [];
    for (let i = 0; i < maxN; i++) {
      let resolve;
      ready.push(new Promise((r) => (resolve = r)));
      const child = spawnTracked(process.execPath, [WORKER, server.url, `w${i}`], { onLine: (l) => l.startsWith('ready') && resolve() });
      children.push(child);
      child.once('exit', (code) => code && log(`worker w${i} exited with ${code}: ${child.tail()}`));
      const sink = spawnTracked(process.execPath, [SINK], { onLine: (l) => l.startsWith('port ') && (ports[i] = Number(l.slice(5))) });
      children.push(sink);
    }
    await withTimeout(Promise.all(ready), 60_000, 'worker start');
    await withTimeout((async () => { while (ports.filter(Boolean).length < maxN) await sleep(20); })(), 20_000, 'tcp sink start');
    for (const port of ports) {
      const s = net.connect(port, '127.0.0.1');
      s.setNoDelay(true);
      await new Promise((r, j) => s.once('connect', r).once('error', j));
      sockets.push(s);
    }
    log(`${maxN} worker processes and ${maxN} TCP receivers ready`);

    const ctl = async (i, req) => dec((await nc.request(`bench.ctl.w${i}`, enc(req), { timeout: OP_TIMEOUT_MS })).data);
    const done = new Map();
    nc.subscribe('bench.done', {
      callback: (err, m) => {
        if (err) return;
        const d = dec(m.data);
        const w = done.get(d.version);
        if (w) {
          w.list.push(d);
          if (w.list.length >= w.n) w.resolve(w.list);
        }
      },
    });

    const rows = [];
    let runSeq = 0;
    for (const size of sizes) {
      const bufs = patterned(size.bytes);
      const frames = [0, 1].map(() => {
        const h = Buffer.alloc(4);
        h.writeUInt32LE(size.bytes, 0);
        return h;
      });
      for (const n of workerCounts) {
        if (signal.aborted) throw new Error('aborted');
        const row = { size: size.label, bytes: size.bytes, workers: n, versions: size.versions, target: size.target, overTarget: size.overBroadcast, failures: 0 };

        // Floor: the same bytes to N TCP receivers, each acking a whole frame with one byte.
        row.tcp = await loop(size, async (v) => {
          const acks = sockets.slice(0, n).map((s) => new Promise((res) => s.once('data', res)));
          for (const s of sockets.slice(0, n)) {
            s.cork();
            s.write(frames[v & 1]);
            s.write(bufs[v & 1]);
            s.uncork();
          }
          await withTimeout(Promise.all(acks), OP_TIMEOUT_MS, 'tcp floor');
        });

        // Shipped: putParams, then every worker's getParams (as for a shard of that version);
        // deleteParams of v−2 as the coordinator does; what is still pending settled in the time.
        const run = `bench-params-${++runSeq}`;
        const drops = [];
        let fetches = 0;
        let fromBroadcast = 0;
        row.shipped = await loop(
          size,
          async (v) => {
            await pub.put(run, v, bufs[v & 1]);
            if (v > 2) drops.push(pub.drop(run, v - 2).catch(() => undefined));
            const replies = await Promise.all(Array.from({ length: n }, (_, i) => ctl(i, { op: 'fetch', run, version: v, bytes: size.bytes, tag: v & 1 })));
            if (replies.some((x) => !x.ok)) row.failures += 1;
            if (v > size.warmup) {
              fetches += n;
              fromBroadcast += replies.filter((x) => x.fromBroadcast).length;
            }
          },
          async (last) => {
            await Promise.all(drops);
            await pub.settle(run, last);
          },
        );
        row.fromBroadcast = fetches ? fromBroadcast / fetches : null;
        for (const v of [size.warmup + size.versions - 1, size.warmup + size.versions]) await pub.drop(run, v).catch(() => undefined);

        // Bare broadcast: chunks on core NATS to the N workers, no product code, no store.
        for (let i = 0; i < maxN; i++) await ctl(i, { op: 'broadcast', on: i < n });
        const base = runSeq * 1000;
        row.broadcast = await loop(size, async (v) => {
          const version = base + v;
          const waiting = withTimeout(new Promise((resolve) => done.set(version, { n, list: [], resolve })), OP_TIMEOUT_MS, `broadcast of version ${version}`);
          const data = bufs[v & 1];
          const count = Math.ceil(data.byteLength / BROADCAST_CHUNK);
          for (let i = 0; i < count; i++) {
            nc.publish(`bench.pv.${version}.${i}.${count}.${data.byteLength}.${BROADCAST_CHUNK}.${v & 1}`, data.subarray(i * BROADCAST_CHUNK, Math.min(data.byteLength, (i + 1) * BROADCAST_CHUNK)));
          }
          const list = await waiting;
          done.delete(version);
          if (list.some((d) => !d.ok)) row.failures += 1;
        });
        for (let i = 0; i < maxN; i++) await ctl(i, { op: 'broadcast', on: false });

        row.ratio = row.shipped.meanMs / row.tcp.meanMs;
        row.overBroadcast = row.shipped.meanMs / row.broadcast.meanMs;
        rows.push(row);
        log(`${size.label} N=${n}: shipped ${fmt(row.shipped.meanMs)} ms/version, TCP ${fmt(row.tcp.meanMs)} ms, bare broadcast ${fmt(row.broadcast.meanMs)} ms → ${fmt(row.ratio)}× TCP${row.failures ? `, ${row.failures} FAILED` : ''}`);
      }
    }
    return report({ rows, maxPayload, conv4, sizes, workerCounts });
  } finally {
    for (const s of sockets) s.destroy();
    await stopAll(children, 3000);
    await pub?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await server.stop();
  }
}

function report({ rows, maxPayload, conv4, sizes, workerCounts }) {
  const figures = [];
  const targets = [];
  for (const r of rows) {
    const key = `${r.size.replace(/\s+/g, '')}_N${r.workers}`;
    const base = { size: r.size, bytes: r.bytes, workers: r.workers, versions: r.versions, failures: r.failures };
    for (const arm of ['shipped', 'tcp', 'broadcast']) {
      figures.push({ id: `${arm}_${key}_ms_per_version`, unit: 'ms per version', value: r[arm].meanMs, ...base, perVersion: r[arm].per });
    }
    figures.push({ id: `shipped_${key}_over_tcp`, unit: 'ratio (shipped / TCP floor)', value: r.ratio, target: r.target, ...base });
    figures.push({ id: `shipped_${key}_effective`, unit: 'GB/s (model bytes / ms per version)', value: r.bytes / (r.shipped.meanMs * 1e-3) / 1e9, ...base });
    if (r.fromBroadcast !== null) figures.push({ id: `shipped_${key}_from_broadcast`, unit: 'fraction of fetches', value: r.fromBroadcast, ...base });
    const met = r.ratio <= r.target && r.failures === 0;
    targets.push({ what: `params ${r.size} to ${r.workers} worker(s): shipped / TCP floor`, target: `<= ${r.target}`, value: Number(r.ratio.toFixed(3)), met, failures: r.failures });
    figures.push({ id: `shipped_${key}_over_broadcast`, unit: 'ratio (shipped / bare broadcast)', value: r.overBroadcast, ...(r.overTarget ? { target: r.overTarget } : {}), ...base });
    if (r.overTarget) {
      targets.push({ what: `params ${r.size} to ${r.workers} worker(s): shipped / bare broadcast`, target: `<= ${r.overTarget}`, value: Number(r.overBroadcast.toFixed(3)), met: r.overBroadcast <= r.overTarget && r.failures === 0, failures: r.failures });
    }
  }
  const c = (s) => `${fmt(s.median)} (${fmt(s.min, 2)}–${fmt(s.max, 2)})`;
  const out = [
    `Steady state: consecutive versions v = 1, 2, … of one run to N worker processes; ms per version = the loop's time over the versions after the warm-up, divided by their number (median (min–max) of single versions beside it). ` +
      `**Shipped** = the product's parameter API (\`putParams\` on the publisher, then each worker's \`getParams\` of that version, asked by a control request as a shard assignment would; \`deleteParams\` of v−2 as the coordinator does; no durable copy per version: the Object Store copy is written at checkpoints and for a worker that asks, off this path). ` +
      `**TCP floor** = the same bytes from this process to N plain TCP receiver processes on loopback (one hop each, one-byte ack per version), measured in this run. **Bare broadcast** = the same bytes in ${BROADCAST_CHUNK / 1024} KiB chunks on core NATS to the N workers (no product code, no store; two hops through nats-server). ` +
      `Conv4 = the 5-way Conv4 (64 filters, 28×28) parameter vector, ${conv4} bytes. nats-server \`-js\` on loopback, file store in /tmp, max_payload ${maxPayload} bytes. Each worker is a separate Node process.`,
    '',
    '| size | N | versions (warm-up) | shipped ms/version (single versions) | TCP floor ms/version | shipped / TCP (target) | bare broadcast ms/version | shipped / bare broadcast (target) | fetches served from the broadcast |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const size = sizes.find((s) => s.label === r.size);
    const met = r.ratio <= r.target && r.failures === 0;
    out.push(
      `| ${r.size} | ${r.workers} | ${r.versions} (${size.warmup}) | ${fmt(r.shipped.meanMs)} (${c(r.shipped.per)}) | ${fmt(r.tcp.meanMs)} (${c(r.tcp.per)}) | **${fmt(r.ratio, 3)}×** (≤ ${r.target}×): ${met ? 'met' : '**missed**'}${r.failures ? `, ${r.failures} versions FAILED their check` : ''} | ${fmt(r.broadcast.meanMs)} (${fmt(r.broadcast.meanMs / r.tcp.meanMs, 3)}× TCP) | ${r.overTarget ? `**${fmt(r.overBroadcast, 3)}×** (≤ ${r.overTarget}×): ${r.overBroadcast <= r.overTarget && r.failures === 0 ? 'met' : '**missed**'}` : `${fmt(r.overBroadcast, 3)}×`} | ${r.fromBroadcast === null ? '—' : `${fmt(r.fromBroadcast * 100, 3)} %`} |`,
    );
  }
  const missed = targets.filter((t) => !t.met);
  const notes = [
    missed.length
      ? `Missed in this run (${missed.length} of ${targets.length}): ${missed.map((t) => `${t.what} = ${t.value} (target ${t.target})`).join('; ')}.`
      : `Every target met in this run (${targets.length}).`,
  ];
  return { figures, table: out.join('\n'), notes, targets, config: { sizes, workerCounts, broadcastChunkBytes: BROADCAST_CHUNK } };
}

/**
 * params: time for a new parameter version to reach every one of N worker processes, through
 * NatsTransport as shipped (putParams: chunked core-NATS broadcast + durable Object Store put in
 * the background → getParams in each worker) on a real nats-server on loopback, next to the
 * Object-Store-only path (paramsBroadcast: false) with js-sha256 (the previous shipped path) and
 * with node:crypto SHA-256, and the bare broadcast prototype (no transport) as a floor.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { layoutSize, NatsTransport, paramLayout, startNatsServer, validateSpec } from '@metaloop/shared';
import { jetstream } from '@nats-io/jetstream';
import { Objm, setSha256Backend } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import jsSha256 from 'js-sha256';
import { fillPattern } from '../lib/pattern.mjs';
import { spawnTracked, stopAll } from '../lib/procs.mjs';
import { fmt, summary } from '../lib/stats.mjs';

export const title = 'params — distributing a parameter version to N workers';
export const timeoutMs = 900_000;

const HERE = dirname(fileURLToPath(import.meta.url));
const WORKER = join(HERE, '..', 'lib', 'params-worker.mjs');
const SINK = join(HERE, '..', 'lib', 'tcp-sink.mjs');
const BUDGET_MS = 26;
const RUN = 'bench-params';
const MiB = 2 ** 20;
const BROADCAST_CHUNK = 512 * 1024;
const OP_TIMEOUT_MS = 60_000;
const enc = (o) => new TextEncoder().encode(JSON.stringify(o));
const dec = (d) => JSON.parse(new TextDecoder().decode(d));

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

export async function run({ quick, log, signal }) {
  const conv4 = conv4Bytes();
  const sizes = quick
    ? [{ label: 'Conv4', bytes: conv4, reps: 3 }, { label: '8 MiB', bytes: 8 * MiB, reps: 2 }]
    : [
        { label: 'Conv4', bytes: conv4, reps: 15 },
        { label: '1 MiB', bytes: MiB, reps: 10 },
        { label: '8 MiB', bytes: 8 * MiB, reps: 5 },
        { label: '64 MiB', bytes: 64 * MiB, reps: 3 },
      ];
  const workerCounts = quick ? [1, 2] : [1, 2, 4];
  const modes = ['store-js', 'store-native', 'transport', 'broadcast'];

  const server = await startNatsServer();
  const children = [];
  let transport = null;
  let storeTransport = null;
  let nc = null;
  try {
    log(`nats-server ${server.url} (pid ${server.pid})`);
    transport = await NatsTransport.create({ servers: server.url, name: 'bench-publisher' });
    storeTransport = await NatsTransport.create({ servers: server.url, name: 'bench-publisher-store', paramsBroadcast: false });
    nc = await connect({ servers: server.url, name: 'bench-publisher-raw' });
    const objm = new Objm(jetstream(nc));
    const raw = await objm.create('bench-raw', { storage: 'file' });
    const maxPayload = nc.info.max_payload;

    const maxN = Math.max(...workerCounts);
    const ready = [];
    for (let i = 0; i < maxN; i++) {
      let resolve;
      ready.push(new Promise((r) => (resolve = r)));
      const child = spawnTracked(process.execPath, [WORKER, server.url, `w${i}`], { onLine: (l) => l.startsWith('ready') && resolve() });
      children.push(child);
      child.once('exit', (code) => code && log(`worker w${i} exited with ${code}: ${child.tail()}`));
    }
    await withTimeout(Promise.all(ready), 60_000, 'worker start');
    log(`${maxN} worker processes ready`);

    const ctl = async (i, req, timeout = OP_TIMEOUT_MS) => dec((await nc.request(`bench.ctl.w${i}`, enc(req), { timeout })).data);

    // Round trip of an empty control request: the floor under every "notify then fetch" figure.
    const rtts = [];
    for (let r = 0; r < 50; r++) {
      const t = performance.now();
      await ctl(0, { op: 'ping' });
      rtts.push(performance.now() - t);
    }

    // Hashing speed (the Object Store hashes every chunk on put and on get).
    const hashProbe = new Uint8Array(8 * MiB);
    let t = performance.now();
    jsSha256.sha256.create().update(hashProbe).digest();
    const jsShaMs = performance.now() - t;
    t = performance.now();
    createHash('sha256').update(hashProbe).digest();
    const nativeShaMs = performance.now() - t;

    // Done messages of broadcast mode: version → set of worker ids.
    const done = new Map();
    const waiters = new Map();
    nc.subscribe('bench.done', {
      callback: (err, m) => {
        if (err) return;
        const d = dec(m.data);
        const list = done.get(d.version) ?? [];
        list.push(d);
        done.set(d.version, list);
        waiters.get(d.version)?.(list);
      },
    });
    const allDone = (version, n) =>
      withTimeout(
        new Promise((resolve) => {
          const check = (list) => list.length >= n && resolve(list);
          waiters.set(version, check);
          check(done.get(version) ?? []);
        }),
        OP_TIMEOUT_MS,
        `broadcast of version ${version}`,
      );

    const broadcast = (version, data) => {
      const count = Math.ceil(data.byteLength / BROADCAST_CHUNK);
      for (let i = 0; i < count; i++) {
        const chunk = data.subarray(i * BROADCAST_CHUNK, Math.min(data.byteLength, (i + 1) * BROADCAST_CHUNK));
        nc.publish(`bench.pv.${version}.${i}.${count}.${data.byteLength}.${BROADCAST_CHUNK}`, chunk);
      }
    };

    // Floor: the same bytes over plain TCP loopback to one other process (one hop; NATS makes two).
    let sinkPort;
    const sink = spawnTracked(process.execPath, [SINK], { onLine: (l) => l.startsWith('port ') && (sinkPort = Number(l.slice(5))) });
    children.push(sink);
    await withTimeout(new Promise((r) => { const t = setInterval(() => sinkPort && (clearInterval(t), r()), 20); }), 20_000, 'tcp sink start');
    const tcp = net.connect(sinkPort, '127.0.0.1');
    tcp.setNoDelay(true);
    await new Promise((r, j) => tcp.once('connect', r).once('error', j));
    const tcpFloor = {};
    for (const size of sizes) {
      const frame = Buffer.alloc(size.bytes + 4);
      frame.writeUInt32LE(size.bytes, 0);
      const ts = [];
      for (let r = 0; r < size.reps + 1; r++) {
        const tt = performance.now();
        const acked = new Promise((res) => tcp.once('data', res));
        tcp.write(frame);
        await withTimeout(acked, OP_TIMEOUT_MS, 'tcp floor');
        if (r > 0) ts.push(performance.now() - tt);
      }
      tcpFloor[size.label] = summary(ts);
    }
    tcp.destroy();

    let version = 0;
    const rows = [];
    for (const size of sizes) {
      const data = new Uint8Array(size.bytes);
      for (const n of workerCounts) {
        for (let i = 0; i < maxN; i++) await ctl(i, { op: 'broadcast', on: false });
        for (const mode of modes) {
          if (signal.aborted) throw new Error('aborted');
          const bcast = mode === 'broadcast';
          for (let i = 0; i < maxN; i++) await ctl(i, { op: 'broadcast', on: bcast && i < n });
          // NatsTransport.create selects node:crypto; 'store-js' measures the previous default.
          const sha = mode === 'store-js' ? 'js' : 'native';
          setSha256Backend(sha);
          const s = { totalMs: [], putMs: [], getMs: [], getMaxMs: [], firstMs: [] };
          let fromBroadcast = 0;
          let fetches = 0;
          let failures = 0;
          for (let r = 0; r < size.reps + 1; r++) {
            version += 1;
            fillPattern(data, version);
            // One run per worker count: a worker process follows a run's broadcast from its first
            // getParams on, so only the N workers asked receive the chunks (as with the bare broadcast).
            const run = `${RUN}-n${n}`;
            const t0 = performance.now();
            let putMs = NaN;
            let replies = [];
            if (mode !== 'broadcast') {
              await (mode === 'transport' ? transport : storeTransport).putParams(run, version, data);
              putMs = performance.now() - t0;
              const req = { op: 'fetch', mode: mode === 'transport' ? 'transport' : 'store', run, version, bytes: size.bytes, sha };
              replies = await Promise.all(Array.from({ length: n }, (_, i) => ctl(i, req)));
              if (r > 0) {
                fetches += replies.length;
                fromBroadcast += replies.filter((x) => x.fromBroadcast).length;
              }
            } else {
              const waiting = allDone(version, n);
              const t0Abs = performance.timeOrigin + t0;
              broadcast(version, data);
              replies = (await waiting).map((d) => ({ ok: d.ok, getMs: d.recvMs, firstMs: d.firstAt - t0Abs }));
            }
            const totalMs = performance.now() - t0;
            // Housekeeping, outside the timing: keep the store small (settles the background put).
            if (mode !== 'broadcast') await (mode === 'transport' ? transport : storeTransport).deleteParams(run, version);
            if (replies.some((x) => !x.ok)) failures += 1;
            if (r === 0) continue; // warm-up
            s.totalMs.push(totalMs);
            if (Number.isFinite(putMs)) s.putMs.push(putMs);
            const gets = replies.map((x) => x.getMs).filter(Number.isFinite);
            s.getMs.push(...gets);
            s.getMaxMs.push(Math.max(...gets));
            s.firstMs.push(...replies.map((x) => x.firstMs).filter(Number.isFinite));
          }
          const total = summary(s.totalMs);
          const row = {
            size: size.label,
            bytes: size.bytes,
            workers: n,
            mode,
            reps: size.reps,
            failures,
            total,
            put: s.putMs.length ? summary(s.putMs) : null,
            fromBroadcast: fetches ? fromBroadcast / fetches : null,
            get: summary(s.getMs),
            first: s.firstMs.length ? summary(s.firstMs) : null,
            effectiveGBps: size.bytes / (total.median * 1e-3) / 1e9,
            budgetShare: total.median / BUDGET_MS,
          };
          rows.push(row);
          log(`${size.label} N=${n} ${mode}: ${fmt(total.median)} ms (${fmt(row.effectiveGBps)} GB/s)${failures ? `, ${failures} FAILED` : ''}`);
        }
      }
    }

    return report({ rows, tcpFloor, rtts: summary(rtts), jsShaMs, nativeShaMs, maxPayload, conv4, sizes, workerCounts, modes });
  } finally {
    await stopAll(children, 3000);
    await transport?.close().catch(() => undefined);
    await storeTransport?.close().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await server.stop();
  }
}

const MODE_TEXT = {
  'store-js': 'before: NatsTransport putParams → getParams via the Object Store only, js-sha256 (the previous shipped path)',
  'store-native': 'Object Store only (paramsBroadcast: false), SHA-256 on node:crypto',
  transport: 'NatsTransport as shipped: chunked core-NATS broadcast + durable put in the background → getParams',
  broadcast: 'floor: bare chunked core-NATS broadcast (no transport, no store)',
};
const SHORT = {
  'store-js': 'before: Object Store, js SHA',
  'store-native': 'Object Store, native SHA',
  transport: 'NatsTransport (shipped: broadcast + store)',
  broadcast: 'bare broadcast (floor)',
};

function report({ rows, tcpFloor, rtts, jsShaMs, nativeShaMs, maxPayload, conv4, sizes, workerCounts, modes }) {
  const figures = [];
  for (const r of rows) {
    const base = { size: r.size, bytes: r.bytes, workers: r.workers, mode: r.mode, failures: r.failures };
    const key = `${r.mode}_${r.size.replace(/\s+/g, '')}_N${r.workers}`;
    figures.push({ id: `${key}_total`, unit: 'ms', value: r.total.median, ...base, ...r.total });
    figures.push({ id: `${key}_effective`, unit: 'GB/s', value: r.effectiveGBps, ...base });
    figures.push({ id: `${key}_budget`, unit: 'fraction of a 26 ms meta-step', value: r.budgetShare, ...base });
    if (r.put) figures.push({ id: `${key}_put`, unit: 'ms', value: r.put.median, ...base, ...r.put });
    if (r.fromBroadcast !== null) figures.push({ id: `${key}_from_broadcast`, unit: 'fraction of fetches', value: r.fromBroadcast, ...base });
    figures.push({ id: `${key}_get`, unit: 'ms', value: r.get.median, ...base, ...r.get });
    if (r.first) figures.push({ id: `${key}_first_chunk`, unit: 'ms', value: r.first.median, ...base, ...r.first });
  }
  for (const [label, st] of Object.entries(tcpFloor)) {
    const bytes = sizes.find((x) => x.label === label).bytes;
    figures.push({ id: `tcp_floor_${label.replace(/\s+/g, '')}`, unit: 'ms', value: st.median, bytes, ...st });
  }
  figures.push({ id: 'ctl_rtt', unit: 'ms', value: rtts.median, ...rtts });
  figures.push({ id: 'sha256_js_8MiB', unit: 'ms', value: jsShaMs });
  figures.push({ id: 'sha256_native_8MiB', unit: 'ms', value: nativeShaMs });

  const verdict = (r) => {
    const miss = [];
    if (r.effectiveGBps < 1) miss.push('< 1 GB/s');
    if (r.size === 'Conv4' && r.total.median > 1) miss.push('> 1 ms');
    if (r.size === '64 MiB' && r.total.median > 100) miss.push('> 100 ms');
    return miss.length ? `**missed** (${miss.join(', ')})` : 'met';
  };
  const find = (size, n, mode) => rows.find((r) => r.size === size && r.workers === n && r.mode === mode);
  const c = (x) => (x ? `${fmt(x.median)} (${fmt(x.min, 2)}–${fmt(x.max, 2)})` : '—');

  const out = [
    `Time from the publisher starting to publish a new version until every one of N worker processes holds all of its bytes (checked), in ms: median (min–max) of the repetitions after one warm-up. ` +
      `Conv4 = the 5-way Conv4 (64 filters, 28×28) parameter vector, ${conv4} bytes. Each worker is a separate Node process with its own connections; nats-server ${'`'}-js${'`'} on loopback with its file store in /tmp, max_payload ${maxPayload} bytes. ` +
      `The last column is the floor of this machine: the same bytes over plain TCP loopback from this process to one other process (one hop; NATS needs two).`,
    '',
    `| size | N | ${modes.map((m) => SHORT[m]).join(' | ')} | TCP floor (1 hop) |`,
    `|---|---|${modes.map(() => '---').join('|')}|---|`,
  ];
  for (const size of sizes) {
    for (const n of workerCounts) {
      const cells = modes.map((m) => {
        const r = find(size.label, n, m);
        return r ? `${c(r.total)}${r.failures ? ` (${r.failures} failed)` : ''}` : '—';
      });
      out.push(`| ${size.label} | ${n} | ${cells.join(' | ')} | ${n === 1 ? c(tcpFloor[size.label]) : ''} |`);
    }
  }
  out.push(
    '',
    'Against the targets (issue 9: ≥ 1 GB/s effective, Conv4 ≤ 1 ms, 64 MiB ≤ 100 ms). Effective GB/s = model bytes / time until every worker has them (not multiplied by N); "per step" = that time as a share of a 26 ms GPU meta-step.',
    '',
    '| size | N | path | ms | effective GB/s | per 26 ms step | target |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of rows.filter((x) => x.mode === 'store-js' || x.mode === 'transport')) {
    out.push(`| ${r.size} | ${r.workers} | ${MODE_TEXT[r.mode]} | ${fmt(r.total.median)} | ${fmt(r.effectiveGBps)} | ${fmt(r.budgetShare * 100, 2)} % | ${verdict(r)} |`);
  }
  out.push(
    '',
    'Where the time goes (N = 1): publisher putParams (shipped: until the chunks are handed to the client; the durable put runs on in the background), worker getParams from the control request (transport paths) or receive from first to last chunk and the delay until the first chunk arrives (bare broadcast), ms, median; and the share of fetches served from the broadcast.',
    '',
    '| size | path | total | put | get / receive | first chunk after | served from the broadcast |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of rows.filter((x) => x.workers === 1)) {
    const share = r.fromBroadcast === null ? '—' : `${fmt(r.fromBroadcast * 100, 3)} %`;
    out.push(`| ${r.size} | ${SHORT[r.mode]} | ${fmt(r.total.median)} | ${r.put ? fmt(r.put.median) : '—'} | ${fmt(r.get.median)} | ${r.first ? fmt(r.first.median) : '—'} | ${share} |`);
  }
  const notes = [
    `Floors measured in the same run: an empty control request/reply to a worker process takes ${fmt(rtts.median)} ms (median; min ${fmt(rtts.min)}); hashing 8 MiB takes ${fmt(jsShaMs)} ms with js-sha256 (the Object Store's default backend) and ${fmt(nativeShaMs)} ms with node:crypto. ` +
      'Shipped path: putParams copies θ once (callers may reuse their buffer), publishes it in ≤ 512 KiB chunks on `<prefix>.params.<run>.<version>.<index>.<count>.<bytes>` and starts the Object Store put, which is settled before the next version, deleteParams, a checkpoint and close (here: by the housekeeping deleteParams after each repetition, outside the timing). Each worker process subscribed on its first getParams of the run; it assembles the chunks into one buffer per version and answers getParams from it. ' +
      'Its "total" also holds the control request that asks each worker to fetch (a separate connection, so the request can overtake the chunks: getParams then waits for the version in flight); the bare broadcast has no such request — workers report when the last chunk is in.',
  ];
  const targets = rows
    .filter((r) => r.mode === 'transport')
    .map((r) => ({ what: `${SHORT[r.mode]}: ${r.size} to ${r.workers} workers`, value: Number(r.total.median.toFixed(3)), unit: 'ms', effectiveGBps: Number(r.effectiveGBps.toFixed(4)), met: verdict(r) === 'met' }));
  return { figures, table: out.join('\n'), notes, targets, config: { sizes, workerCounts, modes, broadcastChunkBytes: BROADCAST_CHUNK, budgetMs: BUDGET_MS } };
}

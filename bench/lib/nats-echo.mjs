#!/usr/bin/env node
/**
 * The bare core-NATS request/reply floor: a process that answers every request on
 * `bench.echo` with its payload (plain @nats-io/transport-node, no Metaloop code), so the
 * round trip a bench measures against it is one request and one reply through nats-server
 * between two processes. Prints `ready` once subscribed. Usage: node nats-echo.mjs <natsUrl>
 */
import { connect } from '@nats-io/transport-node';

const url = process.argv[2];
if (!url) {
  console.error('usage: nats-echo.mjs <natsUrl>');
  process.exit(2);
}
setInterval(() => process.ppid === 1 && process.exit(3), 1000).unref();
const nc = await connect({ servers: url, name: 'bench-echo' });
nc.subscribe('bench.echo', { callback: (err, m) => !err && m.respond(m.data) });
await nc.flush();
console.log('ready');
const stop = () => void nc.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

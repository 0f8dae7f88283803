#!/usr/bin/env node
// Serves ONE file over http on the loopback interface, so that tfjs-node's installer
// (scripts/install.js, which only knows http(s) URLs) can "download" a locally built
// libtensorflow tarball. Used by scripts/tfjs-node-from-wheel.sh.
//
//   node serve-file.mjs <file> <port-file> [max-seconds]
//
// Listens on 127.0.0.1 with an ephemeral port, writes the port to <port-file> once it
// is listening, answers GET /<basename of file> with the file and 404 otherwise, and
// stops by itself after max-seconds (default 900) or on SIGTERM/SIGINT.
import { createReadStream, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { basename } from 'node:path';

const [file, portFile, maxSecondsArg] = process.argv.slice(2);
if (!file || !portFile) {
  console.error('usage: serve-file.mjs <file> <port-file> [max-seconds]');
  process.exit(2);
}
const size = statSync(file).size;
const route = `/${basename(file)}`;
const maxSeconds = Number(maxSecondsArg ?? 900);

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === route) {
    res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(size) });
    createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('not found\n');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(() => {
  console.error(`serve-file: stopping after ${maxSeconds}s`);
  process.exit(0);
}, maxSeconds * 1000).unref();

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  writeFileSync(portFile, `${addr.port}\n`);
});

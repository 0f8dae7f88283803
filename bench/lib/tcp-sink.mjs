/**
 * The machine's floor for moving bytes between two processes: a plain TCP loopback receiver that
 * reads length-prefixed (u32 LE) frames and answers one byte per complete frame.
 * Prints its port on stdout. Usage: node tcp-sink.mjs
 */
import net from 'node:net';

const server = net.createServer((sock) => {
  sock.setNoDelay(true);
  let need = -1;
  let got = 0;
  let head = Buffer.alloc(0);
  sock.on('data', (d) => {
    while (d.length) {
      if (need < 0) {
        head = Buffer.concat([head, d]);
        if (head.length < 4) return;
        need = head.readUInt32LE(0);
        d = head.subarray(4);
        head = Buffer.alloc(0);
        got = 0;
      }
      const take = Math.min(need - got, d.length);
      got += take;
      d = d.subarray(take);
      if (got === need) {
        need = -1;
        sock.write('k');
      }
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(`port ${server.address().port}`));
setInterval(() => {
  if (process.ppid === 1) process.exit(3);
}, 1000).unref();
process.on('SIGTERM', () => process.exit(0));

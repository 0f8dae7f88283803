/** Machine, version and load information recorded with every benchmark result. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(ROOT, 'package.json'));

function pkgVersion(name) {
  try {
    // Walk node_modules directly: some packages do not export ./package.json.
    const p = join(ROOT, 'node_modules', ...name.split('/'), 'package.json');
    return JSON.parse(readFileSync(p, 'utf8')).version;
  } catch {
    try {
      return require(`${name}/package.json`).version;
    } catch {
      return null;
    }
  }
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function natsServerVersion() {
  for (const bin of [process.env.METALOOP_NATS_SERVER, 'nats-server', '/usr/sbin/nats-server'].filter(Boolean)) {
    const v = run(bin, ['--version']);
    if (v) return v.replace(/^nats-server:\s*/, '');
  }
  return null;
}

export function loadavg() {
  const [m1, m5, m15] = os.loadavg();
  return { '1m': Number(m1.toFixed(2)), '5m': Number(m5.toFixed(2)), '15m': Number(m15.toFixed(2)) };
}

export function machineInfo() {
  const cpus = os.cpus();
  const status = run('git', ['status', '--porcelain']);
  return {
    hostname: os.hostname(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    memoryBytes: os.totalmem(),
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    versions: {
      '@tensorflow/tfjs-core': pkgVersion('@tensorflow/tfjs-core'),
      '@tensorflow/tfjs-node': pkgVersion('@tensorflow/tfjs-node'),
      '@tensorflow/tfjs-backend-wasm': pkgVersion('@tensorflow/tfjs-backend-wasm'),
      '@nats-io/transport-node': pkgVersion('@nats-io/transport-node'),
      '@nats-io/jetstream': pkgVersion('@nats-io/jetstream'),
      '@nats-io/obj': pkgVersion('@nats-io/obj'),
      protobufjs: pkgVersion('protobufjs'),
      'nats-server': natsServerVersion(),
    },
    git: {
      commit: run('git', ['rev-parse', 'HEAD']),
      // Others commit in this checkout concurrently: the count of modified paths says how far the
      // measured tree is from the commit.
      modifiedPaths: status === null ? null : status.split('\n').filter(Boolean).length,
    },
  };
}

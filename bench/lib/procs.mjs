/** Child processes started by benchmarks: tracked by pid and killed on exit, whatever happens. */
import { spawn } from 'node:child_process';

const live = new Set();
let hooked = false;

function hook() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** spawn() whose child is SIGKILLed when this process exits; output lines go to `onLine`. */
export function spawnTracked(cmd, args, { onLine, env, cwd } = {}) {
  hook();
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, cwd });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const tail = [];
  const feed = (stream) => (chunk) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      tail.push(`${stream}: ${line}`);
      if (tail.length > 30) tail.shift();
      onLine?.(line, stream);
    }
  };
  child.stdout.on('data', feed('out'));
  child.stderr.on('data', feed('err'));
  child.tail = () => tail.join('\n');
  return child;
}

/** SIGTERM by pid, SIGKILL after graceMs; resolves when the child has exited. */
export async function stopChild(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
}

export async function stopAll(children, graceMs) {
  await Promise.all(children.map((c) => stopChild(c, graceMs)));
}

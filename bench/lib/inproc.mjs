/** Runs bench/lib/inproc-run.mjs in a child process (tracked) and returns its JSON result. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnTracked, stopChild } from './procs.mjs';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'inproc-run.mjs');

export async function runInProcess(spec, { timeoutMs }) {
  let result = null;
  const child = spawnTracked(process.execPath, [SCRIPT, JSON.stringify(spec)], {
    onLine: (line, stream) => {
      if (stream === 'out' && line.startsWith('{')) result = JSON.parse(line);
    },
  });
  const timer = setTimeout(() => void stopChild(child, 1000), timeoutMs);
  const code = await new Promise((r) => child.once('exit', r));
  clearTimeout(timer);
  if (!result) throw new Error(`in-process run failed (exit ${code}): ${child.tail()}`);
  return result;
}

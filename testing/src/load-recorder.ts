/**
 * Preload (`node --import <this file>`) that records every module a process loads, so a test can
 * tell which packages a command pulled in. Two sources, because Node 20 has two loaders:
 *   - ESM: a module.register() hook (load-recorder-hooks.ts, run on the loader thread) appends the
 *     URL of every module it loads — ESM files, and CommonJS entry points reached by `import` —
 *     to `$METALOOP_LOAD_RECORD.esm`, synchronously, before the module is evaluated;
 *   - CommonJS: files reached by `require()` inside CommonJS packages (most of @tensorflow/*,
 *     @kubernetes/client-node's dependencies) never pass the ESM hooks; they are in require.cache,
 *     which this file writes to `$METALOOP_LOAD_RECORD.cjs` on process exit and on SIGUSR2.
 * A long-running process (`metaloop coordinator`) is sent SIGUSR2 once it is ready; the `.cjs` file
 * appearing tells the test the dump is complete. `loadedModules()` reads both lists back.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

const base = process.env.METALOOP_LOAD_RECORD;
if (base) {
  appendFileSync(`${base}.esm`, '');
  register('./load-recorder-hooks.js', import.meta.url, { data: { file: `${base}.esm` } });
  const cache = createRequire(import.meta.url).cache;
  const dump = () => writeFileSync(`${base}.cjs`, Object.keys(cache).map((p) => pathToFileURL(p).href).join('\n') + '\n');
  process.on('exit', dump);
  process.on('SIGUSR2', dump);
}

/** Module URLs recorded under `base` (both loaders, deduplicated); throws when nothing was recorded. */
export function loadedModules(base: string): string[] {
  for (const f of [`${base}.esm`, `${base}.cjs`]) {
    if (!existsSync(f)) throw new Error(`no module record at ${f}: was the process started with --import load-recorder.js and METALOOP_LOAD_RECORD set?`);
  }
  const lines = [readFileSync(`${base}.esm`, 'utf8'), readFileSync(`${base}.cjs`, 'utf8')].join('\n').split('\n');
  return [...new Set(lines.filter((l) => l.trim() !== ''))];
}

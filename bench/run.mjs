#!/usr/bin/env node
/**
 * Metaloop benchmark runner: `npm run bench [-- [--quick] suite ...]`.
 * Each suite is bench/suites/<name>.mjs exporting `title`, `timeoutMs` and `run(ctx)`, which
 * returns { figures, table, notes, config }. The runner adds machine info, versions, load and the
 * command, writes bench/results/<suite>.json and regenerates the suite's section of RESULTS.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg, machineInfo, ROOT } from './lib/machine.mjs';
import { sectionPreamble, writeJson, writeSection } from './lib/results.mjs';

/** Every suite the project defines, in RESULTS.md order (compute comes from the fast-compute issue). */
export const SUITES = ['codec', 'params', 'transport', 'scaling', 'compute', 'data'];

const suitePath = (name) => join(ROOT, 'bench', 'suites', `${name}.mjs`);

function usage() {
  const have = SUITES.filter((s) => existsSync(suitePath(s)));
  return [
    'usage: npm run bench [-- [--quick] [suite ...]]',
    `suites: ${SUITES.map((s) => (have.includes(s) ? s : `${s} (not written yet)`)).join(', ')}`,
    'default: every suite that exists. --quick: fewer repetitions and sizes (development only;',
    'results are still written, and marked quick).',
  ].join('\n');
}

function parseArgs(argv) {
  const opts = { quick: false, suites: [] };
  for (const a of argv) {
    if (a === '--quick') opts.quick = true;
    else if (a === '-h' || a === '--help') {
      console.log(usage());
      process.exit(0);
    } else if (a.startsWith('-')) {
      console.error(`bench: unknown option ${a}\n${usage()}`);
      process.exit(2);
    } else opts.suites.push(a);
  }
  const unknown = opts.suites.filter((s) => !SUITES.includes(s));
  if (unknown.length) {
    console.error(`bench: unknown suite${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known suites: ${SUITES.join(', ')}`);
    process.exit(2);
  }
  const missing = opts.suites.filter((s) => !existsSync(suitePath(s)));
  if (missing.length) {
    console.error(`bench: suite ${missing.join(', ')} is not written yet (no bench/suites/${missing[0]}.mjs)\n${usage()}`);
    process.exit(2);
  }
  if (opts.suites.length === 0) opts.suites = SUITES.filter((s) => existsSync(suitePath(s)));
  return opts;
}

function commandLine(argv) {
  const args = argv.join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${args ? ` -- ${args}` : ''}`;
  return `node bench/run.mjs${args ? ` ${args}` : ''}`;
}

async function runSuite(name, opts, command, machine) {
  const mod = await import(pathToFileURL(suitePath(name)).href);
  const timeoutMs = (mod.timeoutMs ?? 300_000) * (opts.quick ? 0.5 : 1);
  const log = (msg) => console.log(`[${name}] ${msg}`);
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const controller = new AbortController();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`suite ${name} exceeded its ${Math.round(timeoutMs / 1000)} s limit`));
    }, timeoutMs);
  });
  let out;
  try {
    out = await Promise.race([mod.run({ quick: opts.quick, log, signal: controller.signal, command }), timeout]);
  } finally {
    clearTimeout(timer);
  }
  const seconds = (performance.now() - t0) / 1000;
  const loadAfter = loadavg();
  const doc = {
    suite: name,
    title: mod.title,
    command,
    quick: opts.quick,
    date: startedAt,
    seconds: Number(seconds.toFixed(1)),
    machine,
    load: { before: loadBefore, after: loadAfter },
    config: out.config ?? {},
    figures: out.figures,
    targets: out.targets ?? [],
    notes: out.notes ?? [],
  };
  for (const f of doc.figures) {
    if (!f.unit) throw new Error(`suite ${name}: figure ${f.id} has no unit`);
  }
  const json = writeJson(name, doc);
  const md = [
    sectionPreamble({ title: mod.title, command, machine, startedAt, seconds, loadBefore, loadAfter }),
    opts.quick ? '**Quick run (development settings): not a result to quote.**\n' : '',
    out.table.trim(),
    '',
    ...(out.notes ?? []).map((n) => n.trim()),
  ].join('\n');
  writeSection(name, md, SUITES);
  log(`wrote ${json} and its section of bench/RESULTS.md (${seconds.toFixed(1)} s)`);
  return doc;
}

async function main() {
  const argv = process.argv.slice(2);
  const opts = parseArgs(argv);
  const command = commandLine(argv);
  const machine = machineInfo();
  console.log(`bench: ${opts.suites.join(', ')} on ${machine.cpuCount} × ${machine.cpuModel}, load ${Object.values(loadavg()).join('/')}`);
  let failed = 0;
  for (const name of opts.suites) {
    try {
      await runSuite(name, opts, command, machine);
    } catch (err) {
      failed += 1;
      console.error(`[${name}] FAILED: ${err instanceof Error ? err.stack : String(err)}`);
    }
  }
  // Suites close what they start; exit explicitly so a stuck handle cannot hang the runner
  // (tracked children are SIGKILLed by the exit hook in lib/procs.mjs).
  process.exit(failed ? 1 : 0);
}

await main();

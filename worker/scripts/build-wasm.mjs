#!/usr/bin/env node
/**
 * Build step: every src/**\/*.wat → <dist|dist-test>/**\/*.wasm (same relative path), compiled with wabt's
 * wat2wasm (the `wabt` devDependency, the WebAssembly Binary Toolkit compiled to JS/wasm, so no
 * native toolchain). The text format is the source of truth; the binaries are build output only.
 *
 * Usage (from worker/, part of `npm run build`): node scripts/build-wasm.mjs
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
// The output directory: dist (the build) or dist-test (the tests' build, tsconfig.test.json).
const dist = join(root, process.argv[2] ?? 'dist');

function* watFiles(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* watFiles(p);
    else if (e.name.endsWith('.wat')) yield p;
  }
}

const wabt = await wabtInit();
for (const file of watFiles(src)) {
  const rel = relative(src, file);
  const mod = wabt.parseWat(rel, readFileSync(file, 'utf8'), { simd: true });
  try {
    mod.resolveNames();
    mod.validate();
    const { buffer } = mod.toBinary({ log: false, write_debug_names: true });
    const out = join(dist, rel.replace(/\.wat$/, '.wasm'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, buffer);
    console.log(`build-wasm: ${rel} -> ${relative(root, out)} (${buffer.length} bytes)`);
  } finally {
    mod.destroy();
  }
}

#!/usr/bin/env node
// Launcher of `metaloop-coordinator`, the coordinator server (the package's `bin`). It is committed,
// and executable in git, so npm links a working bin at `npm ci` already, before anything is built;
// the server itself is dist/cli.js, made by `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(`metaloop-coordinator: ${fileURLToPath(cli)} is missing: run \`npm run build\` first (in the repository root)\n`);
  process.exit(1);
}
await import(cli.href);

/**
 * Issue 16 item 1: the `metaloop`, `metaloop-coordinator` and `metaloop-worker` bins work right
 * after `npm ci && npm run build`. Their targets are committed launchers (mode 755 in git, so npm links them at `npm ci`,
 * before `dist/` exists) that import `dist/cli.js`, and say "run `npm run build` first" when it is
 * missing. (.ci/run also runs `npx <bin> --help` of each on the fresh clone it tests.)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '@metaloop/testing';

const BINS = [
  { pkg: 'cli', name: 'metaloop' },
  { pkg: 'coordinator', name: 'metaloop-coordinator' },
  { pkg: 'worker', name: 'metaloop-worker' },
] as const;

/** The `bin` entry `name` of `<pkg>/package.json`, relative to the repository root. */
function binTarget(pkg: string, name: string): string {
  const manifest = JSON.parse(readFileSync(join(ROOT, pkg, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
  const target = manifest.bin?.[name];
  assert.ok(target, `${pkg}/package.json has no bin "${name}"`);
  return join(pkg, target);
}

describe('the metaloop, metaloop-coordinator and metaloop-worker bins', () => {
  for (const { pkg, name } of BINS) {
    it(`${name}: a committed launcher, executable in git`, () => {
      const target = binTarget(pkg, name);
      // `git ls-files -s` prints `<mode> <object> <stage>\t<path>` for a tracked file, nothing otherwise.
      const staged = execFileSync('git', ['ls-files', '-s', '--', target], { cwd: ROOT, encoding: 'utf8' }).trim();
      assert.match(staged, /^100755 /, `${target} must be tracked by git with mode 100755 (npm links bins at npm ci, before a build); git ls-files -s: '${staged}'`);
      assert.match(readFileSync(join(ROOT, target), 'utf8'), /^#!\/usr\/bin\/env node\n/, `${target} starts with a node shebang`);
    });

    it(`${name} --help through the launcher and through node_modules/.bin`, () => {
      const target = join(ROOT, binTarget(pkg, name));
      // npm's link is the committed launcher itself (not dist/cli.js, which does not exist at npm ci).
      assert.equal(realpathSync(join(ROOT, 'node_modules/.bin', name)), realpathSync(target), `node_modules/.bin/${name} links to ${target}`);
      for (const command of [target, join(ROOT, 'node_modules/.bin', name)]) {
        // Executed as a program (shebang + run bit), as a shell does, not as `node file`.
        const r = spawnSync(command, ['--help'], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.error, undefined, `${command} --help: ${r.error?.message}`);
        assert.equal(r.status, 0, `${command} --help exit ${r.status}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^Usage: ${name} `, 'm'), `${command} --help prints the usage of ${name}`);
      }
    });

    it(`${name} without dist/ says to run npm run build`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'metaloop-bin-'));
      try {
        const target = binTarget(pkg, name);
        const copy = join(dir, pkg, target.slice(pkg.length + 1));
        mkdirSync(join(copy, '..'), { recursive: true });
        copyFileSync(join(ROOT, target), copy);
        const r = spawnSync(process.execPath, [copy, '--help'], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 1, `exit 1 without dist/; stderr: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.match(r.stderr, new RegExp(`^${name}: .*dist/cli\\.js is missing: run \`npm run build\` first`), r.stderr);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'one line, no stack trace');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

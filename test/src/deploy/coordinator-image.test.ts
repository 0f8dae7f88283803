/**
 * Issue 17: the coordinator image holds no @tensorflow/*, no worker and no CLI. Its file list is
 * rendered here without Docker, by the Dockerfile's own steps: the prune stage's `turbo prune
 * @metaloop/coordinator --docker` (the command is read from the Dockerfile), the deps stage's
 * `npm ci --omit=dev --ignore-scripts` over the pruned json/ tree, and the final stage's COPY lines
 * (`--from=deps` from that tree, `--from=build` from this repository's built dist/, which the build
 * stage compiles from the same pruned sources).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from '@metaloop/testing';

const DOCKERFILE = join(ROOT, 'deploy/docker/coordinator.Dockerfile');

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(): string[] {
  return readFileSync(DOCKERFILE, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

function run(cmd: string, args: readonly string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Every file under `dir` (symlinked directories followed once, as COPY of a node_modules tree does). */
function filesUnder(dir: string, base = dir, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() || (e.isSymbolicLink() && statSync(p).isDirectory())) filesUnder(p, base, out);
    else out.push(relative(base, p));
  }
  return out;
}

describe('coordinator image (deploy/docker/coordinator.Dockerfile), rendered without Docker', { timeout: 600_000 }, () => {
  let dir: string;
  /** Paths inside the image's /app. */
  let image: string[];
  let prunedWorkspaces: string[];

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'metaloop-coordinator-image-'));
    const lines = instructions();
    // prune stage: the Dockerfile's `turbo prune` command, with its --out-dir moved here.
    const prune = lines.find((l) => /^RUN .*turbo@?\S* prune /.test(l));
    assert.ok(prune, 'the Dockerfile prunes the workspace with turbo prune');
    const m = /prune (\S+) --docker --out-dir \S+/.exec(prune);
    assert.ok(m, prune);
    const out = join(dir, 'out');
    run(process.execPath, [join(ROOT, 'node_modules/turbo/bin/turbo'), 'prune', m[1]!, '--docker', '--out-dir', out], ROOT);
    prunedWorkspaces = (JSON.parse(readFileSync(join(out, 'json/package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    // deps stage: COPY --from=prune /out/json/ ./ and its `npm ci --omit=dev ...`.
    const deps = join(dir, 'deps');
    cpSync(join(out, 'json'), deps, { recursive: true });
    const ci = lines.find((l) => /^RUN npm ci --omit=dev/.test(l));
    assert.ok(ci, 'the deps stage runs npm ci --omit=dev');
    const ciArgs = ci.replace(/^RUN npm /, '').split('&&')[0]!.trim().split(/\s+/);
    run('npm', ciArgs, deps);
    // final stage: its COPY lines.
    const from = lines.map((l, i) => [l, i] as const).filter(([l]) => /^FROM\s/i.test(l)).pop()![1];
    image = [];
    for (const l of lines.slice(from).filter((x) => /^COPY\s/i.test(x))) {
      const [, stage, src, dst] = /^COPY --from=(\S+) (\S+) (\S+)$/.exec(l) ?? [];
      assert.ok(stage && src && dst, `final stage COPY not understood: ${l}`);
      const local = stage === 'deps' ? join(deps, relative('/app', src)) : join(ROOT, relative('/src', src));
      assert.ok(existsSync(local), `${l}: ${local} missing (build the repository first: npm run build)`);
      const target = relative('.', dst.replace(/^\.\//, '')) || '.';
      if (statSync(local).isDirectory()) for (const f of filesUnder(local)) image.push(join(target, f));
      else image.push(target === '.' || dst.endsWith('/') ? join(target, src.split('/').pop()!) : target);
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the pruned workspace is the coordinator, client and shared only', () => {
    assert.deepEqual([...prunedWorkspaces].sort(), ['client', 'coordinator', 'shared']);
  });

  it('holds the server, its packages and NATS; the entry point is metaloop-coordinator', () => {
    assert.ok(image.length > 100, `only ${image.length} files`);
    for (const f of ['coordinator/dist/cli.js', 'coordinator/dist/index.js', 'coordinator/package.json', 'client/dist/index.js', 'shared/dist/index.js', 'package.json']) {
      assert.ok(image.includes(f), `${f} in the image`);
    }
    assert.ok(image.some((f) => f.startsWith('node_modules/@nats-io/transport-node/')), 'the NATS client');
    assert.ok(image.some((f) => f.startsWith('node_modules/commander/')), 'commander');
    const entry = instructions().find((l) => /^ENTRYPOINT /.test(l));
    assert.equal(entry, 'ENTRYPOINT ["node", "/app/coordinator/dist/cli.js"]');
  });

  it('holds no @tensorflow/*, no worker, no CLI', () => {
    const bad = image.filter((f) => /(^|\/)node_modules\/@tensorflow\//.test(f) || /^worker\//.test(f) || /^cli\//.test(f) || /node_modules\/@metaloop\/(worker|cli)\//.test(f));
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} files that do not belong in the coordinator image`);
  });
});

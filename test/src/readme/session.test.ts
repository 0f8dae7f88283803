/**
 * Issue 16 item 2: the README's typical session runs as written. The block is read from README.md
 * (the ```sh fence after the `test/src/readme/session.test.ts` marker), so the two cannot drift, and
 * run line by line with bash: `export`s carry over, `NAME=$(…)` captures stdout as the shell does,
 * a line ending in `&` starts a long-running process (by pid) and the test waits for the line it
 * logs when ready, as the README tells the reader to.
 *
 * Substituted, and nothing else: nats-server's port 4222 (in the URL and `-p`) by a free loopback
 * port, and its store /tmp/metaloop-nats by a temporary directory. The block runs in a scratch
 * directory holding symlinks `examples` and `node_modules` to the checkout's, so `$PWD/node_modules`
 * and `examples/…` resolve as in the checkout and report.html and models/ land in the scratch
 * directory. The environment sets METALOOP_METRICS_HOST=127.0.0.1 (tests listen on loopback only).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { findNatsServer } from '@metaloop/shared';
import { freePort, killAll, Proc, type Ran, ROOT, runCommand, waitFor } from '@metaloop/testing';

const MARKER = '<!-- test/src/readme/session.test.ts runs the next block';
const README_PORT = '4222';
const README_STORE = '/tmp/metaloop-nats';

/** The session block of README.md: its command lines, comments and blank lines dropped. */
function sessionLines(readme: string): string[] {
  const at = readme.indexOf(MARKER);
  assert.ok(at >= 0, `README.md has no session marker '${MARKER}'`);
  const rest = readme.slice(at).split('\n');
  const open = rest.findIndex((l) => l.trim() === '```sh');
  assert.ok(open > 0 && open <= 2, 'a ```sh block follows the session marker');
  const close = rest.findIndex((l, i) => i > open && l.trim() === '```');
  assert.ok(close > open, 'the session block is closed');
  return rest
    .slice(open + 1, close)
    .map((l) => l.replace(/\s+#\s.*$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** What a line checks; `key` is its command, e.g. `metaloop submit`. */
function commandKey(command: string): string {
  const words = command.split(/\s+/);
  return words[0] === 'metaloop' ? `metaloop ${words[1]}` : words[0]!;
}

describe('README: the typical session, as written', { timeout: 900_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'metaloop-readme-'));
  const procs: Proc[] = [];
  const running = new Set<number>();

  after(async () => {
    await Promise.all(procs.map((p) => p.kill()));
    killAll(running);
    rmSync(dir, { recursive: true, force: true });
  });

  /** One foreground line through bash with the session's variables; SIGKILL by pid after `timeoutMs`. */
  const run = (line: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> => runCommand(running, 'bash', ['-c', line], { cwd: dir, env, timeoutMs });

  it('starts NATS, a coordinator and two workers, then submit, watch, report, export and eval succeed', async () => {
    const port = String(await freePort());
    const store = join(dir, 'nats-store');
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = sessionLines(readme);
    const text = block.join('\n');
    assert.ok(text.includes(`:${README_PORT}`) && text.includes(`-p ${README_PORT}`), `the session uses port ${README_PORT} (substituted here)`);
    assert.ok(text.includes(README_STORE), `the session keeps JetStream in ${README_STORE} (substituted here)`);
    const lines = block.map((l) => l.replaceAll(`:${README_PORT}`, `:${port}`).replaceAll(`-p ${README_PORT}`, `-p ${port}`).replaceAll(README_STORE, store));
    symlinkSync(join(ROOT, 'examples'), join(dir, 'examples'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));

    // nats-server where Debian puts it (/usr/sbin), as the README says to have on PATH.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${process.env.PATH}:${dirname(findNatsServer())}`,
      PWD: dir,
      METALOOP_METRICS_HOST: '127.0.0.1',
      METALOOP_LOG_LEVEL: 'info',
    };
    const checked: string[] = [];
    let runId = '';
    let steps = 0;

    for (const line of lines) {
      const exported = /^export ([A-Z_]+)=(.*)$/.exec(line);
      const captured = /^([A-Z_]+)=\$\((.*)\)$/.exec(line);
      if (exported) {
        const r = await run(`printf %s ${exported[2]}`, env, 10_000);
        assert.equal(r.code, 0, `${line}: ${r.stderr}`);
        env[exported[1]!] = r.stdout;
        continue;
      }
      if (line.endsWith('&')) {
        const command = line.slice(0, -1).trim();
        const key = commandKey(command);
        const ready = { 'nats-server': 'Server is ready', 'metaloop-coordinator': 'coordinator running', 'metaloop-worker': 'worker ready' }[key];
        assert.ok(ready, `the session starts '${command}' in the background; this test knows no ready line for it`);
        // exec: the pid is the process itself (stopped by pid in after()).
        const p = new Proc(command, 'bash', ['-c', `exec ${command}`], { ...env, PWD: dir });
        procs.push(p);
        await waitFor(
          `'${command}' to log '${ready}'`,
          120_000,
          () => p.output().some((l) => l.includes(ready)),
          () => p.output().join('\n'),
          () => p.exitReason(),
        );
        checked.push(key);
        continue;
      }
      const command = captured ? captured[2]! : line;
      const key = commandKey(command);
      const r = await run(command, env, key === 'metaloop watch' ? 600_000 : 180_000);
      const why = `'${line}' (exit ${r.code})\nstderr:\n${r.stderr.slice(-3000)}\nstdout:\n${r.stdout.slice(-3000)}`;
      assert.equal(r.code, 0, why);
      const out = r.stdout;
      switch (key) {
        case 'metaloop workers': {
          const rows = out.trim().split('\n');
          assert.match(rows[0] ?? '', /^WORKER\s+BACKEND\s+DEVICE\s+GPU\s+STATE/, why);
          assert.equal(rows.length - 1, 2, `two workers listed: ${why}`);
          break;
        }
        case 'metaloop submit': {
          // A bare submit prints the run id and nothing else (the README says so).
          assert.match(out, /^sinusoid-maml-[0-9a-f]{6}\n$/, why);
          runId = out.trim();
          const set = /--set outer\.steps=(\d+)/.exec(command);
          assert.ok(set, `the session keeps the run short with --set outer.steps=N: ${line}`);
          steps = Number(set[1]);
          break;
        }
        case 'metaloop watch':
          // Not a terminal: plain progress lines, then the summary.
          assert.match(out, new RegExp(`^run ${runId} succeeded: ${steps}/${steps} meta-steps`, 'm'), why);
          break;
        case 'metaloop report': {
          const html = readFileSync(join(dir, 'report.html'), 'utf8');
          assert.match(html, /^<!doctype html>/i);
          assert.match(html, /<svg/);
          assert.ok(html.includes(runId), 'the report names the run');
          break;
        }
        case 'metaloop export': {
          const model = JSON.parse(readFileSync(join(dir, 'models/sinusoid/model.json'), 'utf8')) as { format?: string; userDefinedMetadata?: { runId?: string } };
          assert.equal(model.format, 'metaloop-functional');
          assert.equal(model.userDefinedMetadata?.runId, runId);
          assert.ok(existsSync(join(dir, 'models/sinusoid/group1-shard1of1.bin')));
          break;
        }
        case 'metaloop eval':
          // The exported model meta-tested on 200 fresh tasks: loss after 0, 1 and 10 inner steps.
          assert.match(out, new RegExp(`\\(run ${runId}, step ${steps}\\) on 200 test tasks`), why);
          for (const k of [0, 1, 10]) assert.match(out, new RegExp(`after +${k} steps? *: loss \\d`), why);
          break;
        default:
          assert.fail(`the README session runs '${line}': add what this test expects of it`);
      }
      if (captured) env[captured[1]!] = out.replace(/\n+$/, '');
      checked.push(key);
    }
    assert.deepEqual(
      checked,
      ['nats-server', 'metaloop-coordinator', 'metaloop-worker', 'metaloop-worker', 'metaloop workers', 'metaloop submit', 'metaloop watch', 'metaloop report', 'metaloop export', 'metaloop eval'],
      'the session starts NATS, the coordinator and two workers, then runs the commands in this order',
    );
  });
});

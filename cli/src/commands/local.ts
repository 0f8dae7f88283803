/** `local`: a coordinator and N workers with one command, trained to the end. */
import { Option, type Command } from 'commander';
import { DEFAULT_RUN_LIMITS, EXIT, stateFromProto } from '@metaloop/coordinator';
import { summaryJson, summaryLines } from '../format.js';
import { withRunData } from '../data.js';
import { runLocal } from '../local.js';
import { lineRenderer, ttyRenderer } from '../watch.js';
import { loadRunSpec, sayNotes } from '../spec-file.js';
import { collect, examples, jsonOption, outputOption, positiveInt, wantsJson, type CliContext } from './context.js';

export function registerLocalCommand(program: Command, ctx: CliContext): void {
  const { out, err } = ctx;
  examples(
    program
      .command('local <spec>')
      .description('run a coordinator and N workers with one command and train a spec to the end (nats-server when installed, else in-process)')
      .addOption(new Option('-w, --workers <n>', 'number of workers').argParser(positiveInt('--workers')).default(2))
      .addOption(new Option('--max-params <n>', 'refuse specs whose model has more parameters').argParser(positiveInt('--max-params')).default(DEFAULT_RUN_LIMITS.maxParams))
      .option('--set <path=value>', 'override a spec field (repeatable)', collect, [])
      .option('--embedded', 'in-process transport and workers, even when nats-server is installed')
      .option('--data-dir <dir>', "where relative dataset paths point, for the CLI's hash and the workers it starts (METALOOP_DATA_DIR; default: the working directory)")
      .addOption(new Option('--dispatch <mode>', 'how shards reach workers: direct (core NATS, one round trip) or queue (JetStream WorkQueue)').choices(['direct', 'queue']).env('METALOOP_DISPATCH').default('direct'))
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (file: string, opts: { workers: number; maxParams: number; set: string[]; embedded?: boolean; dataDir?: string; dispatch?: 'queue' | 'direct'; json?: boolean; output?: string }) => {
        // The workers it starts inherit the environment (nats) or read it in-process (embedded).
        if (opts.dataDir) process.env.METALOOP_DATA_DIR = opts.dataDir;
        const loaded = await withRunData(await loadRunSpec(file, opts.set), { say: err });
        const spec = loaded.spec;
        sayNotes(loaded, err);
        const g = ctx.globals();
        const json = wantsJson(opts);
        const externalNats = program.getOptionValueSource('nats') !== 'default';
        // A live bar on a terminal (stderr when stdout carries the JSON summary), else plain lines.
        const stream = json ? process.stderr : process.stdout;
        const renderer = stream.isTTY ? ttyRenderer(stream) : lineRenderer(json ? err : out);
        const aborter = new AbortController();
        const onSignal = () => {
          err('interrupted: stopping the run, the workers and the server');
          aborter.abort();
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const result = await runLocal({
          spec,
          source: file,
          workers: opts.workers,
          limits: { maxParams: opts.maxParams },
          initWeights: loaded.weights?.bytes,
          nats: externalNats ? ctx.globals() : undefined,
          embedded: opts.embedded === true,
          ...(opts.dispatch ? { dispatch: opts.dispatch } : {}),
          prefix: g.prefix,
          logger: ctx.logger('local', 'warn'),
          onRecord: (r) => renderer.update(r),
          signal: aborter.signal,
        }).catch((e: unknown) => {
          if (aborter.signal.aborted) {
            process.exitCode = 130;
            return null;
          }
          throw e;
        });
        renderer.end();
        if (!result) return;
        const rec = result.record;
        if (json) {
          err(`wall time ${result.wallSeconds.toFixed(1)} s on ${result.mode} (${result.address})`);
          out(JSON.stringify(summaryJson(rec)));
        } else {
          summaryLines(rec).forEach((l) => out(l));
          out(`wall time ${result.wallSeconds.toFixed(1)} s on ${result.mode} (${result.address})`);
        }
        if (stateFromProto(rec.state) !== 'succeeded') process.exitCode = EXIT.FAILURE;
      }),
    'metaloop local examples/sinusoid.yaml --workers 2 --set outer.steps=500',
    'metaloop local examples/sinusoid.yaml --embedded --json | tail -1 | jq .eval',
    'metaloop local examples/mini-imagenet-conv4.yaml --data-dir /data --set outer.steps=20',
  );
}

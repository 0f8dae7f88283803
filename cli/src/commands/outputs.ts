/**
 * `export`, `eval` and `report`. `export` and `eval` load @metaloop/worker (and with it tfjs) and
 * ../eval.js in their action, by dynamic import: the rest of the CLI (`metaloop coordinator`,
 * `--help`, the light client commands) never loads TensorFlow.js.
 */
import { existsSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { fromBundle, type HistoryJson, metaloop, paramLayout, specFromJson, type RunSpec } from '@metaloop/shared';
import { type ApiClient, UsageError } from '@metaloop/client';
import { recordJson } from '../format.js';
import { renderReport } from '../report.js';
import { examples, fileProblem, jsonOption, outputOption, positiveInt, wantsJson, wholeNumber, type CliContext } from './context.js';

/** θ and spec of a run, read through the coordinator's `export` verb. */
export async function fetchParams(client: ApiClient, runId: string, selector: string): Promise<{ spec: RunSpec; params: Float32Array; step: number; source: string }> {
  const blob = await client.exportParams(runId, selector);
  const spec = specFromJson(blob.specJson, `spec of run ${runId}`);
  const flat = fromBundle(metaloop.TensorBundle.decode(blob.data), paramLayout(spec));
  return { spec, params: Float32Array.from(flat.data), step: blob.step, source: blob.source };
}

/**
 * True when `eval`'s target is an exported model directory; false for a run id. A target that
 * looks like a path (a `/` or a leading `.`; run ids have neither) but is not a directory is a
 * UsageError naming it, not an "unknown run".
 */
export function exportedModelDir(target: string): boolean {
  if (existsSync(target)) {
    if (statSync(target).isDirectory()) return true;
    throw new UsageError(`${target} is not a directory: eval takes a model directory written by \`metaloop export --out DIR\`, or a run id`);
  }
  if (target.includes('/') || target.startsWith('.')) {
    throw new UsageError(`no such directory: ${target} (eval takes a model directory written by \`metaloop export --out DIR\`, or a run id)`);
  }
  return false;
}

const checkpointOption = () =>
  new Option('--checkpoint <which>', 'which parameters: latest (newest checkpoint, else current), best (best evaluated checkpoint), current, or a step').default('latest');

export function registerOutputCommands(program: Command, ctx: CliContext): void {
  const { out, err } = ctx;

  examples(
    program
      .command('export <run>')
      .description(
        'write a model directory: Metaloop\'s own (model.json with a weightsManifest, the weights .bin, spec.json; ' +
          'loadExportedModel(dir) from @metaloop/worker), the Keras 3 model.keras and the TF.js Layers tfjs-layers/model.json (docs/models.md)',
      )
      .addOption(checkpointOption())
      .requiredOption('--out <dir>', 'output directory (created when missing)')
      .addOption(
        new Option('--bn-tasks <n>', "batch norm's moving statistics in the Keras and TF.js files: estimated from the query sets of this many seeded meta-train tasks (0: identity statistics)")
          .argParser(wholeNumber('--bn-tasks'))
          .default(16),
      )
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (runId: string, opts: { checkpoint: string; out: string; bnTasks: number; json?: boolean; output?: string }) => {
        await ctx.withClient(async (client) => {
          const p = await fetchParams(client, runId, opts.checkpoint);
          const { estimateBatchNormStatistics, saveExportedModel, WORKER_VERSION } = await import('@metaloop/worker');
          const files = await saveExportedModel(opts.out, p.spec, p.params, { runId, step: p.step, source: p.source });
          const { ensureBackend } = await import('../eval.js');
          await ensureBackend();
          const { saveKerasExports } = await import('../keras/export.js');
          const stats = estimateBatchNormStatistics(p.spec, p.params, opts.bnTasks);
          files.push(...(await saveKerasExports(opts.out, p.spec, p.params, stats, `metaloop ${WORKER_VERSION}`)));
          if (wantsJson(opts)) out(JSON.stringify({ runId, step: p.step, source: p.source, dir: resolve(opts.out), files, parameters: p.params.length }));
          else out(`exported run ${runId} at step ${p.step} (${p.source}, ${p.params.length} parameters) to ${opts.out}: ${files.map((f) => f.split('/').pop()).join(', ')}`);
        });
      }),
    'metaloop export sinusoid-maml-3f2a1c --checkpoint best --out models/sinusoid',
  );

  examples(
    program
      .command('eval <target>')
      .description(
        'meta-test in this process: adapt to held-out tasks and report the query loss (and accuracy) after 0, 1 and K inner steps ' +
          '± 95% CI; <target> is an exported model directory or a run id',
      )
      .addOption(new Option('--tasks <n>', 'number of tasks (default: the spec’s eval.tasks)').argParser(positiveInt('--tasks')))
      .addOption(new Option('--inner-steps <k>', 'inner steps K (default: the spec’s eval.innerSteps)').argParser(positiveInt('--inner-steps')))
      .addOption(new Option('--split <split>', "eval: the run's held-out evaluation tasks; test: fresh tasks of the test seed domain").choices(['eval', 'test']).default('eval'))
      .addOption(checkpointOption())
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (target: string, opts: { tasks?: number; innerSteps?: number; split: 'eval' | 'test'; checkpoint: string; json?: boolean; output?: string }) => {
        const isDir = exportedModelDir(target);
        const { ensureBackend, metaTest, metaTestLines } = await import('../eval.js');
        let spec: RunSpec;
        let params: Float32Array;
        let what: string;
        if (isDir) {
          await ensureBackend();
          const { loadExportedModel } = await import('@metaloop/worker');
          const m = await loadExportedModel(target);
          spec = m.spec;
          params = m.params;
          what = `${target} (run ${m.metadata.runId || '?'}, step ${m.metadata.step})`;
          m.dispose();
        } else {
          const p = await ctx.withClient((client) => fetchParams(client, target, opts.checkpoint));
          spec = p.spec;
          params = p.params;
          what = `run ${target} at step ${p.step} (${p.source})`;
        }
        const json = wantsJson(opts);
        if (!json) err(`meta-testing ${what}…`);
        const r = await metaTest(spec, params, { tasks: opts.tasks, innerSteps: opts.innerSteps, split: opts.split });
        if (json) out(JSON.stringify({ target, ...r }));
        else metaTestLines(r, what).forEach((l) => out(l));
      }),
    'metaloop eval models/sinusoid --tasks 200',
    'metaloop eval sinusoid-maml-3f2a1c --split test --output json',
  );

  examples(
    program
      .command('report <run>')
      .description('write one self-contained HTML page: SVG plots of the meta-train loss (meta-RL: returns and gains) and the evaluations against the step, timings, spec')
      .requiredOption('--out <file>', 'HTML file to write')
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (runId: string, opts: { out: string; json?: boolean; output?: string }) => {
        const dir = dirname(resolve(opts.out));
        if (!existsSync(dir)) throw new UsageError(`cannot write ${opts.out}: the directory ${dir} does not exist (create it first: mkdir -p ${dir})`);
        await ctx.withClient(async (client) => {
          const record = await client.status(runId);
          const blob = await client.history(runId);
          const history = JSON.parse(Buffer.from(blob.data).toString('utf8')) as HistoryJson;
          const html = renderReport({ record: recordJson(record), history });
          await writeFile(opts.out, html).catch((e: unknown) => {
            throw new UsageError(`cannot write the report: ${fileProblem(opts.out, e)}`);
          });
          const summary = { runId, file: resolve(opts.out), bytes: Buffer.byteLength(html), steps: history.steps.length, evals: history.evals.length };
          if (wantsJson(opts)) out(JSON.stringify(summary));
          else out(`wrote ${opts.out} (${summary.steps} steps, ${summary.evals} evaluations, ${(summary.bytes / 1024).toFixed(0)} KiB)`);
        });
      }),
    'metaloop report sinusoid-maml-3f2a1c --out report.html && xdg-open report.html',
  );
}

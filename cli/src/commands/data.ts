/** `data pack` and `data info`: parse, call cli/src/data.ts, print. */
import { Option, type Command } from 'commander';
import { data, infoJson, infoLines, isFolder, packDataset } from '../data.js';
import { loadRunSpec } from '../spec-file.js';
import { examples, jsonOption, outputOption, positiveInt, wantsJson, type CliContext } from './context.js';

/** A progress bar on a terminal (redrawn at most 10× a second), else a line every 10%. */
function progress(stream: NodeJS.WriteStream): { update: (done: number, total: number) => void; end: () => void } {
  const t0 = performance.now();
  let drawn = 0;
  let decile = -1;
  return {
    update(done, total) {
      const now = performance.now();
      const rate = done / Math.max(1e-3, (now - t0) / 1000);
      const pct = Math.floor((100 * done) / Math.max(1, total));
      if (stream.isTTY) {
        if (now - drawn < 100 && done < total) return;
        drawn = now;
        const width = 30;
        const full = Math.round((width * done) / Math.max(1, total));
        stream.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${done}/${total} images ${pct}% ${rate.toFixed(0)}/s `);
      } else if (Math.floor(pct / 10) > decile || done === total) {
        decile = Math.floor(pct / 10);
        stream.write(`packed ${done}/${total} images (${pct}%, ${rate.toFixed(0)}/s)\n`);
      }
    },
    end() {
      if (stream.isTTY) stream.write('\n');
    },
  };
}

export function registerDataCommands(program: Command, ctx: CliContext): void {
  const { out } = ctx;
  const cmd = program.command('data').description('datasets: pack an image dataset into one file, show what a dataset holds and its content hash');
  examples(
    cmd
      .command('pack <spec-or-folder>')
      .description('decode and resize every image once into one packed file (what fewshot-images reads fastest); from a run spec (its task.path, layout, imageSize, channels) or a dataset folder')
      .requiredOption('--out <file>', 'the packed file to write (.mlpack)')
      .addOption(new Option('--image-size <n>', 'side of the stored images (a folder needs it; a spec gives task.imageSize)').argParser(positiveInt('--image-size')))
      .addOption(new Option('--channels <n>', '1 (grey) or 3 (RGB); default: the spec\'s, or 3').choices(['1', '3']))
      .addOption(new Option('--layout <layout>', 'folder layout (default: the spec\'s, or auto)').choices(['auto', 'omniglot', 'classes', 'splits', 'csv']))
      .option('--data-dir <dir>', 'where relative dataset paths point (METALOOP_DATA_DIR; default: the working directory)')
      .option('--set <path=value>', 'override a spec field (repeatable)', (v: string, p: string[]) => [...p, v], [])
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (input: string, opts: { out: string; imageSize?: number; channels?: '1' | '3'; layout?: 'auto' | 'omniglot' | 'classes' | 'splits' | 'csv'; dataDir?: string; set: string[]; json?: boolean; output?: string }) => {
        if (opts.dataDir) process.env[(await data()).DATA_DIR_ENV] = opts.dataDir;
        const bar = progress(process.stderr);
        const r = await packDataset({
          input: isFolder(input) ? { folder: input } : { spec: (await loadRunSpec(input, opts.set)).spec },
          out: opts.out,
          ...(opts.imageSize !== undefined ? { imageSize: opts.imageSize } : {}),
          ...(opts.channels ? { channels: Number(opts.channels) as 1 | 3 } : {}),
          ...(opts.layout ? { layout: opts.layout } : {}),
          onProgress: bar.update,
        }).finally(() => bar.end());
        if (wantsJson(opts)) out(JSON.stringify({ path: r.path, bytes: r.bytes, sha256: r.header.sha256 }));
        else out(`${r.path}: ${(r.bytes / 2 ** 20).toFixed(1)} MiB, sha256 ${r.header.sha256}`);
      }),
    'metaloop data pack examples/mini-imagenet-conv4.yaml --out /data/mini-imagenet-84.mlpack',
    'metaloop data pack ~/datasets/cifar-fs --image-size 32 --channels 3 --out cifar-fs-32.mlpack',
  );
  examples(
    cmd
      .command('info <path>')
      .description('what a dataset holds (a packed file, an image folder or a text file): splits, classes, images per class, and its content hash')
      .addOption(new Option('--layout <layout>', 'folder layout (default: auto)').choices(['auto', 'omniglot', 'classes', 'splits', 'csv']).default('auto'))
      .addOption(jsonOption())
      .addOption(outputOption())
      .action(async (path: string, opts: { layout: 'auto' | 'omniglot' | 'classes' | 'splits' | 'csv'; json?: boolean; output?: string }) => {
        const info = (await data()).describeDataset(path, opts.layout);
        if (wantsJson(opts)) out(JSON.stringify(infoJson(info)));
        else infoLines(info).forEach((l) => out(l));
      }),
    'metaloop data info /data/mini-imagenet-84.mlpack',
  );
}

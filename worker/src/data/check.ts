/**
 * Check a run's datasets against its spec where the data is readable (the CLI at submit), with the
 * very checks a worker's family makes: splits, classes with too few examples, layouts, a packed
 * file's version and image size, texts. A packed file's header is read, not its pixels.
 */
import type { RunSpec } from '@metaloop/shared';
import { createFewshotImages } from '../tasks/images.js';
import { createFewshotText } from '../tasks/text.js';
import { resolveDataPath } from './data-dir.js';
import { checkSplitWays } from './image-source.js';

/**
 * Throws the family's DatasetError when the spec cannot be served from its data; and when the
 * split evaluation draws from (`eval.split`: every run ends with an evaluation) has fewer classes
 * than `ways`.
 */
export function checkDataset(spec: RunSpec): void {
  const t = spec.task;
  if (t.family === 'fewshot-images') {
    const { source } = createFewshotImages(spec, { checkOnly: true });
    const mult = t.rotations ? 4 : 1;
    const own = /(^|\()(splits|csv)\)?$/.test(source.layout);
    checkSplitWays({ train: source.splits.train.length * mult, val: source.splits.val.length * mult, test: source.splits.test.length * mult }, t.ways, spec.eval.split, source.path, own);
  } else if (t.family === 'fewshot-text') {
    const { splits } = createFewshotText(spec);
    checkSplitWays({ train: splits.train.length, val: splits.val.length, test: splits.test.length }, t.ways, spec.eval.split, resolveDataPath(t.path), false);
  }
}

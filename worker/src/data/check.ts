/**
 * Check a run's datasets against its spec where the data is readable (the CLI at submit), with the
 * very checks a worker's family makes: splits, classes with too few examples, layouts, a packed
 * file's version and image size, texts. A packed file's header is read, not its pixels.
 */
import type { RunSpec } from '@metaloop/shared';
import { createFewshotImages } from '../tasks/images.js';
import { createFewshotText } from '../tasks/text.js';

/** Throws the family's DatasetError when the spec cannot be served from its data. */
export function checkDataset(spec: RunSpec): void {
  if (spec.task.family === 'fewshot-images') createFewshotImages(spec, { checkOnly: true });
  else if (spec.task.family === 'fewshot-text') createFewshotText(spec);
}

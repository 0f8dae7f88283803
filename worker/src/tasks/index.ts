/**
 * Task-family registry. A new family plugs in by adding one entry (the key is `spec.task.family`).
 */
import type { RunSpec } from '@metaloop/shared';
import { UnsupportedError } from '../errors.js';
import { createGlyphs } from './glyphs.js';
import { createFewshotImages } from './images.js';
import { createSinusoid } from './sinusoid.js';
import { createFewshotText } from './text.js';
import type { TaskFamily, TaskFamilyFactory } from './types.js';

export const TASK_FAMILIES: Record<string, TaskFamilyFactory> = {
  sinusoid: createSinusoid,
  'synthetic-glyphs': createGlyphs,
  'fewshot-images': createFewshotImages,
  'fewshot-text': createFewshotText,
};

export function createTaskFamily(spec: RunSpec): TaskFamily {
  const family: string = spec.task.family;
  const factory = TASK_FAMILIES[family];
  if (!factory) throw new UnsupportedError('task family', family, Object.keys(TASK_FAMILIES));
  return factory(spec);
}

export { createGlyphs, sampleGlyphTask, type GlyphsConfig, type Split } from './glyphs.js';
export { createFewshotImages, type FewshotImagesFamily, type ImagesConfig } from './images.js';
export { createFewshotText, textDataset, type FewshotTextFamily, type TextConfig } from './text.js';
export { createSinusoid, sampleSinusoid, type SinusoidConfig, type SinusoidTask } from './sinusoid.js';
export type { Examples, LossKind, TaskData, TaskFamily, TaskFamilyFactory } from './types.js';

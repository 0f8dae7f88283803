/**
 * The run spec: one zod schema, YAML in, a validated RunSpec out. Every error names the field path,
 * the value given and what is allowed.
 */
import { Document, isScalar, isSeq, parse as parseYaml, visit, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { SpecError, type SpecIssue } from './errors.js';
import { issueText, showValue as show, valueAt } from './issue-text.js';
import { taskDims } from './layout.js';
import { modelIssues } from './model/model.js';
import { ModelSchema } from './model/schema.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const pos = () => z.number().positive().finite();
const range = (what: string) =>
  z
    .tuple([z.number().finite(), z.number().finite()])
    .refine(([lo, hi]) => lo <= hi, { message: `${what} must be [low, high] with low <= high` });

export const SinusoidTaskSchema = z.strictObject({
  family: z.literal('sinusoid'),
  shots: int(1, 10_000).default(10),
  queries: int(1, 10_000).default(10),
  amplitude: range('amplitude').default([0.1, 5.0]),
  phase: range('phase').default([0, Math.PI]),
  xRange: range('xRange').default([-5, 5]),
});

/** Class counts of the meta-train / meta-val / meta-test splits (class index ranges, in that order). */
const GlyphSplitsSchema = z.strictObject({
  train: int(2, 1_000_000).default(1000),
  val: int(0, 1_000_000).default(100),
  test: int(0, 1_000_000).default(200),
});

/**
 * Procedural glyph classes (random strokes from the class seed, jittered per sample), so few-shot
 * classification runs and is tested with no download.
 */
export const SyntheticGlyphsTaskSchema = z.strictObject({
  family: z.literal('synthetic-glyphs'),
  ways: int(2, 1000).default(5),
  shots: int(1, 1000).default(1),
  queries: int(1, 1000).default(15),
  imageSize: int(8, 256).default(28),
  classes: GlyphSplitsSchema.prefault({}),
  /** Strokes per glyph class, [min, max]. */
  strokes: range('strokes').default([2, 4]),
  /** Scale of the per-sample jitter (affine, offset, thickness); 0 renders every sample alike. */
  jitter: z.number().min(0).max(4).default(1),
});

/** Base-class counts of the splits; the test split gets the rest. Defaults: 70% / 10% / 20%. */
const ImageSplitsSchema = z.strictObject({
  train: int(1, 10_000_000).optional(),
  val: int(0, 10_000_000).optional(),
});

/**
 * N-way K-shot tasks from an image folder: Omniglot layout (root/alphabet/character/*.png) or one
 * folder per class (mini-ImageNet style).
 */
export const FewshotImagesTaskSchema = z.strictObject({
  family: z.literal('fewshot-images'),
  path: z.string().min(1, 'path must name the dataset folder (root/alphabet/character/*.png or root/class/*.png)'),
  ways: int(2, 1000).default(5),
  shots: int(1, 1000).default(1),
  queries: int(1, 1000).default(15),
  imageSize: int(4, 512).default(28),
  channels: z.union([z.literal(1), z.literal(3)]).default(1),
  /** Omniglot augmentation: each 90° rotation of a class is a new class (×4 classes per split). */
  rotations: z.boolean().default(false),
  /** 1 − pixel after scaling to [0, 1] (Omniglot: dark strokes on white become bright on black). */
  invert: z.boolean().default(false),
  classes: ImageSplitsSchema.prefault({}),
});

export const TaskSchema = z.discriminatedUnion('family', [SinusoidTaskSchema, SyntheticGlyphsTaskSchema, FewshotImagesTaskSchema]);

/**
 * maml (second order), fomaml, reptile (outer "gradient" θ − θ′), metasgd (learned per-parameter
 * inner rates), anil (inner loop on the head only). MAML++ options: `multiStepLoss` (the mean of the
 * query losses after every inner step; MAML++'s annealing toward the last step is not implemented)
 * and `learnedLayerLr` (one learned inner rate per parameter tensor and inner step).
 */
export const AlgorithmSchema = z.strictObject({
  kind: z.enum(['maml', 'fomaml', 'reptile', 'metasgd', 'anil']),
  innerSteps: int(1, 1000).default(1),
  innerLr: pos().default(0.01),
  multiStepLoss: z.boolean().default(false),
  learnedLayerLr: z.boolean().default(false),
});

export const OuterSchema = z.strictObject({
  optimizer: z.enum(['adam', 'sgd']).default('adam'),
  lr: pos().default(0.001),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  epsilon: pos().default(1e-8),
  metaBatch: int(1, 100_000).default(25),
  steps: int(1, 100_000_000).default(1000),
  shardSize: int(1, 100_000).default(5),
});

/**
 * Held-out evaluation (the papers' protocol): `tasks` tasks (default 600 for classification
 * families, 100 for sinusoid) drawn from the meta-test classes (`split: test`, or the meta-val
 * classes with `split: val`; sinusoid tasks come from a held-out seed domain), mean ± 95% CI of
 * the query loss (and accuracy) after 1 and `innerSteps` inner steps.
 */
export const EvalSchema = z.strictObject({
  every: int(0, 100_000_000).default(500),
  tasks: int(1, 1_000_000).optional(),
  innerSteps: int(1, 1000).default(10),
  split: z.enum(['test', 'val']).default('test'),
});

/** Default number of evaluation tasks: 600 for classification families (as papers report), else 100. */
export function defaultEvalTasks(family: string): number {
  return family === 'sinusoid' ? 100 : 600;
}

export const CheckpointSchema = z.strictObject({
  every: int(0, 100_000_000).default(1000),
  keep: int(1, 1000).default(3),
});

export const WorkersSchema = z.strictObject({
  count: int(1, 10_000).default(1),
  staleness: int(0, 1000).default(0),
  /** Share of the workers relative to other runs (weighted fair share by run). */
  priority: int(1, 1000).default(1),
  backend: z.enum(['any', 'tensorflow', 'wasm', 'cpu']).default('any'),
});

type SpecDraft = {
  task: z.output<typeof TaskSchema>;
  model: z.output<typeof ModelSchema>;
  algorithm: z.output<typeof AlgorithmSchema>;
  eval: z.output<typeof EvalSchema>;
};

/** The model against the task: presets' own checks, then the layer graph's shapes (model/model.ts). */
/** Marks a custom issue whose message already names what it got (describeIssue adds no `got …`). */
const COMPLETE = 'complete';

function checkModelFitsTask(spec: SpecDraft, ctx: z.core.$RefinementCtx): void {
  for (const issue of modelIssues(spec.model, taskDims(spec))) {
    ctx.addIssue({ code: 'custom', path: issue.path.split('.'), message: issue.message, params: { [COMPLETE]: true } });
  }
}

function checkAlgorithmOptions(spec: SpecDraft, ctx: z.core.$RefinementCtx): void {
  const a = spec.algorithm;
  const firstOrder = a.kind === 'fomaml' || a.kind === 'reptile';
  if (a.learnedLayerLr && (firstOrder || a.kind === 'metasgd')) {
    ctx.addIssue({
      code: 'custom',
      path: ['algorithm', 'learnedLayerLr'],
      message: a.kind === 'metasgd'
        ? 'metasgd already learns a rate per parameter: remove learnedLayerLr'
        : `${a.kind} gives no gradient to inner rates: use maml or anil with learnedLayerLr`,
    });
  }
  if (a.multiStepLoss && firstOrder) {
    ctx.addIssue({ code: 'custom', path: ['algorithm', 'multiStepLoss'], message: `multiStepLoss is a MAML++ option of maml, anil and metasgd, not of ${a.kind}` });
  }
}

function checkTaskSplits(spec: SpecDraft, ctx: z.core.$RefinementCtx): void {
  const t = spec.task;
  if (t.family !== 'synthetic-glyphs') return;
  for (const split of ['train', 'val', 'test'] as const) {
    const n = t.classes[split];
    if ((split === 'train' || n > 0) && n < t.ways) {
      ctx.addIssue({
        code: 'custom',
        path: ['task', 'classes', split],
        message: `${n} classes cannot make ${t.ways}-way tasks: use >= ${t.ways}${split === 'train' ? '' : ` (or 0 to have no ${split} split)`}`,
      });
    }
  }
  const held = spec.eval.split;
  if (t.classes[held] === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['eval', 'split'],
      message: `evaluation uses the ${held} classes but task.classes.${held} is 0: give that split classes or evaluate on the other one`,
    });
  }
}

export const RunSpecSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,40}$/, 'name must be 1-41 characters of a-z, 0-9 and -, starting with a letter or digit'),
    seed: int(0, 0xffffffff).default(0),
    task: TaskSchema,
    model: ModelSchema,
    algorithm: AlgorithmSchema,
    outer: OuterSchema.prefault({}),
    eval: EvalSchema.prefault({}),
    checkpoint: CheckpointSchema.prefault({}),
    workers: WorkersSchema.prefault({}),
  })
  .superRefine((spec, ctx) => {
    checkModelFitsTask(spec, ctx);
    checkAlgorithmOptions(spec, ctx);
    checkTaskSplits(spec, ctx);
    if (spec.outer.shardSize > spec.outer.metaBatch) {
      ctx.addIssue({
        code: 'custom',
        path: ['outer', 'shardSize'],
        message: `shardSize (${spec.outer.shardSize}) must be <= metaBatch (${spec.outer.metaBatch})`,
      });
    }
  })
  .transform((spec) => ({ ...spec, eval: { ...spec.eval, tasks: spec.eval.tasks ?? defaultEvalTasks(spec.task.family) } }));

export type RunSpec = z.output<typeof RunSpecSchema>;
export type RunSpecInput = z.input<typeof RunSpecSchema>;
export type TaskSpec = RunSpec['task'];
export type ModelSpec = RunSpec['model'];
export type AlgorithmSpec = RunSpec['algorithm'];

function describeIssue(issue: z.core.$ZodIssue, input: unknown): SpecIssue {
  const path = issue.path.map(String).join('.');
  const received = valueAt(input, issue.path);
  let message: string;
  switch (issue.code) {
    case 'unrecognized_keys':
      return {
        path,
        message: `unknown field(s) ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}: remove or rename them (see examples/ for the allowed fields)`,
      };
    case 'invalid_union':
      if ('discriminator' in issue && issue.discriminator) {
        const d = issue.discriminator;
        const full = issue.path[issue.path.length - 1] === d ? issue.path : [...issue.path, d];
        return { path: full.map(String).join('.'), message: `got ${show(valueAt(input, full))}; ${issue.message}`, received: valueAt(input, full) };
      }
      message = `got ${show(received)}; ${issue.message}`;
      break;
    case 'custom':
      // The model graph's issues already say what they got and what fits (COMPLETE).
      if (issue.params?.[COMPLETE] === true) return { path, message: issue.message, received };
      message = received === undefined ? `required: ${issue.message}` : `got ${show(received)}; ${issue.message}`;
      break;
    default:
      message = received === undefined ? `required: ${issue.message}` : `got ${show(received)}; ${issue.message}`;
  }
  return { path, message, received };
}

/** Validate a plain object (parsed YAML/JSON) into a RunSpec, or throw SpecError. */
export function validateSpec(input: unknown, source = 'run spec'): RunSpec {
  const result = RunSpecSchema.safeParse(input, {
    error: issueText,
  });
  if (result.success) return result.data;
  throw new SpecError(
    result.error.issues.map((i) => describeIssue(i, input)),
    source,
  );
}

/** Parse and validate YAML text. */
export function parseSpec(yamlText: string, source = 'run spec'): RunSpec {
  let doc: unknown;
  try {
    doc = parseYaml(yamlText);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new SpecError([{ path: '', message: `not valid YAML${where}: ${(err as Error).message.split('\n')[0]}` }], source);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new SpecError([{ path: '', message: `expected a YAML mapping with name, task, model, algorithm, outer…; got ${show(doc)}` }], source);
  }
  return validateSpec(doc, source);
}

/**
 * Apply `--set path=value` overrides (value parsed as YAML, so `outer.lr=3e-4`, `model.hidden=[64,64]`)
 * to a parsed, not yet validated document.
 */
export function applyOverrides(doc: Record<string, unknown>, sets: readonly string[]): Record<string, unknown> {
  const out = structuredClone(doc);
  for (const set of sets) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new SpecError([{ path: set, message: 'an override must look like path.to.field=value' }]);
    const path = set.slice(0, eq).split('.');
    const value: unknown = parseYaml(set.slice(eq + 1));
    let cur: Record<string, unknown> = out;
    for (const key of path.slice(0, -1)) {
      const next = cur[key];
      if (next === undefined) cur[key] = {};
      else if (next === null || typeof next !== 'object') {
        throw new SpecError([{ path: path.join('.'), message: `cannot set a field inside ${key}, which is ${show(next)}` }]);
      }
      cur = cur[key] as Record<string, unknown>;
    }
    cur[path[path.length - 1]!] = value;
  }
  return out;
}

/** Parse YAML, apply overrides, validate. */
export function loadSpec(yamlText: string, source = 'run spec', sets: readonly string[] = []): RunSpec {
  if (sets.length === 0) return parseSpec(yamlText, source);
  const doc = parseYaml(yamlText) as Record<string, unknown>;
  return validateSpec(applyOverrides(doc ?? {}, sets), source);
}

/**
 * A spec (or any plain object) as YAML in the style of the examples: a mapping whose values are
 * all scalars (or lists of scalars) on one line, `task: { family: sinusoid, shots: 10 }`.
 */
export function specToYaml(spec: unknown): string {
  const doc = new Document(spec);
  visit(doc, {
    Map(_key, node, path) {
      // The top level stays one key per line.
      if (path.length > 1 && node.items.length > 0 && node.items.every((p) => isScalar(p.value) || (isSeq(p.value) && p.value.items.every(isScalar)))) node.flow = true;
    },
    Seq(_key, node) {
      if (node.items.every(isScalar)) node.flow = true;
    },
  });
  return doc.toString({ lineWidth: 0 });
}

/** Number of shards of one meta-step (the last may be smaller). */
export function shardCount(spec: RunSpec): number {
  return Math.ceil(spec.outer.metaBatch / spec.outer.shardSize);
}

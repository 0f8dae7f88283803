/**
 * The CLI's dataset logic (`metaloop data pack|info`, and the content hash a submitted run
 * carries): thin wrappers over @metaloop/worker/data, which loads no tfjs. The commands in
 * commands/data.ts only parse and print.
 */
import { statSync } from 'node:fs';
import { datasetRefs, type RunSpec } from '@metaloop/shared';
import type { DatasetInfo, PackResult } from '@metaloop/worker/data';
import { UsageError } from '@metaloop/client';
import type { LoadedRunSpec } from './spec-file.js';
import { vectorWeights } from './text-vectors.js';

type DataModule = typeof import('@metaloop/worker/data');
let dataModule: Promise<DataModule> | undefined;
/** @metaloop/worker/data, loaded on first use (sharp and the scanners stay out of other commands). */
export const data = (): Promise<DataModule> => (dataModule ??= import('@metaloop/worker/data'));

export interface PackRequest {
  /** A run spec (YAML) of a fewshot-images task, or a dataset folder. */
  readonly input: { readonly spec: RunSpec } | { readonly folder: string };
  readonly out: string;
  readonly imageSize?: number;
  readonly channels?: 1 | 3;
  readonly layout?: 'auto' | 'omniglot' | 'classes' | 'splits' | 'csv';
  readonly onProgress?: (done: number, total: number) => void;
}

/** Pack a spec's dataset (its path, layout, size and channels) or a folder (size and channels given). */
export async function packDataset(r: PackRequest): Promise<PackResult> {
  const d = await data();
  if ('spec' in r.input) {
    const t = r.input.spec.task;
    if (t.family !== 'fewshot-images') throw new UsageError(`data pack packs image datasets: the spec's task.family is ${t.family}, not fewshot-images`);
    if (r.imageSize !== undefined && r.imageSize !== t.imageSize) throw new UsageError(`--image-size ${r.imageSize} differs from the spec's task.imageSize ${t.imageSize}: leave it out, or change the spec`);
    return d.packImages({
      source: d.resolveDataPath(t.path),
      layout: r.layout ?? t.layout,
      imageSize: t.imageSize,
      channels: r.channels ?? t.channels,
      out: r.out,
      minImages: t.shots + t.queries,
      ...(r.onProgress ? { onProgress: r.onProgress } : {}),
    });
  }
  if (r.imageSize === undefined) throw new UsageError('data pack <folder> needs --image-size (e.g. 84 for mini-ImageNet), or give a run spec instead of the folder');
  return d.packImages({
    source: d.resolveDataPath(r.input.folder),
    layout: r.layout ?? 'auto',
    imageSize: r.imageSize,
    channels: r.channels ?? 3,
    out: r.out,
    ...(r.onProgress ? { onProgress: r.onProgress } : {}),
  });
}

/** Whether `path` is a folder (data pack's argument is then a dataset, not a spec). */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** `metaloop data info`: what a dataset holds and its hash, as lines. */
export function infoLines(info: DatasetInfo): string[] {
  const lines = [`path:    ${info.path}`, `kind:    ${info.kind}${info.layout ? ` (layout ${info.layout})` : ''}`, `sha256:  ${info.sha256}`];
  const h = info.header;
  if (h) {
    lines.push(`format:  metaloop-pack v${h.version}, ${h.image.size}×${h.image.size}×${h.image.channels} uint8 ${h.image.order}`);
    lines.push(`applied: ${h.preprocessing.pipeline}`);
    lines.push(`packed:  ${h.provenance.packedAt} from ${h.provenance.source} (source sha256 ${h.provenance.sourceSha256}; sharp ${h.provenance.sharp}, libvips ${h.provenance.vips})`);
  }
  for (const s of info.splits) {
    const counts = s.classes.map((c) => c.count);
    const images = counts.reduce((a, b) => a + b, 0);
    const range = counts.length ? `${Math.min(...counts)}–${Math.max(...counts)}` : '0';
    lines.push(`split ${s.name}: ${s.classes.length} classes, ${images} images (${range} per class)`);
    for (const c of s.classes) lines.push(`  ${c.name}\t${c.count}`);
  }
  return lines;
}

export function infoJson(info: DatasetInfo): Record<string, unknown> {
  return { path: info.path, kind: info.kind, layout: info.layout ?? null, sha256: info.sha256, header: info.header ?? null, splits: info.splits };
}

export interface HashReport {
  /** The spec with every readable dataset's sha256 filled in. */
  readonly spec: RunSpec;
  /** One line per dataset: hashed, given (not readable here), or unchecked. */
  readonly notes: string[];
}

/**
 * The content hash of each dataset of `spec`, computed where the CLI can read it (relative paths
 * under the data directory) and written into the spec. A hash already in the spec must match what
 * is read here; a dataset that cannot be read needs its hash in the spec unless `skipUnreadable`.
 */
export async function withDatasetHashes(spec: RunSpec, o: { skipUnreadable?: boolean } = {}): Promise<HashReport> {
  const refs = datasetRefs(spec);
  if (refs.length === 0) return { spec, notes: [] };
  const d = await data();
  const out = structuredClone(spec);
  const notes: string[] = [];
  const layout = spec.task.family === 'fewshot-images' ? spec.task.layout : 'auto';
  for (const ref of refs) {
    const path = d.resolveDataPath(ref.path);
    let sha: string | undefined;
    try {
      sha = d.describeDataset(path, ref.role === 'task' ? layout : 'auto').sha256;
    } catch (err) {
      if (ref.sha256) {
        notes.push(`${ref.field}: ${path} is not readable here; the workers check it against the spec's sha256 ${ref.sha256}`);
        continue;
      }
      if (o.skipUnreadable) {
        notes.push(`${ref.field}: ${path} is not readable here and the spec has no sha256: workers will NOT check their copies`);
        continue;
      }
      throw new UsageError(
        `cannot hash ${ref.field} ${path}: ${(err as Error).message}. Submit where the data is readable (--data-dir), put its sha256 in the spec (${ref.field.replace(/path$/, 'sha256')}; \`metaloop data info <path>\` prints it), or pass --no-data-hash to let workers compute unchecked`,
      );
    }
    // The checks a worker would make (splits, too few examples, image size of a packed file…), now.
    if (ref.role === 'task') {
      try {
        d.checkDataset(spec);
      } catch (err) {
        throw new UsageError(`${ref.field} ${path} cannot serve this spec: ${(err as Error).message}`);
      }
    }
    if (ref.sha256 && ref.sha256 !== sha) {
      throw new UsageError(`${ref.field} ${path} hashes to ${sha}, but the spec says ${ref.field.replace(/path$/, 'sha256')}: ${ref.sha256}: fix the spec or the data`);
    }
    if (ref.role === 'task') (out.task as { sha256?: string }).sha256 = sha;
    else if (out.task.family === 'fewshot-text' && out.task.vectors) out.task.vectors.sha256 = sha;
    notes.push(`${ref.field}: ${path} sha256 ${sha}`);
  }
  return { spec: out, notes };
}

/**
 * A loaded run spec made ready to send: each readable dataset's content hash written in (and the
 * data checked as a worker would), and with `task.vectors` θ₀ built from them (text-vectors.ts:
 * uploaded before the submit, named in model.weights). What was done is said through `say`.
 */
export async function withRunData(loaded: LoadedRunSpec, o: { skipUnreadable?: boolean; say?: (line: string) => void } = {}): Promise<LoadedRunSpec> {
  const { spec, notes } = await withDatasetHashes(loaded.spec, o);
  notes.forEach((n) => o.say?.(n));
  if (spec === loaded.spec) return loaded;
  if (spec.task.family === 'fewshot-text' && spec.task.vectors) {
    if ((spec.model as { weights?: unknown }).weights && !loaded.weights) {
      throw new UsageError('task.vectors make θ₀, and the spec names another θ₀ in model.weights: drop one of them');
    }
    const v = await vectorWeights(spec, loaded.weights);
    v.notes.forEach((n) => o.say?.(n));
    return { ...loaded, spec: v.spec, submitText: JSON.stringify(v.spec), weights: v.weights, weightsFrom: loaded.keras ? `${loaded.keras.file} with task.vectors` : 'task.vectors' };
  }
  return { ...loaded, spec, submitText: JSON.stringify(spec) };
}

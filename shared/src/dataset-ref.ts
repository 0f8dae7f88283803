/**
 * The files a run reads, with the content hash each must have. The CLI fills the hashes in at
 * submit (when it can read the data); every worker checks its copies of the `task` datasets
 * against them before computing a shard of the run (docs/data.md). `vectors` are read by the CLI
 * only: they reach the workers inside θ₀ (model.weights), so their hash records which file it was.
 */
import type { RunSpec } from './spec.js';

export interface DatasetRef {
  /** `task` (the dataset: task.path) or `vectors` (task.vectors.path). */
  readonly role: 'task' | 'vectors';
  /** The spec field holding the path, for messages: `task.path`, `task.vectors.path`. */
  readonly field: string;
  /** As written in the spec (relative paths are resolved against each process's data directory). */
  readonly path: string;
  /** The hash every copy must have; undefined when the spec has none (copies are not checked). */
  readonly sha256: string | undefined;
}

/** The dataset files of a run (none for families that read no files). */
export function datasetRefs(spec: RunSpec): DatasetRef[] {
  const t = spec.task;
  if (t.family === 'fewshot-images') return [{ role: 'task', field: 'task.path', path: t.path, sha256: t.sha256 }];
  if (t.family === 'fewshot-text') {
    const refs: DatasetRef[] = [{ role: 'task', field: 'task.path', path: t.path, sha256: t.sha256 }];
    if (t.vectors) refs.push({ role: 'vectors', field: 'task.vectors.path', path: t.vectors.path, sha256: t.vectors.sha256 });
    return refs;
  }
  return [];
}

/**
 * The worker's check that it holds the very bytes a run was submitted with (docs/data.md): before
 * each shard, every dataset of the run (shared's datasetRefs) is resolved against the worker's
 * data directory and its content hash (data/content-hash.ts) compared with the run's. A copy that is
 * missing, unusable or different raises DataRefusedError naming the path and both hashes; the
 * worker then hands the shard back. Hashes are cached per file version (path, size, mtime, inode;
 * a folder: the stats of its root, of every folder holding its images and of its split CSVs, each
 * image being checked against the manifest when it is decoded), so a shard costs a few stats. The datasets checked (and the packed files of an explicit data
 * directory) are what the worker reports in its heartbeats.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { datasetRefs, type metaloop, type RunSpec } from '@metaloop/shared';
import { statKey } from './data/content-hash.js';
import { DATA_DIR_ENV, dataDir, resolveDataPath } from './data/data-dir.js';
import { describeDataset } from './data/describe.js';
import type { ImageSource } from './data/image-source.js';
import { PACK_EXTENSION } from './data/pack-format.js';
import { DataRefusedError } from './errors.js';
import type { TaskFamily } from './tasks/types.js';

interface Known {
  readonly key: string;
  /** Folders: what their key is the stat of (the root, every folder holding images, the split CSVs). */
  readonly watch?: readonly string[];
  readonly held: metaloop.IDatasetHeld;
  /** Folder datasets: sha256 of each image, for checking images as they are decoded. */
  readonly files?: ReadonlyMap<string, string>;
}

/** Most datasets listed in a heartbeat (a large data directory stays a small message). */
const HELD_LIMIT = 32;

/** The split CSVs of the csv layout (their content names the images). */
const csvFiles = (root: string) => ['train.csv', 'val.csv', 'test.csv'].map((f) => join(root, f)).filter((f) => existsSync(f));

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class DataGuard {
  private readonly known = new Map<string, Known>();

  /** What `path` holds now (hashed again only when its stat, or a folder's watched stats, changed). */
  private look(path: string, layout: Parameters<typeof describeDataset>[1]): Known {
    let key: string;
    const watch = this.known.get(path)?.watch;
    try {
      key = statKey(statSync(path));
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const k: Known = { key: 'missing', held: { path, sha256: '', kind: '', error: missing ? 'missing' : errText(err) } };
      this.known.set(path, k);
      return k;
    }
    if (watch) {
      try {
        key = this.keyOf(path, watch);
      } catch {
        key = 'changed'; // a watched folder or CSV is gone: hash again
      }
    }
    const hit = this.known.get(path);
    if (hit && hit.key === key) return hit;
    let k: Known;
    try {
      const info = describeDataset(path, layout);
      const files = info.manifest?.files;
      // A file added to or removed from a class folder changes that folder's mtime, not the root's.
      const watch = files ? [path, ...new Set([...files.keys()].map((f) => dirname(f))), ...csvFiles(path)] : undefined;
      k = { key: watch ? this.keyOf(path, watch) : key, held: { path, sha256: info.sha256, kind: info.kind, error: '' }, ...(files ? { files, watch } : {}) };
    } catch (err) {
      k = { key, held: { path, sha256: '', kind: '', error: errText(err) } };
    }
    this.known.set(path, k);
    return k;
  }

  private keyOf(path: string, watch: readonly string[] | undefined): string {
    if (!watch) return statKey(statSync(path));
    return watch.map((p) => statKey(statSync(p))).join('|');
  }

  /** Throws DataRefusedError unless every dataset of `spec` with a hash is here, with that hash. */
  check(spec: RunSpec): void {
    const layout = spec.task.family === 'fewshot-images' ? spec.task.layout : 'auto';
    for (const ref of datasetRefs(spec)) {
      // Word vectors reach the workers inside θ₀ (model.weights, built by the CLI): no worker reads them.
      if (ref.role === 'vectors' || ref.sha256 === undefined) continue;
      const path = resolveDataPath(ref.path);
      const k = this.look(path, layout);
      const got = k.held.sha256 || undefined;
      if (got === ref.sha256) continue;
      const what = k.held.error === 'missing' ? 'is missing' : k.held.error ? `cannot be read (${k.held.error})` : `hashes to ${got}`;
      throw new DataRefusedError(
        `refusing to compute on other data: ${ref.field} ${path} ${what} on this worker, the run expects sha256 ${ref.sha256}; give this worker the same copy (metaloop data info <path> prints its hash)`,
        path,
        ref.sha256,
        got,
      );
    }
  }

  /** After check(): a folder family checks each image it decodes against the hashed manifest. */
  bind(spec: RunSpec, family: TaskFamily): void {
    const source = (family as { source?: ImageSource }).source;
    const ref = datasetRefs(spec)[0];
    if (!source?.verifyAgainst || !ref?.sha256) return;
    const files = this.known.get(resolveDataPath(ref.path))?.files;
    if (files) source.verifyAgainst(files, ref.sha256);
  }

  /** The datasets checked so far, then the packed files of an explicit data directory. */
  held(): metaloop.IDatasetHeld[] {
    const out = new Map<string, metaloop.IDatasetHeld>();
    for (const [p, k] of this.known) out.set(p, k.held);
    if (process.env[DATA_DIR_ENV]) {
      const dir = dataDir();
      let names: string[] = [];
      try {
        names = readdirSync(dir).filter((n) => n.endsWith(PACK_EXTENSION)).sort();
      } catch {
        // an unreadable data directory lists nothing (its datasets fail their checks by name)
      }
      for (const n of names) {
        if (out.size >= HELD_LIMIT) break;
        const p = join(dir, n);
        if (!out.has(p)) out.set(p, this.look(p, 'auto').held);
      }
    }
    return [...out.values()].slice(0, HELD_LIMIT);
  }
}

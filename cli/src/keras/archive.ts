/**
 * The Keras 3 `.keras` archive: a zip holding `config.json` (the model's topology), `metadata.json`
 * (Keras version, date) and `model.weights.h5` (the variables, see h5.ts). Read and written with
 * fflate (a small, dependency-free, well-kept zip library that does both in memory, synchronously);
 * written entries are stored uncompressed (as Keras writes them) with a fixed date, so the same
 * model gives the same bytes.
 */
import { strFromU8, strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import { KerasModelError } from '../errors.js';

export const CONFIG_ENTRY = 'config.json';
export const METADATA_ENTRY = 'metadata.json';
export const WEIGHTS_ENTRY = 'model.weights.h5';

export interface KerasArchive {
  /** config.json, parsed. */
  readonly config: unknown;
  /** metadata.json, parsed ({} when absent). */
  readonly metadata: Record<string, unknown>;
  /** model.weights.h5 (null when the archive has none). */
  readonly weights: Uint8Array | null;
}

function parseJson(file: string, entry: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(strFromU8(bytes)) as unknown;
  } catch (err) {
    throw new KerasModelError(file, `${entry} is not JSON (${(err as Error).message})`);
  }
}

/** Read a `.keras` file's bytes; `file` names it in errors. */
export function readKerasArchive(file: string, bytes: Uint8Array): KerasArchive {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new KerasModelError(file, `not a .keras file (a zip archive): ${(err as Error).message}`);
  }
  const config = entries[CONFIG_ENTRY];
  if (!config) {
    const names = Object.keys(entries);
    throw new KerasModelError(file, `no ${CONFIG_ENTRY} in the archive (it holds ${names.length > 0 ? names.join(', ') : 'nothing'}): save the model with Keras 3's model.save("model.keras")`);
  }
  if (!entries[WEIGHTS_ENTRY] && entries['model.weights.json']) {
    throw new KerasModelError(file, 'the weights are sharded (model.weights.json and several .h5 files): save the model unsharded (model.save(path) without max_shard_size)');
  }
  const metadata = entries[METADATA_ENTRY] ? parseJson(file, METADATA_ENTRY, entries[METADATA_ENTRY]) : {};
  return {
    config: parseJson(file, CONFIG_ENTRY, config),
    metadata: metadata !== null && typeof metadata === 'object' ? (metadata as Record<string, unknown>) : {},
    weights: entries[WEIGHTS_ENTRY] ?? null,
  };
}

/** The fixed date of every entry written (zip dates start in 1980). */
const ENTRY_DATE = new Date('1980-01-01T00:00:00Z');

/** A `.keras` file's bytes: metadata.json, config.json and model.weights.h5, stored. */
export function writeKerasArchive(a: { config: unknown; metadata: Record<string, unknown>; weights: Uint8Array }): Uint8Array {
  const opts = { level: 0 as const, mtime: ENTRY_DATE };
  const files: Zippable = {
    [METADATA_ENTRY]: [strToU8(JSON.stringify(a.metadata)), opts],
    [CONFIG_ENTRY]: [strToU8(JSON.stringify(a.config)), opts],
    [WEIGHTS_ENTRY]: [a.weights, opts],
  };
  return zipSync(files);
}

/**
 * Where relative dataset paths of a run spec point: the process's data directory, from
 * METALOOP_DATA_DIR (the worker's and the CLI's --data-dir set it), else the working directory.
 * In a cluster every worker mounts the datasets at one place (e.g. /data) and specs name files
 * relative to it, so the same spec reads the same file everywhere (docs/data.md).
 */
import { isAbsolute, resolve } from 'node:path';

export const DATA_DIR_ENV = 'METALOOP_DATA_DIR';

export function dataDir(): string {
  const d = process.env[DATA_DIR_ENV];
  return d !== undefined && d !== '' ? resolve(d) : process.cwd();
}

/** `path` as this process reads it: absolute paths as they are, relative ones under dataDir(). */
export function resolveDataPath(path: string): string {
  return isAbsolute(path) ? path : resolve(dataDir(), path);
}

/**
 * Loader hooks of load-recorder.ts (they run on Node's loader thread): append the URL of every
 * module loaded through the ESM loader to the record file, before it is evaluated.
 */
import { appendFileSync } from 'node:fs';

let file = '';

export function initialize(data: { file: string }): void {
  file = data.file;
}

type NextLoad = (url: string, context: unknown) => Promise<unknown>;

export async function load(url: string, context: unknown, next: NextLoad): Promise<unknown> {
  if (file) appendFileSync(file, url + '\n');
  return next(url, context);
}

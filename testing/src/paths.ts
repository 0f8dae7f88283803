/** Where the repository and the built entry points are (the tests run the builds, never src/). */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The `metaloop` CLI (@metaloop/cli). */
export const METALOOP = join(ROOT, 'cli/dist/cli.js');
/** The coordinator server, `metaloop-coordinator` (@metaloop/coordinator). */
export const METALOOP_COORDINATOR = join(ROOT, 'coordinator/dist/cli.js');
/** The `metaloop-worker` CLI. */
export const WORKER = join(ROOT, 'worker/dist/cli.js');
export const SINUSOID = join(ROOT, 'examples/sinusoid.yaml');

/**
 * What the product packages ship (docs/architecture.md: test servers, stand-ins and helpers live here, never in a
 * package's public index or its dist): their built dist/ holds no test file and no test helper, and
 * their index exports none of this package's names.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from './paths.js';

const PRODUCTS = ['shared', 'worker', 'coordinator'] as const;

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

/** Every name a test may import from @metaloop/testing (all entry points but the load-recorder preload). */
async function helperNames(): Promise<Set<string>> {
  const modules = await Promise.all([import('./index.js'), import('./cluster.js'), import('./chaos.js'), import('./tfjs.js'), import('./rl.js')]);
  return new Set([...modules.flatMap((m) => Object.keys(m)), 'InProcBus']);
}

describe('product packages ship no test tooling', () => {
  for (const pkg of PRODUCTS) {
    test(`${pkg}/dist: no *.test.js, no testing/ helpers, no transport contract`, () => {
      const dist = join(ROOT, pkg, 'dist');
      assert.ok(existsSync(join(dist, 'index.js')), `${dist}/index.js missing: build first (npm run build)`);
      const all = files(dist);
      const offending = all.filter((f) => /\.test\.(js|d\.ts|js\.map)$/.test(f) || /(^|\/)testing\//.test(f) || /(^|\/)contract[^/]*\.js$/.test(f));
      assert.deepEqual(offending, [], `${pkg}/dist ships test files or helpers (tsconfig.build.json must exclude them)`);
      assert.ok(all.length > 10, `${pkg}/dist holds only ${all.length} files`);
    });
  }

  test('no product index exports a name of @metaloop/testing', async () => {
    const helpers = await helperNames();
    assert.ok(helpers.has('transportContract') && helpers.has('QuadraticWorker') && helpers.has('startCoordinator'), 'helper list incomplete');
    for (const pkg of PRODUCTS) {
      const exported = Object.keys((await import(`@metaloop/${pkg}`)) as Record<string, unknown>);
      assert.ok(exported.length > 10, `@metaloop/${pkg} exports only ${exported.length} names`);
      assert.deepEqual(exported.filter((n) => helpers.has(n)), [], `@metaloop/${pkg} exports test helpers`);
    }
  });
});

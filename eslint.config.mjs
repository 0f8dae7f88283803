// ESLint (flat config) for every package's TypeScript sources: ESLint's recommended rules and
// typescript-eslint's recommended-type-checked rules, type information from each package's
// tsconfig.json (projectService). Each package's `npm run lint` runs `tsc --noEmit` (strict, with
// noUnusedLocals/noUnusedParameters) and then `eslint src`.
//
// No import cycle inside a package: eslint-plugin-import-x's `no-cycle` follows every runtime import
// (`import type` has no runtime effect and is left out), resolving `./x.js` to `./x.ts` with
// eslint-import-resolver-typescript, so `npm run lint` fails on a cycle and names both ends.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '**/src/gen/**', 'bench/**', '**/*.mjs', '**/*.js'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // node:test's describe/it/test return promises that the runner itself awaits; awaiting them
      // in a test file is wrong (it serialises registration), so they are known-safe calls.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      // `_`-prefixed names are deliberately unused (a callback's leading parameters, a destructured
      // field left out of a copy); tsc's noUnusedParameters follows the same convention.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Passing on a caught error (typed unknown) or an AbortSignal's reason (typed any) unchanged is
      // how a rejection is forwarded; only-throw-error allows throwing unknown and any by default too.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
    },
  },
  {
    // Cycles are looked for inside a package: other packages' imports (`@metaloop/*`, node_modules)
    // are not followed (ignoreExternal), as packages depend on each other one way by their package.json.
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['*/tsconfig.json'] })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    // These render recordJson() output, a Record<string, unknown> whose fields are JSON strings and
    // numbers (runId, state, step, ...): the type cannot tell, so stringifying them is flagged.
    files: ['cli/src/format.ts', 'cli/src/report.ts'],
    rules: {
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
);

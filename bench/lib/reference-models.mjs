/**
 * The hand-written Conv4 forward of before the layer graph (issue 24), for the compute suite's
 * "graph vs hand-written" rows: worker/src/testing/reference-models.ts itself (the test reference
 * the presets are checked against bit for bit), which the worker's package build leaves out.
 * Transpiled here in memory with the repository's TypeScript (types stripped, nothing
 * type-checked or written), its one import pointed at the very tfjs-core file the worker's build
 * loads, so both forwards run on the same tfjs instance, with the same registered gradients.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './machine.mjs';

const SOURCE = join(ROOT, 'worker', 'src', 'testing', 'reference-models.ts');

/** { referenceConv4Forward, referenceConv4BatchedForward, referenceMlpForward } */
export async function loadReferenceModels() {
  const require = createRequire(join(ROOT, 'worker', 'package.json'));
  const ts = require('typescript');
  const tfcore = pathToFileURL(require.resolve('@tensorflow/tfjs-core')).href;
  const out = ts.transpileModule(readFileSync(SOURCE, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    fileName: SOURCE,
  }).outputText;
  const js = out.replace(/from\s+['"]@tensorflow\/tfjs-core['"]/g, `from ${JSON.stringify(tfcore)}`);
  if (js === out) throw new Error(`${SOURCE} no longer imports @tensorflow/tfjs-core as this loader expects`);
  return import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`);
}

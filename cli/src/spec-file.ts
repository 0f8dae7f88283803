/**
 * A run spec read from a file by the CLI (`submit`, `local`): YAML, `--set` overrides, and
 * `model.kind: keras` resolved into the `kind: layers` graph (keras/resolve.ts) before the spec is
 * validated, so what is sent is what the coordinator and workers take.
 */
import { readFile } from 'node:fs/promises';
import { applyOverrides, parseSpecDocument, SpecError, validateSpec, type RunSpec } from '@metaloop/shared';
import { type ApiClient, UsageError } from '@metaloop/client';
import { fileProblem } from './commands/context.js';
import { initWeights, readKerasModel, type InitWeights, type KerasSource } from './keras/resolve.js';

export interface LoadedRunSpec {
  /** The file's text. */
  readonly text: string;
  readonly spec: RunSpec;
  /** What to submit: the file's text when nothing changed it, else the validated spec as JSON (YAML's subset). */
  readonly submitText: string;
  /** The Keras model the spec named. */
  readonly keras?: KerasSource;
  /** θ₀ to upload before the submit (a Keras file read with init: weights, or word vectors: cli/src/text-vectors.ts). */
  readonly weights?: InitWeights;
  /** What θ₀ was made from, for messages (default: the Keras file). */
  readonly weightsFrom?: string;
}

/** Issues on `model.layers.<i>…` name the Keras layer and its class (the spec the user wrote has no such list). */
function nameLayers(err: SpecError, keras: KerasSource, source: string): SpecError {
  const layers = keras.model.layers;
  return new SpecError(
    err.issues.map((i) => {
      const m = /^model\.layers\.(\d+)(?:\.(.+))?$/.exec(i.path);
      const layer = m ? layers[Number(m[1])] : undefined;
      if (!layer) return i.path.startsWith('model') ? { ...i, message: `${keras.file}: ${i.message}` } : i;
      // The schema's echo of what it got: the whole layer (when no option is to blame) says nothing here, and a repeated one once is enough.
      const message = m?.[2] ? i.message.replace(/^(got .+?; )(?=\1)/, '') : i.message.replace(/^got \{.*?\.\.\.; /, '');
      return { ...i, path: 'model.path', message: `${keras.file}: layer ${JSON.stringify(layer.name)} (${layer.type})${m?.[2] ? `: option ${m[2]}` : ''}: ${message}` };
    }),
    source,
  );
}

/** Read, override, resolve and validate a run spec file. */
export async function loadRunSpec(file: string, sets: readonly string[] = []): Promise<LoadedRunSpec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the run spec: ${fileProblem(file, err)}`);
  }
  const doc = applyOverrides(parseSpecDocument(text, file), sets);
  const keras = await readKerasModel(doc, file);
  if (!keras) {
    const spec = validateSpec(doc, file);
    return { text, spec, submitText: sets.length === 0 ? text : JSON.stringify(spec) };
  }
  const validate = (model: Record<string, unknown>) => {
    try {
      return validateSpec({ ...doc, model }, file);
    } catch (err) {
      throw err instanceof SpecError ? nameLayers(err, keras, file) : err;
    }
  };
  let spec = validate({ ...keras.model });
  if (keras.init === 'random') return { text, spec, submitText: JSON.stringify(spec), keras };
  // θ₀ from the file: its tensors take the shapes of the compiled graph, then the spec names them.
  const weights = initWeights(keras, spec);
  spec = validate({ ...keras.model, weights: { sha256: weights.sha256 } });
  return { text, spec, submitText: JSON.stringify(spec), keras, weights };
}

/** Say on stderr what a Keras file held that Metaloop does not use. */
export function sayNotes(loaded: LoadedRunSpec, err: (line: string) => void): void {
  for (const n of loaded.weights?.notes ?? []) err(`${loaded.keras!.file}: ${n}`);
}

/** Upload θ₀ of an `init: weights` spec (resumable; a probe only when the coordinator holds it already). */
export async function uploadInitWeights(client: ApiClient, loaded: LoadedRunSpec, err: (line: string) => void): Promise<void> {
  const w = loaded.weights;
  if (!w) return;
  const up = await client.upload(w.bytes, { kind: 'init-weights' });
  err(`weights of ${loaded.weightsFrom ?? loaded.keras!.file}: ${(up.bytes / 1024).toFixed(0)} KiB, sha256 ${up.sha256.slice(0, 12)}…, ${up.sent === 0 ? 'already on the coordinator' : `uploaded ${up.sent} bytes`}`);
}

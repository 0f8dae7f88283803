/**
 * A run's spec as it travels once validated: JSON in the run record (`RunRecord.spec_json`), the
 * checkpoint (`Checkpoint.spec_json`), the `export` reply (`BlobReply.spec_json`) and an exported
 * model's `spec.json`. The one encoder and the one decoder of that JSON: every reader of a stored
 * spec decodes it here, so each names its source and turns bad JSON into a SpecError the same way.
 */
import { SpecError } from './errors.js';
import { validateSpec, type RunSpec } from './spec.js';

/** The JSON a validated spec is stored and sent as. */
export function specToJson(spec: RunSpec): string {
  return JSON.stringify(spec);
}

/**
 * A run's spec from the JSON it was stored as: parsed and validated again (a record written by
 * another version, or edited by hand, is checked like a submitted spec). `source` names where the
 * JSON came from (`spec of run <id>`, a file) in the SpecError.
 */
export function specFromJson(json: string, source = 'run spec'): RunSpec {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    const what = json.trim() === '' ? 'empty' : `not JSON: ${(err as Error).message}`;
    throw new SpecError([{ path: '', message: `the stored spec is ${what}` }], source);
  }
  return validateSpec(doc, source);
}

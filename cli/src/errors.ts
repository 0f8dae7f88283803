/** Error classes of the cli package (bad command lines are @metaloop/client's UsageError). */
import { SpecError } from '@metaloop/shared';

/**
 * A Keras (`.keras`) or TF.js Layers (`model.json`) file that cannot become a Metaloop model: not
 * that kind of file, a layer or option Metaloop does not support, weights that do not fit. A
 * SpecError (exit code 3, invalid spec) on the spec field that named the file.
 */
export class KerasModelError extends SpecError {
  override readonly name: string = 'KerasModelError';
  constructor(
    /** The model file. */
    readonly file: string,
    readonly problem: string,
    /** The layer concerned, when one is. */
    readonly layer?: string,
    /** Its Keras class. */
    readonly className?: string,
    options: { field?: string; source?: string } = {},
  ) {
    super([{ path: options.field ?? 'model.path', message: `${file}: ${layer !== undefined ? `layer ${JSON.stringify(layer)}${className ? ` (${className})` : ''}: ` : ''}${problem}` }], options.source ?? 'run spec');
  }
}

/** Error classes of the client package. */
import { MetaloopError } from '@metaloop/shared';

/**
 * The command line asks for something that cannot be (an unknown value, a missing file or
 * directory): exit code 2 (EXIT.USAGE) in every metaloop command.
 */
export class UsageError extends MetaloopError {
  override readonly name: string = 'UsageError';
}

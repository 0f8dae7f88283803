/** Exit codes of the `metaloop` CLI, in one place. */
import { UsageError } from './errors.js';
import { ApiCallError, ConnectionError, PermissionError, RequestTimeoutError, SpecError } from '@metaloop/shared';

export const EXIT = {
  /** Success (for `local` and `submit --watch`: the run succeeded). */
  OK: 0,
  /** The run failed or was cancelled, or any other error. */
  FAILURE: 1,
  /** NATS unreachable. */
  UNREACHABLE: 2,
  /** Bad usage: unknown command, option or option value, a missing file or directory. */
  USAGE: 2,
  /** Invalid run spec (nothing was started). */
  INVALID_SPEC: 3,
  /** Unknown run id. */
  UNKNOWN_RUN: 4,
  /** No reply in time: no coordinator running? */
  TIMEOUT: 5,
  /** NATS refused the credentials or the subject. */
  PERMISSION: 6,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof SpecError) return EXIT.INVALID_SPEC;
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof ApiCallError) {
    if (err.code === 'INVALID_SPEC') return EXIT.INVALID_SPEC;
    if (err.code === 'UNKNOWN_RUN') return EXIT.UNKNOWN_RUN;
    return EXIT.FAILURE;
  }
  if (err instanceof PermissionError) return EXIT.PERMISSION;
  if (err instanceof RequestTimeoutError) return EXIT.TIMEOUT;
  if (err instanceof ConnectionError) return EXIT.UNREACHABLE;
  return EXIT.FAILURE;
}

/** Error classes of the coordinator package. */
import { MetaloopError } from '@metaloop/shared';

/** Something went wrong inside the coordinator (bad options, lifecycle misuse). */
export class CoordinatorError extends MetaloopError {
  override readonly name: string = 'CoordinatorError';
}

/** `run()` was called twice, or after `close()`. */
export class LifecycleError extends CoordinatorError {
  override readonly name: string = 'LifecycleError';
  constructor(
    readonly what: string,
    readonly state: string,
  ) {
    super(`cannot ${what}: the object is ${state}`);
  }
}

/** A run was cancelled while the coordinator was waiting for it. */
export class RunCancelledError extends CoordinatorError {
  override readonly name: string = 'RunCancelledError';
  constructor(readonly runId: string) {
    super(`run ${runId} was cancelled`);
  }
}

/** A run cannot go on (a shard kept failing, training diverged, storage failed). */
export class RunFailedError extends CoordinatorError {
  override readonly name: string = 'RunFailedError';
  constructor(
    readonly runId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The API was asked about a run the coordinator does not know. */
export class UnknownRunError extends CoordinatorError {
  override readonly name: string = 'UnknownRunError';
  constructor(readonly runId: string) {
    super(`unknown run ${JSON.stringify(runId)}: \`metaloop list\` shows the known runs`);
  }
}

/** The request does not fit the run's state (e.g. cancelling a finished run). */
export class ConflictError extends CoordinatorError {
  override readonly name: string = 'ConflictError';
  constructor(
    readonly runId: string,
    message: string,
  ) {
    super(message);
  }
}

/** Direct dispatch found no live worker to assign a shard to (the round retries on its next tick). */
export class NoLiveWorkerError extends CoordinatorError {
  override readonly name: string = 'NoLiveWorkerError';
}

/** An `upload` request that cannot be taken: too big, out of place, or bytes whose sha256 differs from the name. */
export class UploadError extends CoordinatorError {
  override readonly name: string = 'UploadError';
  constructor(
    readonly sha256: string,
    message: string,
  ) {
    super(message);
  }
}

/** An API request that cannot be decoded or lacks a required field (answered with code BAD_REQUEST). */
export class BadRequestError extends CoordinatorError {
  override readonly name: string = 'BadRequestError';
}

/** A checkpoint or run history read back from the stores that cannot be used (its format, its sizes). */
export class StoredDataError extends CoordinatorError {
  override readonly name: string = 'StoredDataError';
  constructor(
    /** What was being read: `checkpoint`, `history`. */
    readonly what: string,
    message: string,
  ) {
    super(message);
  }
}

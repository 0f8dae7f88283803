/** Error classes of the worker package. Each has a stable `name` and readonly context fields. */
import { MetaloopError } from '@metaloop/shared';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** No backend of the allowed set could be initialised. */
export class BackendError extends MetaloopError {
  override readonly name: string = 'BackendError';
  constructor(
    message: string,
    readonly required: string,
    readonly tried: readonly { readonly name: string; readonly error: string }[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The run spec names a model, task family or algorithm this worker has no implementation of. */
export class UnsupportedError extends MetaloopError {
  override readonly name: string = 'UnsupportedError';
  constructor(
    readonly what: 'model' | 'task family' | 'algorithm' | 'loss',
    readonly kind: string,
    readonly known: readonly string[],
  ) {
    super(`unsupported ${what} ${JSON.stringify(kind)}: this worker knows ${known.map((k) => JSON.stringify(k)).join(', ')}`);
  }
}

/** An error as one line for logs and error results: `<name>: <message>`. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/** A shard could not be computed. `transient` errors are worth a retry (nak), others are reported. */
export class ShardError extends MetaloopError {
  override readonly name: string = 'ShardError';
  constructor(
    message: string,
    readonly msgId: string,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** computeShard was asked to stop between two tasks (worker closing). */
export class ShardAbortedError extends MetaloopError {
  override readonly name: string = 'ShardAbortedError';
  constructor(readonly tasksDone: number) {
    super(`shard abandoned after ${tasksDone} task(s)`);
  }
}

/** Misuse of a Worker's lifecycle (second run(), run() after close()). */
export class WorkerStateError extends MetaloopError {
  override readonly name: string = 'WorkerStateError';
  constructor(
    message: string,
    readonly state: string,
  ) {
    super(message);
  }
}

/** Invalid WorkerOptions (names the option and what is allowed). */
export class WorkerOptionsError extends MetaloopError {
  override readonly name: string = 'WorkerOptionsError';
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`worker option ${option}: ${message}`);
  }
}

/** A few-shot image dataset folder that cannot be used: bad layout, too few images, corrupt file. */
export class DatasetError extends MetaloopError {
  override readonly name: string = 'DatasetError';
  constructor(
    message: string,
    /** The folder or file at fault. */
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * This worker will not compute a run's shard: its copy of a dataset the run reads is missing,
 * unusable, or hashes differently from the run's. The shard goes back to the coordinator (error
 * reason "data"), which gives it to another worker; nothing is computed on other data.
 */
export class DataRefusedError extends MetaloopError {
  override readonly name: string = 'DataRefusedError';
  constructor(
    message: string,
    /** The dataset as this worker resolves it. */
    readonly path: string,
    /** The hash the run expects, and this worker's (undefined: missing or unreadable). */
    readonly expected: string | undefined,
    readonly actual: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A meta-RL task could not be computed: its baseline's normal equations stayed singular, or a rollout went non-finite. */
export class RlError extends MetaloopError {
  override readonly name: string = 'RlError';
  constructor(
    message: string,
    /** The task's seed. */
    readonly taskSeed: number,
  ) {
    super(message);
  }
}

/**
 * A kernel or gradient was used where it cannot work: the tensorflow kernels on a backend that is
 * not tfjs-node's, a gradient config whose saved tensors or attributes are missing (a
 * registration-order bug), or a training kernel given what it does not take (a layout, a dtype,
 * a shape; no kernel of the backend's own to fall back to). The message names the kernel.
 */
export class KernelSetupError extends MetaloopError {
  override readonly name: string = 'KernelSetupError';
}

/**
 * This installation cannot compute correctly: tfjs packages missing or resolving two tfjs-core
 * copies, gradients not registered, or the self-test's meta-gradient non-finite or all zero.
 * The message says what to run or check.
 */
export class InstallError extends MetaloopError {
  override readonly name: string = 'InstallError';
}

/** An exported model directory that cannot be read (not one, wrong format, weights not matching), or a model used after dispose(). */
export class ExportError extends MetaloopError {
  override readonly name: string = 'ExportError';
  constructor(
    message: string,
    /** The directory or file at fault. */
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Error classes shared by every Metaloop package. Each has a stable `name` and readonly context. */

export class MetaloopError extends Error {
  override readonly name: string = 'MetaloopError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** One problem found in a run spec: where, what was given, what is allowed. */
export interface SpecIssue {
  readonly path: string;
  readonly message: string;
  readonly received?: unknown;
}

export class SpecError extends MetaloopError {
  override readonly name: string = 'SpecError';
  constructor(
    readonly issues: readonly SpecIssue[],
    readonly source = 'run spec',
  ) {
    super(`invalid ${source}:\n` + issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n'));
  }
  /** The first offending field path, e.g. `outer.lr`. */
  get field(): string {
    return this.issues[0]?.path ?? '';
  }
}

/**
 * A model graph that cannot be built or run: the layer (by name) and, when one is to blame, its
 * option. `validateSpec` turns these into SpecIssues at `model.layers.<i>[.<option>]`.
 */
export class ModelError extends MetaloopError {
  override readonly name: string = 'ModelError';
  constructor(
    message: string,
    readonly option?: string,
    readonly layer?: string,
  ) {
    super(message);
  }
}

export class CodecError extends MetaloopError {
  override readonly name: string = 'CodecError';
  constructor(
    message: string,
    readonly byteLength?: number,
  ) {
    super(message);
  }
}

export class TransportError extends MetaloopError {
  override readonly name: string = 'TransportError';
  constructor(
    message: string,
    readonly url?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** NATS (or the in-process bus) could not be reached at all. */
export class ConnectionError extends TransportError {
  override readonly name: string = 'ConnectionError';
}

/** A request got no reply in time: usually, no coordinator is running. */
export class RequestTimeoutError extends TransportError {
  override readonly name: string = 'RequestTimeoutError';
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
  ) {
    super(`no reply on ${subject} within ${timeoutMs} ms: is a coordinator running?`);
  }
}

export class PermissionError extends TransportError {
  override readonly name: string = 'PermissionError';
}

/** An error answered by the coordinator's API (code as in the ApiError message). */
export class ApiCallError extends MetaloopError {
  override readonly name: string = 'ApiCallError';
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends MetaloopError {
  override readonly name: string = 'NotFoundError';
  constructor(
    readonly what: string,
    readonly key: string,
  ) {
    super(`${what} not found: ${key}`);
  }
}

/** A subject, subject prefix or run id that NATS subjects cannot carry (names the value and the rule). */
export class SubjectError extends MetaloopError {
  override readonly name: string = 'SubjectError';
  constructor(
    message: string,
    /** The offending subject, prefix or run id. */
    readonly value: string,
  ) {
    super(message);
  }
}

/**
 * A promise inside Metaloop was broken: a bug, never bad input (that gets its own error naming
 * the field). The message says what was expected and what happened.
 */
export class InvariantError extends MetaloopError {
  override readonly name: string = 'InvariantError';
}

/**
 * The coordinator side of the control API: request/reply on `<prefix>.api.<verb>`, protobuf in
 * and out, every failure answered as an ApiError (never a dropped request).
 */
import { metaloop, SpecError, type Closer, type Logger, type Subjects, type Transport } from '@metaloop/shared';
import { BadRequestError, ConflictError, UnknownRunError, UploadError } from './errors.js';

/** What the API needs from the coordinator. */
export interface ApiHandlers {
  submit(specText: string, source: string, priority: number): Promise<metaloop.IRunRecord>;
  /** The live-worker view (id, backend, device, shards/s, last seen). */
  workers(): Promise<metaloop.IHeartbeat[]>;
  list(all: boolean): Promise<metaloop.IRunRecord[]>;
  status(runId: string): Promise<metaloop.IRunRecord>;
  cancel(runId: string): Promise<metaloop.IRunRecord>;
  pause(runId: string): Promise<metaloop.IRunRecord>;
  resume(runId: string): Promise<metaloop.IRunRecord>;
}

/** ApiError codes (see metaloop.proto). */
export type ApiErrorCode = 'INVALID_SPEC' | 'UNKNOWN_RUN' | 'BAD_REQUEST' | 'INTERNAL' | 'CONFLICT';

export function toApiError(err: unknown): metaloop.IApiError {
  if (err instanceof SpecError) return { code: 'INVALID_SPEC', message: err.message, field: err.field };
  if (err instanceof UnknownRunError) return { code: 'UNKNOWN_RUN', message: err.message, field: 'run_id' };
  if (err instanceof ConflictError) return { code: 'CONFLICT', message: err.message };
  if (err instanceof BadRequestError || err instanceof UploadError) return { code: 'BAD_REQUEST', message: err.message };
  return { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

function decode<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new BadRequestError(`cannot decode ${what}: ${(err as Error).message}`);
  }
}

/** Serve every verb the coordinator implements; returns the closers of the services. */
export function serveApi(transport: Transport, subjects: Subjects, handlers: ApiHandlers, logger: Logger): Closer[] {
  const runReply = (verb: string, fn: (data: Uint8Array) => Promise<metaloop.IRunRecord>) =>
    transport.serve(subjects.api(verb as 'submit'), async (data) => {
      try {
        return metaloop.RunReply.encode({ run: await fn(data) }).finish();
      } catch (err) {
        const error = toApiError(err);
        if (error.code === 'INTERNAL') logger.error(`api ${verb} failed`, { error: String(err) });
        else logger.debug(`api ${verb} refused`, { code: error.code, message: error.message });
        return metaloop.RunReply.encode({ error }).finish();
      }
    });
  const runId = (data: Uint8Array) => {
    const req = decode('RunRequest', () => metaloop.RunRequest.decode(data));
    if (!req.runId) throw new BadRequestError('run_id is required');
    return req.runId;
  };
  return [
    runReply('submit', async (data) => {
      const req = decode('SubmitRequest', () => metaloop.SubmitRequest.decode(data));
      return handlers.submit(req.specText, req.source || 'run spec', req.priority);
    }),
    runReply('status', (data) => handlers.status(runId(data))),
    runReply('cancel', (data) => handlers.cancel(runId(data))),
    runReply('pause', (data) => handlers.pause(runId(data))),
    runReply('resume', (data) => handlers.resume(runId(data))),
    transport.serve(subjects.api('workers'), async () => {
      try {
        return metaloop.WorkersReply.encode({ workers: await handlers.workers() }).finish();
      } catch (err) {
        return metaloop.WorkersReply.encode({ error: toApiError(err) }).finish();
      }
    }),
    transport.serve(subjects.api('list'), async (data) => {
      try {
        const req = decode('ListRequest', () => metaloop.ListRequest.decode(data));
        return metaloop.ListReply.encode({ runs: await handlers.list(req.all) }).finish();
      } catch (err) {
        return metaloop.ListReply.encode({ error: toApiError(err) }).finish();
      }
    }),
  ];
}

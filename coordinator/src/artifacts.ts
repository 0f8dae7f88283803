/**
 * What `metaloop export` and `metaloop report` read from a run, on the coordinator side: θ of a
 * chosen checkpoint (or the current parameters) and the run's history, served in chunks over the
 * control API (`export` and `history` verbs; replies stay far below NATS' 1 MiB max_payload).
 */
import { createHash } from 'node:crypto';
import {
  metaloop,
  NotFoundError,
  paramLayout,
  toBundle,
  specFromJson,
  type Closer,
  type Logger,
  type Subjects,
  type Transport,
} from '@metaloop/shared';
import { toApiError } from './api.js';
import { ConflictError } from './errors.js';
import { evalScore, RunHistory } from './history.js';
import { decodeCheckpoint } from './checkpoint.js';

/** A byte blob of a run (θ as an encoded TensorBundle, or the history JSON). */
export interface RunBlob {
  readonly runId: string;
  /** export: the step of θ. */
  readonly step: number;
  /** export: `checkpoint` or `params` (the current parameters when there is no checkpoint). */
  readonly source: string;
  readonly specJson: string;
  readonly data: Uint8Array;
  readonly sha256: string;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** How `--checkpoint` picks θ: latest | best | current | a step number. */
export function parseSelector(selector: string): 'latest' | 'best' | 'current' | number {
  const s = selector.trim() || 'latest';
  if (s === 'latest' || s === 'best' || s === 'current') return s;
  if (/^\d+$/.test(s)) return Number(s);
  throw new ConflictError('', `invalid checkpoint ${JSON.stringify(selector)}: use latest, best, current or a step number`);
}

/**
 * θ of a run: `latest` (the newest checkpoint, else the current parameters), `best` (the kept
 * checkpoint whose step has the best evaluation), `current` (the newest parameter version) or a
 * checkpoint step.
 */
export async function exportBlob(
  transport: Transport,
  record: metaloop.IRunRecord,
  history: RunHistory,
  selector: string,
): Promise<RunBlob> {
  const runId = record.runId ?? '';
  const specJson = record.specJson ?? '';
  const spec = specFromJson(specJson, `spec of run ${runId}`);
  const layout = paramLayout(spec);
  const sel = parseSelector(selector);
  const kept = await transport.listCheckpoints(runId);
  const fromCheckpoint = async (step: number): Promise<RunBlob> => {
    const cp = decodeCheckpoint(await transport.getCheckpoint(runId, step), layout, spec.outer.optimizer);
    const data = metaloop.TensorBundle.encode(toBundle({ layout, data: cp.params })).finish();
    return { runId, step, source: 'checkpoint', specJson, data, sha256: sha256(data) };
  };
  const current = async (): Promise<RunBlob> => {
    const step = record.paramVersion ?? record.step ?? 0;
    let data: Uint8Array;
    try {
      data = await transport.getParams(runId, step);
    } catch (err) {
      if (err instanceof NotFoundError) throw new ConflictError(runId, `run ${runId}: parameters of step ${step} are gone (try again, or export a checkpoint)`);
      throw err;
    }
    return { runId, step, source: 'params', specJson, data, sha256: sha256(data) };
  };
  if (sel === 'current') return current();
  if (sel === 'latest') return kept.length > 0 ? fromCheckpoint(Math.max(...kept)) : current();
  if (sel === 'best') {
    const scored = history.toJson().evals.filter((e) => kept.includes(e.step));
    if (scored.length === 0) {
      throw new ConflictError(runId, `run ${runId}: no kept checkpoint (${kept.join(', ') || 'none'}) has an evaluation at its step; use --checkpoint latest or a step`);
    }
    const best = scored.reduce((a, b) => (evalScore(b) > evalScore(a) ? b : a));
    return fromCheckpoint(best.step);
  }
  if (!kept.includes(sel)) {
    throw new ConflictError(runId, `run ${runId} has no checkpoint at step ${sel} (kept: ${kept.join(', ') || 'none'})`);
  }
  return fromCheckpoint(sel);
}

export interface DataApiHandlers {
  exportBlob(runId: string, selector: string): Promise<RunBlob>;
  history(runId: string): Promise<RunBlob>;
}

/** Default bytes per reply chunk. */
export const BLOB_CHUNK_BYTES = 512 * 1024;
const CACHE_MS = 60_000;

/** Serve `export` and `history`: the first request resolves the blob, later offsets read a short cache. */
export function serveDataApi(transport: Transport, subj: Subjects, handlers: DataApiHandlers, logger: Logger): Closer[] {
  const cache = new Map<string, { blob: RunBlob; expires: number }>();
  const serve = (verb: 'export' | 'history', resolve: (runId: string, selector: string) => Promise<RunBlob>) =>
    transport.serve(subj.api(verb), async (bytes) => {
      try {
        const req = metaloop.BlobRequest.decode(bytes);
        if (!req.runId) throw new ConflictError('', 'run_id is required');
        const offset = Number(req.offset ?? 0);
        const key = `${verb}\u0000${req.runId}\u0000${req.selector}`;
        const now = Date.now();
        for (const [k, v] of cache) if (v.expires < now) cache.delete(k);
        let hit = offset > 0 ? cache.get(key) : undefined;
        if (!hit) {
          hit = { blob: await resolve(req.runId, req.selector), expires: now + CACHE_MS };
          cache.set(key, hit);
        }
        const { blob } = hit;
        const max = Math.min(req.maxBytes || BLOB_CHUNK_BYTES, BLOB_CHUNK_BYTES);
        return metaloop.BlobReply.encode({
          runId: blob.runId,
          step: blob.step,
          source: blob.source,
          specJson: blob.specJson,
          totalBytes: blob.data.byteLength,
          offset,
          data: blob.data.subarray(Math.min(offset, blob.data.byteLength), Math.min(offset + max, blob.data.byteLength)),
          sha256: blob.sha256,
        }).finish();
      } catch (err) {
        const error = toApiError(err);
        if (error.code === 'INTERNAL') logger.error(`api ${verb} failed`, { error: String(err) });
        return metaloop.BlobReply.encode({ error }).finish();
      }
    });
  return [serve('export', (id, sel) => handlers.exportBlob(id, sel)), serve('history', (id) => handlers.history(id))];
}

/** The history of a run as a blob. */
export function historyBlob(record: metaloop.IRunRecord, history: RunHistory): RunBlob {
  const data = new Uint8Array(Buffer.from(JSON.stringify(history.toJson()), 'utf8'));
  return { runId: record.runId ?? '', step: record.step ?? 0, source: 'history', specJson: record.specJson ?? '', data, sha256: sha256(data) };
}

/** JetStream messages → Transport messages (work items, results), and purging one subject. */
import type { JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { TransportError } from '../errors.js';
import type { LeaseSettings } from '../lease.js';
import type { Logger } from '../logger.js';
import type { Subjects } from '../subjects.js';
import type { ResultMessage, WorkMessage } from '../transport.js';
import { isClosedError } from './nats-options.js';
import type { BlobChannel } from './nats-resources.js';

export interface MessageContext {
  readonly blobs: BlobChannel;
  readonly log: Logger;
  readonly address: string;
  readonly subjects: Subjects;
}

const errMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** `<prefix>.<kind>.<run>` → `<run>` */
function runIdOf(ctx: MessageContext, subject: string, kind: 'work' | 'results'): string {
  const head = ctx.subjects[kind]('');
  return subject.startsWith(head) ? subject.slice(head.length) : subject;
}

/** The WorkMessage of a pulled message; null (after nak/term) when its blob is unreadable/gone. */
export async function toWorkMessage(
  m: JsMsg,
  ctx: MessageContext,
  lease?: LeaseSettings,
): Promise<WorkMessage | null> {
  let data: Uint8Array | null;
  try {
    data = await ctx.blobs.unwrap(m.data, m.headers);
  } catch (err) {
    ctx.log.warn('work blob unreadable; retrying later', { error: errMessage(err) });
    m.nak(1000);
    return null;
  }
  if (!data) {
    ctx.log.warn('work blob missing; work item dropped', { subject: m.subject });
    m.term();
    return null;
  }
  const headers = m.headers;
  return {
    data,
    runId: runIdOf(ctx, m.subject, 'work'),
    deliveryCount: m.info.deliveryCount,
    ...(lease ? { leaseMs: lease.leaseMs, maxDeliver: lease.maxDeliver } : {}),
    ack: async () => {
      // Not waiting for the server's confirmation (a round trip per shard): the result is already
      // stored, and a lost ack only redelivers the item after its lease; the coordinator keeps one
      // result per shard.
      try {
        m.ack();
      } catch (err) {
        if (isClosedError(err)) throw new TransportError('ack after the transport closed', ctx.address, { cause: err });
        throw new TransportError(`ack failed on ${ctx.address}: ${errMessage(err)}`, ctx.address, { cause: err });
      }
      await ctx.blobs.release(headers);
    },
    nak: (delayMs?: number) => m.nak(delayMs && delayMs > 0 ? delayMs : undefined),
    working: () => m.working(),
    term: () => {
      m.term();
      void ctx.blobs.release(headers);
    },
  };
}

/** Hand one result to `handler` (keeping its ack alive while it runs), then ack it. */
export async function handleResult(
  m: JsMsg,
  handler: (msg: ResultMessage) => Promise<void> | void,
  ctx: MessageContext,
): Promise<void> {
  const msgId = m.headers?.get('Nats-Msg-Id') ?? '';
  let data: Uint8Array | null;
  try {
    data = await ctx.blobs.unwrap(m.data, m.headers);
  } catch (err) {
    ctx.log.warn('result blob unreadable; retrying later', { msgId, error: errMessage(err) });
    m.nak(1000);
    return;
  }
  if (data) {
    const keepAlive = setInterval(() => m.working(), 20_000);
    try {
      await handler({ data, runId: runIdOf(ctx, m.subject, 'results'), msgId });
    } catch (err) {
      // Acked anyway: a handler that throws on a message would otherwise loop on it forever.
      ctx.log.warn('result handler threw; result dropped', { msgId, error: errMessage(err) });
    } finally {
      clearInterval(keepAlive);
    }
  } else {
    ctx.log.warn('result blob missing; result dropped', { msgId });
  }
  try {
    // Fire and forget: a lost ack redelivers the result after AckWait, and duplicates are rejected.
    m.ack();
    await ctx.blobs.release(m.headers);
  } catch (err) {
    ctx.log.warn('result ack failed (it will be redelivered)', { msgId, error: errMessage(err) });
  }
}

/**
 * Delete every message of `subject` from `stream`. Not `streams.purge({ filter })`: on
 * nats-server 2.9 a filtered purge moves a WorkQueue consumer's floor past the purged sequences,
 * silently skipping other subjects' queued messages. Messages are found with MSG.GET next_by_subj.
 */
export async function purgeSubject(nc: NatsConnection, jsm: JetStreamManager, stream: string, subject: string): Promise<number> {
  const api = `$JS.API.STREAM.MSG.GET.${stream}`;
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  let deleted = 0;
  for (let seq = 0; ; ) {
    const reply = await nc.request(api, enc.encode(JSON.stringify({ seq, next_by_subj: subject })), { timeout: 5000 });
    const body = JSON.parse(dec.decode(reply.data)) as {
      message?: { seq: number };
      error?: { code: number; description?: string };
    };
    if (!body.message) {
      if (body.error?.code === 404) return deleted;
      throw new TransportError(`purge ${subject}: ${body.error?.description ?? 'unexpected reply'}`);
    }
    const ok = await jsm.streams.deleteMessage(stream, body.message.seq, false).catch((err: unknown) => {
      if (!/not found|no message/i.test(errMessage(err))) throw err;
      return false;
    });
    if (ok) deleted += 1;
    seq = body.message.seq + 1;
  }
}

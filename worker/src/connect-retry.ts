/**
 * Waiting for NATS at start-up: a worker (a pod restarted before NATS is up, or started before
 * nats-server on a laptop) retries an unreachable server with exponential back-off, saying so on
 * each attempt, instead of exiting. Only "cannot connect" is retried: refused credentials, a bad
 * URL or any other error end the wait at once.
 */
import { ConnectionError, type Logger } from '@metaloop/shared';

export interface ConnectRetryOptions {
  readonly logger: Logger;
  /** Give up after this long (ms) and throw the last ConnectionError; Infinity = never, 0 = one attempt. */
  readonly waitMs: number;
  /** First delay between attempts. Default 500. */
  readonly initialDelayMs?: number;
  /** Longest delay between attempts. Default 15 000. */
  readonly maxDelayMs?: number;
  /** Stop waiting (SIGINT/SIGTERM): throws the signal's reason. */
  readonly signal?: AbortSignal;
  /** What is being connected to, for the log lines (the NATS URL). */
  readonly target: string;
}

/** The delay before attempt `n + 1` (n ≥ 1): initial · 2^(n-1), capped at max. */
export function backoffMs(attempt: number, initialDelayMs: number, maxDelayMs: number): number {
  return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, attempt - 1));
}

/** Call `connect` until it succeeds; ConnectionErrors are retried with back-off within `waitMs`. */
export async function connectWithRetry<T>(connect: () => Promise<T>, o: ConnectRetryOptions): Promise<T> {
  const initial = o.initialDelayMs ?? 500;
  const max = o.maxDelayMs ?? 15_000;
  const deadline = Date.now() + o.waitMs;
  for (let attempt = 1; ; attempt++) {
    o.signal?.throwIfAborted();
    try {
      const connected = await connect();
      if (attempt > 1) o.logger.info('connected to NATS', { nats: o.target, attempts: attempt });
      return connected;
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      const delay = backoffMs(attempt, initial, max);
      if (Date.now() + delay > deadline) throw err;
      o.logger.warn(`NATS not reachable yet; retrying in ${(delay / 1000).toFixed(1)} s`, {
        nats: o.target,
        attempt,
        error: err.message.split('\n')[0],
      });
      await sleep(delay, o.signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

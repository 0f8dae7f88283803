/**
 * RunLoop's writes that must land (θ versions, checkpoints: checkpoint.ts) are retried with
 * back-off: a JetStream hiccup must not fail a run.
 */
import type { Logger } from '@metaloop/shared';

/** `fn`, retried up to 5 times with back-off (100 ms · 2^attempt) unless `signal` aborted. */
export async function retry<T>(what: string, logger: Logger, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 5 || signal.aborted) throw err;
      logger.warn(`${what} failed; retrying`, { attempt, error: String(err) });
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

/**
 * RunLoop's writes that must land: θ versions and checkpoints, each retried with back-off (a
 * JetStream hiccup must not fail a run), and the pruning of old checkpoints.
 */
import type { Logger, RunStore } from '@metaloop/shared';

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

/** Write checkpoint `step` of a run (retried), then delete all but its newest `keep` checkpoints. */
export async function storeCheckpoint(
  store: Pick<RunStore, 'putCheckpoint' | 'listCheckpoints' | 'deleteCheckpoint'>,
  runId: string,
  step: number,
  bytes: Uint8Array,
  keep: number,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  await retry('writing a checkpoint', logger, signal, () => store.putCheckpoint(runId, step, bytes));
  const steps = (await store.listCheckpoints(runId)).sort((a, b) => a - b);
  for (const old of steps.slice(0, Math.max(0, steps.length - keep))) {
    await store.deleteCheckpoint(runId, old).catch(() => {});
  }
}

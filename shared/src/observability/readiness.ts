/** Readiness checks shared by the coordinator and worker CLIs. */
import type { RunStore } from '../transport.js';
import type { Readiness, ReadinessCheck } from './server.js';

/** Run id read by the NATS round-trip probe (never written). */
export const READINESS_PROBE_RUN_ID = 'readyz-probe';

/**
 * Ready when every named condition holds, in order (the first failing one is the reason), and the
 * transport answers a JetStream KV read (a real round trip to NATS; the server's timeout turns a
 * hanging read into 503).
 */
export function transportReadiness(transport: Pick<RunStore, 'getRun'>, conditions: readonly (readonly [reason: string, ok: () => boolean])[] = []): ReadinessCheck {
  return async (): Promise<Readiness> => {
    for (const [reason, ok] of conditions) if (!ok()) return { ready: false, reason };
    try {
      await transport.getRun(READINESS_PROBE_RUN_ID);
    } catch (err) {
      return { ready: false, reason: `NATS not reachable: ${err instanceof Error ? err.message : String(err)}` };
    }
    return { ready: true, reason: 'ready' };
  };
}

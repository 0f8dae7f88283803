/** Asserting that nats-server refuses an action for lack of permissions (auth and chart tests). */

/** What this needs of a NATS connection (@nats-io's NatsConnection has it). */
export interface StatusSource {
  status(): AsyncIterable<{ type: string; error?: unknown }>;
}

/**
 * The permissions error nats-server reports for `nc` while `action` runs: thrown by the action, or
 * sent as an asynchronous error on the connection's status (publishes are refused that way). Waits
 * up to `graceMs` for the asynchronous one. The thrown and the status text, joined ('' when neither).
 */
export async function permissionError(nc: StatusSource, action: () => unknown, graceMs = 1500): Promise<string> {
  let status = '';
  const watch = (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && /permission/i.test(String(s.error))) {
        status = String(s.error);
        return;
      }
    }
  })();
  let thrown = '';
  try {
    await action();
  } catch (err) {
    thrown = String(err);
  }
  await Promise.race([watch, new Promise((r) => setTimeout(r, graceMs))]);
  return `${thrown} ${status}`.trim();
}

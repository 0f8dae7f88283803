/**
 * The one place the params suite touches the product's parameter API (the public exports of
 * @metaloop/shared): a NATS connection's putParams / getParams / deleteParams. When the transport's
 * roles change, adapt this file only.
 */
import { NatsTransport } from '@metaloop/shared';

/**
 * { put(run, version, bytes), get(run, version), drop(run, version), settle(run, version),
 *   servedFromBroadcast(), close() } on one NATS connection, as a coordinator or worker opens it.
 */
export async function openParams(url, name) {
  const t = await NatsTransport.create({ servers: url, name });
  return {
    put: (run, version, bytes) => t.putParams(run, version, bytes),
    get: (run, version) => t.getParams(run, version),
    drop: (run, version) => t.deleteParams(run, version),
    // The publisher's own getParams: its kept copy (or, after a durable put, once that settled).
    settle: async (run, version) => void (await t.getParams(run, version)),
    servedFromBroadcast: () => t.paramsBroadcast.stats.served,
    close: () => t.close(),
  };
}

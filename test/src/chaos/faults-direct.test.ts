/**
 * The faults suite (faults.test.ts: worker kill -9, coordinator kill -9 + restart, nats-server
 * restart, a shard failing on every delivery, forged results) with the coordinator and every
 * worker on direct dispatch: shards assigned over core NATS, results as one request each.
 * The processes the suite starts inherit METALOOP_DISPATCH.
 */
process.env.METALOOP_DISPATCH = 'direct';
await import('./faults.test.js');

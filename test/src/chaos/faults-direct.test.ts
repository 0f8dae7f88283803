/**
 * The faults suite (faults.test.ts: worker kill -9, coordinator kill -9 + restart, nats-server
 * restart, a shard failing on every delivery, forged results) with the coordinator and every
 * worker on direct dispatch (the default): shards assigned over core NATS, results as one request
 * each. faults.test.ts itself runs the suite on queue dispatch.
 */
process.env.METALOOP_FAULTS_DISPATCH = 'direct';
await import('./faults.test.js');

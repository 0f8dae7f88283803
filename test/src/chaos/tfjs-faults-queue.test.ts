/**
 * The tfjs faults suite (tfjs-faults.test.ts: worker kill -9, coordinator kill -9 + restart,
 * nats-server restart on the tensorflow backend) with the coordinator and every worker on queue
 * dispatch (the JetStream WorkQueue, the opt-in mode). tfjs-faults.test.ts runs it on direct.
 */
process.env.METALOOP_FAULTS_DISPATCH = 'queue';
await import('./tfjs-faults.test.js');

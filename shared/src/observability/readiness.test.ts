import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InProcTransport } from '../transport/inproc.js';
import { transportReadiness } from './readiness.js';

describe('transportReadiness', () => {
  it('is ready when the conditions hold and the transport answers; names the first failing condition', async () => {
    const transport = await InProcTransport.create();
    let backendLoaded = false;
    const check = transportReadiness(transport, [['backend not loaded', () => backendLoaded]]);
    assert.deepEqual(await check(), { ready: false, reason: 'backend not loaded' });
    backendLoaded = true;
    assert.deepEqual(await check(), { ready: true, reason: 'ready' });
    await transport.close();
    const after = await check();
    assert.equal(typeof after === 'object' && after.ready, false);
    assert.match(typeof after === 'object' ? (after.reason ?? '') : '', /NATS not reachable/);
  });
});

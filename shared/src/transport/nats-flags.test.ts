import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { natsFlagsToEnv, natsOptionsFromFlags } from './nats-flags.js';

describe('natsOptionsFromFlags: the NATS flags and METALOOP_* env of every CLI', () => {
  test('env vars alone; empty ones are unset', () => {
    const o = natsOptionsFromFlags({}, {
      METALOOP_NATS_URL: 'nats://x:4222',
      METALOOP_NATS_USER: 'u',
      METALOOP_NATS_PASSWORD: 'p',
      METALOOP_NATS_TLS_CA: '/ca.pem',
      METALOOP_PREFIX: 'ml',
      METALOOP_NATS_TOKEN: '',
    });
    assert.deepEqual(o, { servers: 'nats://x:4222', user: 'u', pass: 'p', prefix: 'ml', tls: { ca: '/ca.pem' } });
  });

  test('flags win over env; every flag maps to its option', () => {
    const o = natsOptionsFromFlags(
      {
        nats: 'nats://flag:1',
        prefix: 'p1',
        natsToken: 't',
        natsCreds: '/c.creds',
        natsTlsCa: '/ca',
        natsTlsCert: '/cert',
        natsTlsKey: '/key',
      },
      { METALOOP_NATS_URL: 'nats://env:2', METALOOP_PREFIX: 'p2', METALOOP_NATS_TLS_KEY: '/envkey' },
    );
    assert.deepEqual(o, { servers: 'nats://flag:1', prefix: 'p1', token: 't', credsFile: '/c.creds', tls: { ca: '/ca', cert: '/cert', key: '/key' } });
  });

  test('nothing set: nothing (the transport defaults); a user alone gets an empty password', () => {
    assert.deepEqual(natsOptionsFromFlags({}, {}), {});
    assert.deepEqual(natsOptionsFromFlags({ natsUser: 'u' }, {}), { user: 'u', pass: '' });
    assert.deepEqual(natsOptionsFromFlags({ nats: '' }, { METALOOP_NATS_URL: 'nats://e:3' }), { servers: 'nats://e:3' });
  });

  test('natsFlagsToEnv: the flags back as env vars, and round trip', () => {
    const flags = { nats: 'nats://a:1', prefix: 'q', natsUser: 'u', natsPassword: 'pw', natsTlsCert: '/cert' };
    const env = natsFlagsToEnv(flags);
    assert.deepEqual(env, { METALOOP_NATS_URL: 'nats://a:1', METALOOP_PREFIX: 'q', METALOOP_NATS_USER: 'u', METALOOP_NATS_PASSWORD: 'pw', METALOOP_NATS_TLS_CERT: '/cert' });
    assert.deepEqual(natsOptionsFromFlags({}, env), natsOptionsFromFlags(flags, {}));
  });
});

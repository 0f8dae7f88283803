import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metaloop } from './gen/metaloop.js';
import { kindFromProto, kindToProto, shardMsgId } from './shard.js';

describe('shard kind', () => {
  it('maps the proto enum to one name and back (unset is train)', () => {
    assert.equal(kindFromProto(metaloop.ShardKind.SHARD_KIND_TRAIN), 'train');
    assert.equal(kindFromProto(metaloop.ShardKind.SHARD_KIND_EVAL), 'eval');
    assert.equal(kindFromProto(undefined), 'train');
    assert.equal(kindFromProto(null), 'train');
    for (const k of ['train', 'eval'] as const) assert.equal(kindFromProto(kindToProto(k)), k);
  });

  it('names no kind for an enum value it does not know', () => {
    assert.equal(kindFromProto(7 as metaloop.ShardKind), null);
  });

  it('keeps train and eval message ids apart', () => {
    assert.equal(shardMsgId('r', 3, 1, 'train'), 'r.3.1');
    assert.equal(shardMsgId('r', 3, 1, 'eval'), 'r.e3.1');
  });
});

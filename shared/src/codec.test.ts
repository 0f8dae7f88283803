import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFloat32, decodeTensorBundle, encodeFloat32, encodeTensorBundle, fromBundle, toBundle, type TensorSpec } from './codec.js';
import { CodecError } from './errors.js';
import { metaloop } from './gen/metaloop.js';
import { Rng } from './seeds.js';

/** Bit patterns, so NaN payloads and -0 compare exactly. */
function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

function randomValues(rng: Rng, n: number): Float32Array {
  const specials = [NaN, Infinity, -Infinity, -0, 0, 1e-45, -3.4028234663852886e38, 3.4028234663852886e38];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = rng.next() < 0.1 ? specials[rng.int(specials.length)]! : rng.normal() * 10 ** rng.int(12);
  }
  return out;
}

describe('tensor codec', () => {
  it('round-trips random shapes bit for bit, including NaN, ±Inf and -0', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 50; trial++) {
      const shape = Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(6));
      const n = shape.reduce((a, b) => a * b, 1);
      const values = randomValues(rng, n);
      const decoded = decodeFloat32(encodeFloat32(values), n);
      assert.deepEqual(bits(decoded), bits(values));
    }
    const nanPayload = new Float32Array(new Uint32Array([0x7fc00001, 0xffc00000, 0x80000000]).buffer);
    assert.deepEqual(bits(decodeFloat32(encodeFloat32(nanPayload))), bits(nanPayload));
    assert.ok(Object.is(decodeFloat32(encodeFloat32(new Float32Array([-0])))[0], -0));
  });

  it('decodes aligned buffers as a view and unaligned ones with one copy', () => {
    const values = new Float32Array([1.5, -2.25, NaN, -0]);
    const bytes = encodeFloat32(values);
    const aligned = decodeFloat32(bytes);
    assert.equal(aligned.buffer, values.buffer, 'aligned decode must not copy');

    for (const offset of [1, 2, 3, 5]) {
      const backing = new Uint8Array(bytes.byteLength + offset);
      backing.set(bytes, offset);
      const unaligned = backing.subarray(offset);
      const decoded = decodeFloat32(unaligned);
      assert.notEqual(decoded.buffer, backing.buffer, 'unaligned decode copies');
      assert.deepEqual(bits(decoded), bits(values));
    }
  });

  it('rejects a byte length that is not a multiple of 4 with a clear error', () => {
    assert.throws(
      () => decodeFloat32(new Uint8Array(7)),
      (err: unknown) => err instanceof CodecError && /7 bytes, not a multiple of 4/.test(err.message),
    );
    assert.throws(() => decodeFloat32(new Uint8Array(8), 3), /2 values, expected 3/);
  });

  it('round-trips a TensorBundle through protobuf at an unaligned offset', () => {
    const layout: TensorSpec[] = [
      { name: 'l0.w', shape: [3, 5] },
      { name: 'l0.b', shape: [5] },
    ];
    const data = randomValues(new Rng(3), 20);
    const wire = metaloop.ShardResult.encode({ runId: 'x', grad: toBundle({ layout, data }) }).finish();
    const back = fromBundle(metaloop.ShardResult.decode(wire).grad, layout);
    assert.deepEqual(bits(back.data), bits(data));
    assert.deepEqual(back.layout, layout);
    assert.throws(
      () => fromBundle(metaloop.ShardResult.decode(wire).grad, [{ name: 'l0.w', shape: [3, 4] }, { name: 'l0.b', shape: [5] }]),
      /tensor 0 is l0.w\[3,5\], expected l0.w\[3,4\]/,
    );
    assert.throws(() => toBundle({ layout, data: new Float32Array(19) }), /describes 20 values but the data has 19/);
  });
});

describe('encodeTensorBundle / decodeTensorBundle (one-copy path)', () => {
  const layoutOf = (sizes: number[]): TensorSpec[] => sizes.map((n, i) => ({ name: `t${i}.${'x'.repeat(i)}`, shape: [n] }));

  it('round-trips bit for bit, with the data 4-byte aligned for every header length', () => {
    const rng = new Rng(11);
    const offsets = new Set<number>();
    for (let trial = 0; trial < 60; trial++) {
      const layout = layoutOf(Array.from({ length: 1 + (trial % 7) }, () => 1 + rng.int(40 + trial * 3)));
      const n = layout.reduce((a, t) => a + t.shape[0]!, 0);
      const data = randomValues(rng, n);
      const wire = encodeTensorBundle({ layout, data });
      assert.equal(wire.byteOffset, 0);
      const back = decodeTensorBundle(wire, layout);
      assert.deepEqual(bits(back.data), bits(data));
      assert.deepEqual(back.layout, layout);
      assert.equal(back.data.buffer, wire.buffer, 'aligned data decodes as a view (zero copy)');
      assert.equal(back.data.byteOffset % 4, 0);
      const headerBytes = metaloop.TensorBundle.encode({ tensors: layout.map((t) => ({ name: t.name, shape: [...t.shape] })) }).finish().length;
      offsets.add((headerBytes + 1 + (n * 4 < 128 ? 1 : n * 4 < 16384 ? 2 : 3)) % 4);
    }
    assert.equal(offsets.size, 4, 'every misalignment of the unpadded data (0-3 bytes) was exercised');
  });

  it('is valid protobuf: plain metaloop.TensorBundle.decode reads it, and re-encodes to the same content', () => {
    const layout = layoutOf([3, 5, 200]);
    const data = randomValues(new Rng(5), 208);
    const wire = encodeTensorBundle({ layout, data });
    const plain = metaloop.TensorBundle.decode(wire);
    assert.deepEqual(plain.tensors.map((t) => ({ name: t.name, shape: [...(t.shape ?? [])] })), layout);
    assert.deepEqual(bits(decodeFloat32(plain.data, 208)), bits(data));
    // protobufjs re-encoding (what an old peer would send) decodes to the same tensors.
    const reencoded = metaloop.TensorBundle.encode(toBundle({ layout, data })).finish();
    assert.deepEqual(bits(decodeTensorBundle(reencoded, layout).data), bits(data));
    // Inside another message (a copy at any offset) it still decodes, with one copy when unaligned.
    for (const shift of [1, 2, 3]) {
      const moved = new Uint8Array(wire.length + shift);
      moved.set(wire, shift);
      assert.deepEqual(bits(decodeTensorBundle(moved.subarray(shift), layout).data), bits(data));
    }
  });

  it('handles an empty bundle and large lengths (multi-byte varints)', () => {
    const empty = encodeTensorBundle({ layout: [], data: new Float32Array(0) });
    assert.equal(decodeTensorBundle(empty, []).data.length, 0);
    const layout = layoutOf([70_000]);
    const data = randomValues(new Rng(9), 70_000);
    const back = decodeTensorBundle(encodeTensorBundle({ layout, data }), layout);
    assert.deepEqual(bits(back.data), bits(data));
  });

  it('rejects malformed bytes and a wrong layout with a CodecError', () => {
    const layout = layoutOf([4]);
    const wire = encodeTensorBundle({ layout, data: new Float32Array(4) });
    assert.throws(() => decodeTensorBundle(wire.subarray(0, wire.length - 3), layout), CodecError);
    assert.throws(() => decodeTensorBundle(wire, layoutOf([2, 2])), /bundle has 1 tensors, expected 2/);
  });
});

describe('encodeTensorBundle into a reused buffer', () => {
  it('writes into the given buffer (a view, no allocation) and refuses one too small or unaligned', () => {
    const layout: TensorSpec[] = [{ name: 'w', shape: [10] }];
    const data = randomValues(new Rng(2), 10);
    const fresh = encodeTensorBundle({ layout, data });
    const pool = new Uint8Array(256);
    const wire = encodeTensorBundle({ layout, data }, pool);
    assert.equal(wire.buffer, pool.buffer);
    assert.deepEqual([...wire], [...fresh]);
    assert.equal(decodeTensorBundle(wire, layout).data.buffer, pool.buffer);
    assert.throws(() => encodeTensorBundle({ layout, data }, new Uint8Array(fresh.length - 1)), CodecError);
    assert.throws(() => encodeTensorBundle({ layout, data }, pool.subarray(2)), CodecError);
  });
});

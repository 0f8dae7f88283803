/**
 * Tensor codec: Float32Array <-> little-endian bytes, and TensorBundle helpers.
 * Decoding is zero-copy when the bytes are 4-byte aligned, one copy otherwise.
 */
import { CodecError } from './errors.js';
import { metaloop } from './gen/metaloop.js';

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** View (never copy on little-endian hosts) the bytes of a float32 array. */
export function encodeFloat32(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i]!, true);
  return out;
}

/**
 * Float32 values of little-endian bytes. A view on the same memory when `bytes.byteOffset` is a
 * multiple of 4 (on little-endian hosts), else one copy. A length that is not a multiple of 4 is a
 * CodecError. NaN payloads, ±Inf and -0 are preserved bit for bit.
 */
export function decodeFloat32(bytes: Uint8Array, expectedLength?: number): Float32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new CodecError(
      `float32 data has ${bytes.byteLength} bytes, not a multiple of 4: the message is truncated or not a tensor`,
      bytes.byteLength,
    );
  }
  const n = bytes.byteLength / 4;
  if (expectedLength !== undefined && n !== expectedLength) {
    throw new CodecError(`float32 data has ${n} values, expected ${expectedLength}`, bytes.byteLength);
  }
  if (!LITTLE_ENDIAN) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(i * 4, true);
    return out;
  }
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, n);
}

/** Name and shape of one tensor of a flat parameter vector. */
export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function layoutSize(layout: readonly TensorSpec[]): number {
  let n = 0;
  for (const t of layout) n += sizeOf(t.shape);
  return n;
}

/** A flat float32 vector with its layout: how Metaloop moves parameters and gradients. */
export interface FlatTensors {
  readonly layout: readonly TensorSpec[];
  readonly data: Float32Array;
}

export function toBundle(flat: FlatTensors): metaloop.ITensorBundle {
  const total = layoutSize(flat.layout);
  if (total !== flat.data.length) {
    throw new CodecError(`layout describes ${total} values but the data has ${flat.data.length}`);
  }
  return {
    tensors: flat.layout.map((t) => ({ name: t.name, shape: [...t.shape] })),
    data: encodeFloat32(flat.data),
  };
}

/** Decode a TensorBundle, checking that its layout matches `expected` when given. */
export function fromBundle(
  bundle: metaloop.ITensorBundle | null | undefined,
  expected?: readonly TensorSpec[],
): FlatTensors {
  if (!bundle) throw new CodecError('tensor bundle is missing');
  const layout: TensorSpec[] = (bundle.tensors ?? []).map((t) => ({
    name: t.name ?? '',
    shape: [...(t.shape ?? [])],
  }));
  const data = decodeFloat32(bundle.data ?? new Uint8Array(0), layoutSize(layout));
  if (expected) assertSameLayout(layout, expected);
  return { layout, data };
}

/** Field number of the alignment padding in an encoded TensorBundle (reserved in metaloop.proto). */
export const TENSOR_BUNDLE_PAD_FIELD = 15;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  return pos;
}

/**
 * Encode a TensorBundle with ONE copy of the float data into one exact-size buffer: the small
 * header (the layout) goes through protobufjs, then an alignment pad (an unknown length-delimited
 * field 15, skipped by every protobuf decoder) and field 2 (tag, varint length, raw bytes) are
 * written by hand so that the data starts at a multiple of 4 bytes. Valid protobuf:
 * `metaloop.TensorBundle.decode` reads it, and `decodeTensorBundle` then views the floats in place.
 * `into` (a reused buffer at a 4-byte-aligned offset, at least as long as the encoding) skips the
 * allocation — for large vectors a fresh allocation (page faults on new pages) costs more than the
 * copy itself; the result is then a view of `into`, valid until the caller reuses it.
 */
export function encodeTensorBundle(flat: FlatTensors, into?: Uint8Array): Uint8Array {
  const bundle = toBundle(flat);
  const header = metaloop.TensorBundle.encode({ tensors: bundle.tensors ?? [] }).finish();
  const data = bundle.data!;
  const n = data.byteLength;
  const prefix = header.byteLength + 1 + varintSize(n);
  const need = (4 - (prefix % 4)) % 4;
  // A pad field is a tag byte + a length byte + k bytes: 2 + k ≡ need (mod 4).
  const padBytes = need === 0 ? 0 : need === 1 ? 5 : need;
  const size = prefix + padBytes + n;
  let out: Uint8Array;
  if (into) {
    if (into.byteLength < size || into.byteOffset % 4 !== 0) {
      throw new CodecError(`encodeTensorBundle: the output buffer must hold ${size} bytes at a 4-byte-aligned offset`, into.byteLength);
    }
    out = into.subarray(0, size);
  } else {
    // Own ArrayBuffer at offset 0 (never the shared pool): offsets in `out` are absolute alignments.
    out = Buffer.allocUnsafeSlow(size);
  }
  out.set(header, 0);
  let pos = header.byteLength;
  if (padBytes > 0) {
    out[pos++] = (TENSOR_BUNDLE_PAD_FIELD << 3) | 2;
    out[pos++] = padBytes - 2;
    out.fill(0, pos, pos + padBytes - 2);
    pos += padBytes - 2;
  }
  out[pos++] = (2 << 3) | 2;
  pos = writeVarint(out, pos, n);
  out.set(data, pos);
  return out;
}

/**
 * Decode an encoded TensorBundle (from `encodeTensorBundle` or any protobuf encoder), checking its
 * layout against `expected` when given. The floats are a view of `bytes` when their offset is a
 * multiple of 4 (always for `encodeTensorBundle` output in a 4-byte-aligned buffer), else one copy.
 */
export function decodeTensorBundle(bytes: Uint8Array, expected?: readonly TensorSpec[]): FlatTensors {
  let bundle: metaloop.TensorBundle;
  try {
    bundle = metaloop.TensorBundle.decode(bytes);
  } catch (err) {
    throw new CodecError(`malformed tensor bundle: ${err instanceof Error ? err.message : String(err)}`, bytes.byteLength);
  }
  return fromBundle(bundle, expected);
}

export function assertSameLayout(got: readonly TensorSpec[], expected: readonly TensorSpec[]): void {
  if (got.length !== expected.length) {
    throw new CodecError(`bundle has ${got.length} tensors, expected ${expected.length}`);
  }
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const e = expected[i]!;
    if (g.name !== e.name || g.shape.length !== e.shape.length || g.shape.some((d, j) => d !== e.shape[j])) {
      throw new CodecError(
        `tensor ${i} is ${g.name}[${g.shape.join(',')}], expected ${e.name}[${e.shape.join(',')}]`,
      );
    }
  }
}

/** True when every value is finite (no NaN, no ±Inf). */
export function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) return false;
  }
  return true;
}

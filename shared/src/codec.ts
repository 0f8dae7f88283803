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

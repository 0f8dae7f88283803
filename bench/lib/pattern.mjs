/** A cheap, version-dependent fill pattern, so receivers can check they got the right bytes. */

export function fillPattern(bytes, version) {
  const n = bytes.byteLength >>> 2;
  const u = new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  for (let i = 0; i < n; i++) u[i] = (Math.imul(i, 2654435761) + version) >>> 0;
}

/** Checks every 1021st word and the last one (works on unaligned views too). */
export function checkPattern(bytes, version) {
  const n = bytes.byteLength >>> 2;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const word = (i) => dv.getUint32(i * 4, true);
  const want = (i) => (Math.imul(i, 2654435761) + version) >>> 0;
  for (let i = 0; i < n; i += 1021) if (word(i) !== want(i)) return false;
  return n === 0 || word(n - 1) === want(n - 1);
}

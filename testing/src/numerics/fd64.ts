/** Float64 helpers for finite-difference checks of host (typed-array) code. */
import type { Rng } from '@metaloop/shared';

export function dot64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** n seeded normal values times `scale`. */
export function normalArray64(rng: Rng, n: number, scale = 1): Float64Array {
  return Float64Array.from({ length: n }, () => scale * rng.normal());
}

/** The central difference (f(x + h·v) − f(x − h·v)) / 2h of f at x along v. */
export function centralDifference64(f: (x: Float64Array) => number, x: Float64Array, v: ArrayLike<number>, h = 1e-5): number {
  const at = (s: number) => f(x.map((xi, i) => xi + s * h * v[i]!));
  return (at(1) - at(-1)) / (2 * h);
}

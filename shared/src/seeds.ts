/**
 * Deterministic seeds. Task seed = hash(runSeed, domain, step, index): independent of sharding and
 * of which worker computes it. Domains separate meta-train tasks, held-out eval tasks and inits.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export const SeedDomain = { train: 1, eval: 2, init: 3, test: 4 } as const;
export type SeedDomainName = keyof typeof SeedDomain;

/** 32-bit finaliser of murmur3 (good avalanche, cheap). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash a list of uint32 words to one uint32. */
export function hashWords(...words: number[]): number {
  let h = 0x9747b28c;
  for (const w of words) {
    h = fmix32((h ^ fmix32(w >>> 0)) + 0x9e3779b9);
  }
  return h >>> 0;
}

export function taskSeed(runSeed: number, domain: SeedDomainName, step: number, index: number): number {
  return hashWords(runSeed, SeedDomain[domain], step, index);
}

/** A seeded stream of uniform doubles in [0, 1), from pure-rand (never Math.random). */
export class Rng {
  private readonly gen;
  constructor(seed: number) {
    this.gen = xoroshiro128plus(fmix32(seed ^ 0x5bd1e995) | 0);
    uniformFloat64(this.gen); // the first draw of a fresh xoroshiro state is poorly mixed
  }
  /** Uniform in [0, 1). */
  next(): number {
    return uniformFloat64(this.gen);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.next() * n));
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

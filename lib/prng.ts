/**
 * The one seeded pseudo-random generator of the project (mulberry32): fast, 32 bits of state, and good
 * enough for test decisions, impairments and fuzzing. Not for secrets. The same seed gives the same
 * sequence everywhere, so a failure reported with its seed replays exactly.
 *
 * @module
 */

/** A seedable PRNG (mulberry32). */
export class Prng {
  #state: number;

  /** Seeds the generator (any number; only its low 32 bits count). */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The next unsigned 32-bit value. */
  nextU32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** A whole number in [0, n) for n ≥ 1 (n up to 2^32). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextU32() & 0xff;
    return out;
  }

  /** 16 random bytes (e.g. an ISN secret, RFC 6528). */
  bytes16(): Uint8Array {
    return this.bytes(16);
  }
}

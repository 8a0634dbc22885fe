/**
 * A token bucket driven by the caller's clock, used to rate-limit ICMP errors (RFC 1812 §4.3.2.8,
 * RFC 1122 §3.2.2: a host should limit the rate of the ICMP error messages it sends).
 *
 * @module
 */

/** A token bucket: `rate` tokens per second, holding at most `burst`. */
export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #updatedAt: number | null = null;

  /** Creates a full bucket. */
  constructor(ratePerSecond: number, burst: number) {
    this.#ratePerMs = ratePerSecond / 1000;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Takes one token if there is one at time `now` (milliseconds); returns whether it did. */
  take(now: number): boolean {
    if (this.#updatedAt !== null && now > this.#updatedAt) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updatedAt) * this.#ratePerMs);
    }
    this.#updatedAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Round-trip time estimation and the retransmission timeout (RFC 6298).
 *
 * @module
 */

/** SRTT/RTTVAR estimator with exponential backoff of the RTO. */
export class RttEstimator {
  /** Smoothed RTT in ms, or -1 before the first sample. */
  srtt: number = -1;
  /** RTT variation in ms. */
  rttvar = 0;
  /** Latest RTT sample in ms, or -1. */
  latest: number = -1;
  /** Smallest sample seen in ms (used by CUBIC), or Infinity. */
  minRtt: number = Infinity;
  /** Consecutive timeouts (the backoff exponent, RFC 6298 §5.5). */
  backoff = 0;
  #rto: number;
  readonly #minRto: number;
  readonly #maxRto: number;

  /** Creates an estimator with RFC 6298 §2.1's initial RTO (configurable) and bounds. */
  constructor(initialRto: number, minRto: number, maxRto: number) {
    this.#rto = initialRto;
    this.#minRto = minRto;
    this.#maxRto = maxRto;
  }

  /** Feeds one RTT measurement in ms (RFC 6298 §2.2–2.3, α = 1/8, β = 1/4, G = 1 ms, K = 4). */
  sample(rtt: number): void {
    if (!(rtt >= 0)) return;
    this.latest = rtt;
    if (rtt < this.minRtt) this.minRtt = rtt;
    if (this.srtt < 0) {
      this.srtt = rtt;
      this.rttvar = rtt / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
      this.srtt = 0.875 * this.srtt + 0.125 * rtt;
    }
    // RFC 6298 §2.4: RTO = max(RTO_MIN, SRTT + max(G, K·RTTVAR)); §2.5 upper bound.
    this.#rto = Math.min(this.#maxRto, Math.max(this.#minRto, this.srtt + Math.max(1, 4 * this.rttvar)));
    // RFC 6298 §5.7 leaves backoff until new data is acked; a fresh valid sample (Karn) resets it too.
    this.backoff = 0;
  }

  /** The RTO to arm now, backed off (RFC 6298 §5.5) and bounded by the maximum. */
  get rto(): number {
    return Math.min(this.#maxRto, this.#rto * 2 ** this.backoff);
  }

  /** The RTO before backoff. */
  get baseRto(): number {
    return this.#rto;
  }

  /** Sets the RTO used until the first sample (RFC 6298 §5.7) and clears the backoff. */
  resetInitial(rto: number): void {
    this.#rto = Math.min(this.#maxRto, Math.max(this.#minRto, rto));
    this.backoff = 0;
  }

  /** Records a timeout: doubles the next RTO (RFC 6298 §5.5). */
  onTimeout(): void {
    if (this.#rto * 2 ** this.backoff < this.#maxRto) this.backoff++;
  }
}

/**
 * NewReno window management (RFC 5681 slow start and congestion avoidance; RFC 6582 recovery is driven
 * by the connection, which calls {@link NewRenoCongestionControl.onCongestionEvent} once per episode).
 *
 * @module
 */

import type { CongestionControl } from "./congestion.ts";
import { INITIAL_WINDOW_SEGMENTS } from "./congestion.ts";

/** Classic AIMD: +1 SMSS per RTT in congestion avoidance, halve on loss. */
export class NewRenoCongestionControl implements CongestionControl {
  /** Always "newreno". */
  readonly name = "newreno" as const;
  /** Congestion window in bytes. */
  cwnd: number;
  /** Slow start threshold in bytes (initially arbitrarily high, RFC 5681 §3.1). */
  ssthresh: number = Number.MAX_SAFE_INTEGER;
  #mss: number;
  #bytesAcked = 0;

  /** Creates a controller with the initial window for `mss`. */
  constructor(mss: number) {
    this.#mss = mss;
    this.cwnd = INITIAL_WINDOW_SEGMENTS * mss;
  }

  /** See {@link CongestionControl.onAck}. */
  onAck(ackedBytes: number, _now: number, _srtt: number, cwndLimited: boolean): void {
    if (!cwndLimited) return;
    if (this.cwnd < this.ssthresh) {
      // Slow start, counting bytes (RFC 3465); overshoot past ssthresh is carried into avoidance.
      this.cwnd += ackedBytes;
      return;
    }
    // Congestion avoidance with byte counting (RFC 5681 §3.1, the recommended variant of eq. 3).
    this.#bytesAcked += ackedBytes;
    if (this.#bytesAcked >= this.cwnd) {
      this.#bytesAcked -= this.cwnd;
      this.cwnd += this.#mss;
    }
  }

  /** See {@link CongestionControl.onCongestionEvent}: ssthresh = max(FlightSize/2, 2·SMSS) (RFC 5681 eq. 4). */
  onCongestionEvent(_now: number, flightSize: number): void {
    this.#save();
    this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.#mss);
    this.cwnd = this.ssthresh;
    this.#bytesAcked = 0;
  }

  /** See {@link CongestionControl.onRetransmissionTimeout}. */
  onRetransmissionTimeout(_now: number, flightSize: number, firstInEpisode: boolean): void {
    if (firstInEpisode) this.#save();
    if (firstInEpisode) this.ssthresh = Math.max(Math.floor(flightSize / 2), 2 * this.#mss);
    this.cwnd = this.#mss;
    this.#bytesAcked = 0;
  }

  #savedCwnd = -1;
  #savedSsthresh = 0;

  #save(): void {
    this.#savedCwnd = this.cwnd;
    this.#savedSsthresh = this.ssthresh;
  }

  /** See {@link CongestionControl.undoReduction}. */
  undoReduction(): void {
    if (this.#savedCwnd < 0) return;
    this.cwnd = Math.max(this.cwnd, this.#savedCwnd);
    this.ssthresh = Math.max(this.ssthresh, this.#savedSsthresh);
    this.#savedCwnd = -1;
  }

  /** See {@link CongestionControl.onIdleRestart}. */
  onIdleRestart(_now: number): void {
    this.cwnd = Math.min(this.cwnd, INITIAL_WINDOW_SEGMENTS * this.#mss);
  }

  /** See {@link CongestionControl.setMss}. */
  setMss(mss: number): void {
    if (this.cwnd === INITIAL_WINDOW_SEGMENTS * this.#mss) this.cwnd = INITIAL_WINDOW_SEGMENTS * mss;
    this.#mss = mss;
  }
}

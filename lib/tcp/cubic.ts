/**
 * CUBIC congestion control (RFC 9438), the default, as in Linux.
 *
 * @module
 */

import type { CongestionControl } from "./congestion.ts";
import { INITIAL_WINDOW_SEGMENTS } from "./congestion.ts";

/** RFC 9438 §4.6 β_cubic. */
export const CUBIC_BETA = 0.7;
/** RFC 9438 §5 C (segments / s³). */
export const CUBIC_C = 0.4;
/** RFC 9438 §4.3 α_cubic = 3(1 − β)/(1 + β). */
const ALPHA_CUBIC = (3 * (1 - CUBIC_BETA)) / (1 + CUBIC_BETA);

/** CUBIC window growth with the Reno-friendly region and fast convergence. */
export class CubicCongestionControl implements CongestionControl {
  /** Always "cubic". */
  readonly name = "cubic" as const;
  /** Congestion window in bytes. */
  cwnd: number;
  /** Slow start threshold in bytes. */
  ssthresh: number = Number.MAX_SAFE_INTEGER;
  /** W_max in segments: the window before the last reduction (RFC 9438 §4.1). */
  wMax = 0;
  /** K in seconds (RFC 9438 eq. 2). */
  k = 0;
  #mss: number;
  #epochStart = -1;
  #wEst = 0;

  /** Creates a controller with the initial window for `mss`. */
  constructor(mss: number) {
    this.#mss = mss;
    this.cwnd = INITIAL_WINDOW_SEGMENTS * mss;
  }

  /** See {@link CongestionControl.onAck}. */
  onAck(ackedBytes: number, now: number, srtt: number, cwndLimited: boolean): void {
    if (!cwndLimited) return;
    const mss = this.#mss;
    if (this.cwnd < this.ssthresh) {
      this.cwnd += ackedBytes; // slow start (RFC 9438 §4.10 keeps standard slow start)
      return;
    }
    const cwndSegments = this.cwnd / mss;
    if (this.#epochStart < 0) {
      // RFC 9438 §4.2: a new congestion avoidance epoch.
      this.#epochStart = now;
      if (cwndSegments < this.wMax) {
        this.k = Math.cbrt((this.wMax - cwndSegments) / CUBIC_C);
      } else {
        this.k = 0;
        this.wMax = cwndSegments;
      }
      this.#wEst = cwndSegments;
    }
    const rtt = srtt > 0 ? srtt / 1000 : 0.1;
    const t = (now - this.#epochStart) / 1000;
    // RFC 9438 eq. 1 evaluated one RTT ahead, clamped to [cwnd, 1.5·cwnd] (§4.2).
    const d = t + rtt - this.k;
    let target = CUBIC_C * d * d * d + this.wMax;
    if (target < cwndSegments) target = cwndSegments;
    if (target > 1.5 * cwndSegments) target = 1.5 * cwndSegments;
    const ackedSegments = ackedBytes / mss;
    // RFC 9438 §4.3: the Reno-friendly estimate; α becomes 1 once W_est passes W_max.
    const alpha = this.#wEst >= this.wMax ? 1 : ALPHA_CUBIC;
    this.#wEst += alpha * ackedSegments / cwndSegments;
    let next: number;
    if (this.#wEst > target) {
      next = this.#wEst; // Reno-friendly region (§4.3)
    } else {
      next = cwndSegments + ((target - cwndSegments) / cwndSegments) * ackedSegments; // §4.4/§4.5
    }
    this.cwnd = Math.max(this.cwnd, Math.floor(next * mss));
  }

  #reduce(): void {
    this.#savedCwnd = this.cwnd;
    this.#savedSsthresh = this.ssthresh;
    this.#savedWMax = this.wMax;
    const cwndSegments = this.cwnd / this.#mss;
    // RFC 9438 §4.7 fast convergence.
    this.wMax = cwndSegments < this.wMax ? cwndSegments * (1 + CUBIC_BETA) / 2 : cwndSegments;
    this.ssthresh = Math.max(Math.floor(this.cwnd * CUBIC_BETA), 2 * this.#mss);
    this.#epochStart = -1;
  }

  /** See {@link CongestionControl.onCongestionEvent} (RFC 9438 §4.6: ssthresh = cwnd·β). */
  onCongestionEvent(_now: number, _flightSize: number): void {
    this.#reduce();
    this.cwnd = this.ssthresh;
  }

  /** See {@link CongestionControl.onRetransmissionTimeout} (RFC 9438 §4.8). */
  onRetransmissionTimeout(_now: number, _flightSize: number, firstInEpisode: boolean): void {
    if (firstInEpisode) this.#reduce();
    this.cwnd = this.#mss;
  }

  #savedCwnd = -1;
  #savedSsthresh = 0;
  #savedWMax = 0;

  /** See {@link CongestionControl.undoReduction} (Linux's cubic undo restores W_max as well). */
  undoReduction(): void {
    if (this.#savedCwnd < 0) return;
    this.cwnd = Math.max(this.cwnd, this.#savedCwnd);
    this.ssthresh = Math.max(this.ssthresh, this.#savedSsthresh);
    this.wMax = this.#savedWMax;
    this.#epochStart = -1;
    this.#savedCwnd = -1;
  }

  /** See {@link CongestionControl.onIdleRestart}. */
  onIdleRestart(_now: number): void {
    this.cwnd = Math.min(this.cwnd, INITIAL_WINDOW_SEGMENTS * this.#mss);
    this.#epochStart = -1;
  }

  /** See {@link CongestionControl.setMss}. */
  setMss(mss: number): void {
    if (this.cwnd === INITIAL_WINDOW_SEGMENTS * this.#mss) this.cwnd = INITIAL_WINDOW_SEGMENTS * mss;
    this.#mss = mss;
  }
}

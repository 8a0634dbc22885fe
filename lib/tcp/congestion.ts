/**
 * The congestion control interface (RFC 5681 vocabulary: cwnd, ssthresh, FlightSize); the factory
 * choosing an implementation by name is in congestion_factory.ts (so the implementations, which import
 * this interface, form no cycle with it). Loss detection and recovery stay in the sender
 * (sender.ts); controllers
 * only decide window sizes.
 *
 * @module
 */

import type { CongestionControlName } from "./config.ts";

/** Initial window in segments (RFC 6928 IW10, as Linux). */
export const INITIAL_WINDOW_SEGMENTS = 10;

/** A congestion controller; all sizes in bytes, times in ms of the connection's clock. */
export interface CongestionControl {
  /** Which algorithm. */
  readonly name: CongestionControlName;
  /** Congestion window in bytes. */
  readonly cwnd: number;
  /** Slow start threshold in bytes. */
  readonly ssthresh: number;
  /**
   * New data was cumulatively acknowledged outside fast recovery. `cwndLimited` says whether the
   * sender was using its window (RFC 7661: do not grow an unused window); `srtt` is in ms (−1 unknown).
   */
  onAck(ackedBytes: number, now: number, srtt: number, cwndLimited: boolean): void;
  /** Loss detected by duplicate ACKs or SACK: reduce (RFC 5681 §3.2 step 2, RFC 9438 §4.6). */
  onCongestionEvent(now: number, flightSize: number): void;
  /**
   * The retransmission timer expired (RFC 5681 §3.1 eq. 4: cwnd = loss window = 1 SMSS). ssthresh is
   * reduced only for the first timeout of an episode (`firstInEpisode`): when a retransmission is lost
   * again it is held (RFC 5681 §3.1, after eq. 4).
   */
  onRetransmissionTimeout(now: number, flightSize: number, firstInEpisode: boolean): void;
  /**
   * The last reduction (congestion event or timeout) proved spurious (RFC 3522 Eifel detection, RFC 4015
   * response): return to the state before it.
   */
  undoReduction(): void;
  /**
   * The sender was idle for more than an RTO (RFC 5681 §4.1): restart from at most the initial window,
   * since the ACK clock is gone.
   */
  onIdleRestart(now: number): void;
  /** Changes the segment size (after option negotiation). */
  setMss(mss: number): void;
}

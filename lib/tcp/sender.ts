/**
 * The send side of a TCP connection: the send sequence variables (RFC 9293 §3.3.1), the send buffer,
 * segmentation (Nagle, sender SWS avoidance, TSO super-segments), ACK processing, loss recovery — RFC
 * 6675 (SACK) or RFC 6582 (NewReno) with lost-retransmission detection and Eifel undo (RFC 3522/4015) —
 * the retransmission timer (RFC 6298), tail loss probes (RFC 8985 §7), the persist timer (RFC 9293
 * §3.8.6.1) and the hand-off to a {@link CongestionControl}. The connection runs the state machine and
 * tells the sender which ACKs are acceptable; the sender decides what to (re)send.
 *
 * @module
 */

import type { Ipv4Sink } from "../iface/protocol.ts";
import { IPV4_HEADER_LENGTH } from "../wire/ipv4.ts";
import { TcpFlags, type TcpOptions } from "../wire/tcp.ts";
import type { TcpConfig } from "./config.ts";
import type { CongestionControl } from "./congestion.ts";
import { createCongestionControl } from "./congestion_factory.ts";
import type { PayloadSource, SegmentEmitter } from "./emitter.ts";
import { RttEstimator } from "./rtt.ts";
import { NO_RETRANSMISSIONS, RetransmissionLog } from "./retransmission_log.ts";
import { DUP_THRESH, NO_SACKS, SackScoreboard } from "./sack_scoreboard.ts";
import { SendBuffer } from "./send_buffer.ts";
import { type MemoryBudget, UNBOUNDED_BUDGET } from "./memory_budget.ts";
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from "./seq.ts";
import type { TcpConnectionStats, TcpState } from "./state.ts";
import type { TcpStats } from "./stats.ts";

/** RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK time assumed of the peer. */
const WORST_CASE_DELAYED_ACK_MS = 200;
/** Floor of the probe timeout (Linux's TCP_TIMEOUT_MIN is 2 ms; 10 ms leaves room for jitter). */
const MIN_PTO_MS = 10;

/** Largest TSO payload: a 65 535-byte IPv4 packet minus IPv4 and maximal TCP headers. */
const MAX_TSO_PAYLOAD = 65535 - IPV4_HEADER_LENGTH - 60;

/** Loss recovery phase of a {@link TcpSender}. */
export const enum Recovery {
  /** Not recovering. */
  None = 0,
  /** Fast retransmit / fast recovery (RFC 5681 §3.2, RFC 6582, RFC 6675). */
  Fast = 1,
  /** Loss recovery after a retransmission timeout (RFC 6298 §5, RFC 5681 §3.1). */
  Timeout = 2,
}

/** Bits returned by {@link TcpSender.processAck}. */
export const AckResult = {
  /** Send buffer space was freed. */
  FREED: 1,
  /** Our FIN is acknowledged. */
  FIN_ACKED: 2,
} as const;

/** Send sequence space, send buffer, loss recovery and send-side timers of one connection. */
export class TcpSender implements PayloadSource {
  /** Initial send sequence number (ISS). */
  iss = 0;
  /** Oldest unacknowledged sequence number (SND.UNA). */
  sndUna = 0;
  /** Next new sequence number to send (SND.NXT: the highest sequence sent + 1). */
  sndNxt = 0;
  /** Send window (scaled) offered by the peer (SND.WND). */
  sndWnd = 0;
  /** Largest window the peer offered (for SWS avoidance and the RFC 5961 §5.2 ACK check). */
  maxSndWnd = 0;
  /** Shift applied to windows the peer sends (RFC 7323 §2.3), 0 without scaling. */
  sndScale = 0;
  /** Whether timestamps are in use (RFC 7323 §3.2). */
  timestamps = false;
  /** Whether SACK is in use (RFC 2018). */
  sack = false;
  /** Payload bytes per full-size segment we send (effective MSS minus option space). */
  sendMss = 536;
  /** Disables Nagle's algorithm (RFC 9293 §3.7.4) when true. */
  noDelay: boolean;
  /** Whether a FIN follows the buffered data (shutdown or close was requested). */
  finQueued = false;
  /** Whether the FIN was sent (it then occupies {@link finSeq}). */
  finSent = false;
  /** Sequence number of our FIN once sent. */
  finSeq = 0;
  /** Consecutive retransmission timeouts (RFC 6298 §5.5 backoff; the give-up count). */
  retries = 0;
  /** Retransmission timer deadline (Infinity when stopped). */
  rtoDeadline = Infinity;
  /** Tail loss probe deadline. */
  ptoDeadline = Infinity;
  /** Persist (zero-window probe) timer deadline. */
  persistDeadline = Infinity;
  /** Current loss recovery phase. */
  recovery: Recovery = Recovery.None;
  /** RTT estimator and RTO (RFC 6298). */
  readonly rtt: RttEstimator;
  /** Congestion controller. */
  readonly congestion: CongestionControl;
  /** Bytes queued by the application and not yet acknowledged. */
  readonly buffer: SendBuffer;
  /**
   * What the peer SACKed (RFC 6675 §4 scoreboard): the shared empty {@link NO_SACKS} until the first
   * SACK block arrives (an idle or loss-free connection owns none).
   */
  scoreboard: SackScoreboard = NO_SACKS;

  #sndWl1 = 0;
  #sndWl2 = 0;
  /** Sequence number of the first byte in the send buffer. */
  #sndBufSeq = 0;
  #tsOffset = 0;
  #persistBackoff = 0;
  #probesUnanswered = 0;
  #rttSeq = 0;
  #rttTime = -1;
  #recoveryPoint = 0;
  #recoveryFence = 0;
  #highRxt = 0;
  #lossBoundary = 0;
  #dupAcks = 0;
  #renoSacked = 0;
  #forceRetransmit = false;
  #rescueDone = false;
  /** Retransmissions of this recovery: the shared empty {@link NO_RETRANSMISSIONS} until the first. */
  #rtxLog: RetransmissionLog = NO_RETRANSMISSIONS;
  #smallSegmentEnd = 0;
  #lastDataSent = -1;
  /** Our TSval when the current recovery's first retransmission went out, or −1 (Eifel detection). */
  #recoveryTsVal = -1;
  #probeOutstanding = false;
  #probeSeq = 0;
  #ackAdvanced = false;
  #cwndLimited = false;
  readonly #config: TcpConfig;
  readonly #stats: TcpStats;
  readonly #emitter: SegmentEmitter;

  /** The connection's own scoreboard, made at the first SACK block. */
  #ownScoreboard(): SackScoreboard {
    if (this.scoreboard === NO_SACKS) this.scoreboard = new SackScoreboard();
    return this.scoreboard;
  }

  /** A sender sized by `config` that emits through `emitter` (and becomes its payload source). */
  constructor(
    config: TcpConfig,
    stats: TcpStats,
    emitter: SegmentEmitter,
    budget: MemoryBudget = UNBOUNDED_BUDGET,
  ) {
    this.#config = config;
    this.#stats = stats;
    this.#emitter = emitter;
    emitter.source = this;
    this.noDelay = config.noDelay;
    this.buffer = new SendBuffer(config.sendBufferSize, budget);
    this.rtt = new RttEstimator(config.rtoInitialMs, config.rtoMinMs, config.rtoMaxMs);
    this.congestion = createCongestionControl(config.congestionControl, 536);
  }

  /** Starts every send-side sequence variable at `iss`, with `tsOffset` added to our timestamps. */
  start(iss: number, tsOffset: number): void {
    this.iss = iss;
    this.#tsOffset = tsOffset;
    this.sndUna = iss;
    this.sndNxt = iss;
    this.#sndBufSeq = seqAdd(iss, 1);
    this.#recoveryFence = iss;
    this.#smallSegmentEnd = iss;
  }

  /** Our TSval at `now` (RFC 7323 §4.1: a per-connection offset plus a 1 ms clock). */
  tsNow(now: number): number {
    return (Math.floor(now) + this.#tsOffset) >>> 0;
  }

  /** See {@link PayloadSource.copyPayload}. */
  copyPayload(seq: number, into: Uint8Array, offset: number, length: number): void {
    this.buffer.copyOut((seq - this.#sndBufSeq) >>> 0, into, offset, length);
  }

  /** Takes the peer's window from a segment of the handshake (SND.WL1/WL2 of RFC 9293 §3.10.7). */
  setWindow(window: number, wl1: number, wl2: number): void {
    this.sndWnd = window;
    if (window > this.maxSndWnd) this.maxSndWnd = window;
    this.#sndWl1 = wl1;
    this.#sndWl2 = wl2;
  }

  /** The peer's SYN,ACK acknowledged our SYN (RFC 9293 §3.10.7.3 fourth): samples the RTT. */
  onSynAcked(ack: number, opts: TcpOptions, now: number): void {
    this.#takeRttSample(ack, opts, now);
    this.sndUna = ack;
    this.rtoDeadline = Infinity;
  }

  /** The handshake completed. */
  onEstablished(): void {
    // RFC 6298 §5.7: if the handshake needed a retransmission and gave no RTT sample, start data
    // transfer with a 3 s RTO.
    if (this.retries > 0 && this.rtt.srtt < 0) this.rtt.resetInitial(3000);
    this.retries = 0;
  }

  /** Whether `ack` acknowledges something not yet sent (RFC 9293 §3.10.7.4 fifth). */
  ackTooNew(ack: number): boolean {
    return seqGt(ack, this.sndNxt);
  }

  /** RFC 5961 §5.2: whether `ack` lies more than the largest window behind SND.UNA. */
  ackTooOld(ack: number): boolean {
    return seqLt(ack, seqAdd(this.sndUna, -Math.max(this.maxSndWnd, 1)));
  }

  /** Bytes queued and not yet sent. */
  unsentBytes(): number {
    if (this.finSent) return 0;
    return (seqAdd(this.#sndBufSeq, this.buffer.length) - this.sndNxt) | 0;
  }

  /** Nothing more will be sent: frees the stores and stops the timers. */
  release(clearScoreboard: boolean): void {
    this.buffer.release();
    if (clearScoreboard) this.scoreboard.clear();
    this.rtoDeadline = Infinity;
    this.ptoDeadline = Infinity;
    this.persistDeadline = Infinity;
  }

  /** A snapshot for status output, completed with the connection's `state` and receive side. */
  stats(state: TcpState, rcvWnd: number, outOfOrderRanges: number): TcpConnectionStats {
    const recovery = this.recovery;
    return {
      state,
      recovery: recovery === Recovery.None ? "none" : recovery === Recovery.Fast ? "fast" : "timeout",
      cwnd: this.congestion.cwnd,
      ssthresh: this.congestion.ssthresh,
      pipe: this.pipe(),
      flight: (this.sndNxt - this.sndUna) >>> 0,
      sackedBytes: this.scoreboard.sackedBytes,
      unsent: this.unsentBytes(),
      sndWnd: this.sndWnd,
      rcvWnd,
      srtt: this.rtt.srtt,
      rto: this.rtt.rto,
      retries: this.retries,
      outOfOrderRanges,
    };
  }

  // ───────────────────────────── ACK processing ─────────────────────────────

  #takeRttSample(ack: number, opts: TcpOptions, now: number): void {
    if (this.timestamps && opts.hasTimestamps && opts.tsEcr !== 0) {
      // RFC 7323 §4.1: RTTM from the echoed timestamp (valid across retransmissions).
      const sample = (this.tsNow(now) - opts.tsEcr) | 0;
      if (sample >= 0 && sample < 3_600_000) {
        this.rtt.sample(sample);
        this.#rttTime = -1;
        return;
      }
    }
    if (this.#rttTime >= 0 && seqGt(ack, this.#rttSeq)) {
      // Karn: #rttTime is cleared whenever the timed segment is retransmitted.
      this.rtt.sample(now - this.#rttTime);
      this.#rttTime = -1;
    }
  }

  /**
   * Processes the acceptable ACK field `ack` of a segment with window field `windowField` (RFC 9293 §3.10.7.4 fifth): new data
   * acknowledged, duplicate ACKs and SACK information, entering and leaving loss recovery. `dataLength`
   * and `fin` describe the segment's (trimmed) text, which makes an ACK not a duplicate. Returns
   * {@link AckResult} bits; then call {@link updateWindow} unless the connection closed.
   */
  processAck(
    windowField: number,
    opts: TcpOptions,
    ack: number,
    dataLength: number,
    fin: boolean,
    now: number,
  ): number {
    const mss = this.sendMss;
    const window = windowField << this.sndScale;
    const acked = (ack - this.sndUna) | 0;
    let result = 0;
    // Any acceptable ACK shows the peer is alive (Linux resets probes_out here).
    this.#probesUnanswered = 0;

    if (acked > 0) {
      this.#takeRttSample(ack, opts, now);
      const flightBefore = (this.sndNxt - this.sndUna) | 0;
      // Data bytes acknowledged (the SYN and FIN occupy sequence space but not the buffer).
      const bufferAcked = seqGt(ack, this.#sndBufSeq)
        ? Math.min((ack - this.#sndBufSeq) >>> 0, this.buffer.length)
        : 0;
      if (bufferAcked > 0) {
        this.buffer.consume(bufferAcked);
        this.#sndBufSeq = seqAdd(this.#sndBufSeq, bufferAcked);
        result |= AckResult.FREED;
      }
      this.sndUna = ack;
      this.retries = 0;
      this.#ackAdvanced = true;
      this.#probeOutstanding = false;
      if (this.sack) this.scoreboard.advance(ack);
      if (this.sack && opts.sackBlockCount > 0) {
        this.#ownScoreboard().update(opts.sackBlocks, opts.sackBlockCount, this.sndUna, this.sndNxt);
      }
      if (
        this.recovery !== Recovery.None && this.#recoveryTsVal >= 0 && opts.hasTimestamps &&
        opts.tsEcr !== 0 && seqLt(opts.tsEcr, this.#recoveryTsVal)
      ) {
        // RFC 3522 (Eifel): the first ACK for the retransmitted data echoes a timestamp older than the
        // retransmission, so an original transmission arrived: the fast retransmit was spurious
        // (reordering). Undo the reduction (RFC 4015) and leave recovery.
        this.#stats.spuriousRecoveries++;
        this.congestion.undoReduction();
        this.recovery = Recovery.None;
        this.#dupAcks = 0;
        this.#renoSacked = 0;
        this.#rtxLog.clear();
        this.#recoveryFence = this.sndUna;
      }
      this.#recoveryTsVal = this.recovery === Recovery.None ? -1 : this.#recoveryTsVal;
      this.#onNewAck(ack, acked, mss, flightBefore, now);
      // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
      this.rtoDeadline = this.sndUna === this.sndNxt ? Infinity : now + this.rtt.rto;
      if (this.finSent && seqGt(ack, this.finSeq)) result |= AckResult.FIN_ACKED;
    } else if (acked === 0 && this.sndUna !== this.sndNxt) {
      // RFC 5681 §2 duplicate ACK: no data, no window change, outstanding data. RFC 6675: or new SACK info.
      let newlySacked = 0;
      if (this.sack && opts.sackBlockCount > 0) {
        newlySacked = this.#ownScoreboard().update(
          opts.sackBlocks,
          opts.sackBlockCount,
          this.sndUna,
          this.sndNxt,
        );
      }
      const duplicate = dataLength === 0 && !fin && window === this.sndWnd;
      if (duplicate || newlySacked > 0) this.#onDuplicateAck(duplicate, mss, now);
    }
    return result;
  }

  /** Recovery bookkeeping and the congestion hand-off for an ACK of `acked` new bytes. */
  #onNewAck(ack: number, acked: number, mss: number, flightBefore: number, now: number): void {
    const endedFastRecovery = this.recovery === Recovery.Fast && seqGe(ack, this.#recoveryPoint);
    if (this.recovery !== Recovery.None && seqGe(ack, this.#recoveryPoint)) {
      // Full acknowledgment: recovery ends (RFC 6582 §3.2 step 3, RFC 6675 §5).
      this.recovery = Recovery.None;
      this.#dupAcks = 0;
      this.#renoSacked = 0;
    } else if (this.recovery === Recovery.Fast) {
      // Partial acknowledgment.
      if (!this.sack) {
        // RFC 6582 §3.2 step 5: retransmit the first unacknowledged segment; deflate.
        this.#highRxt = ack;
        this.#lossBoundary = seqMin(seqAdd(ack, mss), this.sndNxt);
        this.#renoSacked = Math.max(0, this.#renoSacked - Math.max(0, acked - mss));
        this.#forceRetransmit = true;
      } else {
        this.#lossBoundary = seqMax(this.#lossBoundary, this.scoreboard.lossBoundary(ack, mss));
      }
    } else if (this.recovery === Recovery.Timeout) {
      if (this.sack) {
        this.#lossBoundary = seqMax(this.#lossBoundary, this.scoreboard.lossBoundary(ack, mss));
      }
    }
    if (this.recovery !== Recovery.Fast && !endedFastRecovery) {
      // The ACK ending fast recovery leaves cwnd at ssthresh (RFC 6582 §3.2 step 3, RFC 6675 §5).
      this.congestion.onAck(
        acked,
        now,
        this.rtt.srtt,
        this.#cwndLimited || flightBefore >= this.congestion.cwnd,
      );
      this.#dupAcks = 0;
    }
  }

  /** A duplicate ACK (`duplicate`) or one with new SACK information arrived. */
  #onDuplicateAck(duplicate: boolean, mss: number, now: number): void {
    if (this.recovery === Recovery.None) {
      this.#dupAcks++;
      // The probe was delivered while everything sent before it is still missing: that was lost
      // (RACK's "sent earlier than a delivered segment" rule, RFC 8985 §6.2, for the probe only).
      const probeDelivered = this.#probeOutstanding && this.sack &&
        seqGt(this.#probeSeq, this.sndUna) && this.scoreboard.isSacked(this.#probeSeq);
      const lostBySack = this.sack &&
        (probeDelivered || this.scoreboard.lossBoundary(this.sndUna, mss) !== this.sndUna);
      // RFC 6582 §3.2 step 1 / RFC 6675 §5 step 4: only once per window of data (the "recover" fence).
      if ((this.#dupAcks >= this.#dupThreshold() || lostBySack) && seqGe(this.sndUna, this.#recoveryFence)) {
        this.#enterFastRecovery(now);
      }
    } else if (this.recovery === Recovery.Fast) {
      if (this.sack) {
        this.#lossBoundary = seqMax(this.#lossBoundary, this.scoreboard.lossBoundary(this.sndUna, mss));
      } else if (duplicate) {
        // RFC 6582 §3.2 step 4: each further duplicate means a segment left the network.
        this.#renoSacked = Math.min((this.sndNxt - this.sndUna) >>> 0, this.#renoSacked + mss);
      }
    } else if (this.sack) {
      this.#lossBoundary = seqMax(this.#lossBoundary, this.scoreboard.lossBoundary(this.sndUna, mss));
    }
  }

  /**
   * The rest of ACK processing after {@link processAck}: lost-retransmission detection and the window
   * update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)).
   */
  updateWindow(windowField: number, seq: number, ack: number): void {
    if (this.recovery === Recovery.Fast && this.sack) {
      this.#rtxLog.detect(this.sndUna, this.scoreboard, this.sendMss);
    }
    const window = windowField << this.sndScale;
    if (seqLt(this.#sndWl1, seq) || (this.#sndWl1 === seq && seqLe(this.#sndWl2, ack))) {
      const opened = window > this.sndWnd;
      this.sndWnd = window;
      this.#sndWl1 = seq;
      this.#sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      if (window > 0 && opened) {
        this.persistDeadline = Infinity;
        this.#persistBackoff = 0;
      }
    }
  }

  /** Logs a retransmission in fast recovery with SACK, for lost-retransmission detection. */
  #recordRetransmission(start: number, end: number): void {
    if (this.recovery === Recovery.Fast && this.sack) {
      if (this.#rtxLog === NO_RETRANSMISSIONS) this.#rtxLog = new RetransmissionLog();
      this.#rtxLog.record(start, end, this.sndNxt);
    }
  }

  /**
   * The duplicate-ACK threshold: DupThresh, lowered by Early Retransmit (RFC 5827 §3.1) to one less than
   * the outstanding segments when fewer than four are outstanding and no new data can be sent (so too
   * few duplicate ACKs could ever arrive). Only with SACK (RFC 5827 §3.2's conservative variant).
   */
  #dupThreshold(): number {
    if (!this.sack) return DUP_THRESH;
    const mss = this.sendMss;
    const outstanding = Math.ceil(((this.sndNxt - this.sndUna) >>> 0) / mss);
    if (outstanding >= 4) return DUP_THRESH;
    const unsent = this.unsentBytes();
    const room = (seqAdd(this.sndUna, this.sndWnd) - this.sndNxt) | 0;
    if (unsent > 0 && room >= Math.min(unsent, mss)) return DUP_THRESH;
    return Math.max(1, outstanding - 1);
  }

  #enterFastRecovery(now: number): void {
    this.ptoDeadline = Infinity;
    this.#recoveryTsVal = this.timestamps ? this.tsNow(now) : -1;
    this.#rtxLog.clear();
    const mss = this.sendMss;
    this.#stats.fastRecoveries++;
    this.recovery = Recovery.Fast;
    this.#recoveryPoint = this.sndNxt;
    this.#recoveryFence = this.sndNxt;
    this.congestion.onCongestionEvent(now, (this.sndNxt - this.sndUna) >>> 0);
    this.#highRxt = this.sndUna;
    let boundary = seqMin(seqAdd(this.sndUna, mss), this.sndNxt);
    if (this.sack) boundary = seqMax(boundary, this.scoreboard.lossBoundary(this.sndUna, mss));
    if (this.#probeOutstanding && this.sack && this.scoreboard.isSacked(this.#probeSeq)) {
      boundary = seqMax(boundary, this.#probeSeq); // everything sent before the delivered probe
    }
    this.#lossBoundary = boundary;
    this.#renoSacked = this.sack ? 0 : Math.min(DUP_THRESH * mss, (this.sndNxt - this.sndUna) >>> 0);
    this.#forceRetransmit = true; // RFC 6675 §5 step 4.3 / RFC 5681 §3.2 step 2: retransmit now
    this.#rescueDone = false;
    this.#probeOutstanding = false;
    this.#rttTime = -1; // Karn
  }

  /** RFC 6675 §4 pipe: bytes presumed in the network. */
  pipe(): number {
    const outstanding = (this.sndNxt - this.sndUna) >>> 0;
    const sack = this.sack;
    if (this.recovery === Recovery.None) {
      // Outside recovery SACKed (or duplicate-ACKed) bytes have left the network: this is limited
      // transmit (RFC 3042) generalised, as Linux's packets_in_flight.
      const left = sack ? this.scoreboard.sackedBytes : Math.min(this.#dupAcks, 2) * this.sendMss;
      return Math.max(0, outstanding - left);
    }
    const sacked = sack ? this.scoreboard.sackedBytes : this.#renoSacked;
    const from = seqMax(this.#highRxt, this.sndUna);
    const lostNotRetransmitted = sack
      ? this.scoreboard.unsackedBytes(from, this.#lossBoundary)
      : Math.max(0, (this.#lossBoundary - from) | 0);
    return Math.max(0, outstanding - sacked - lostNotRetransmitted);
  }

  // ───────────────────────────── timers ─────────────────────────────

  /**
   * The retransmission timer expired (RFC 6298 §5.4–5.6). Returns false when the retry limit is
   * exceeded (the connection then times out). During the handshake (`handshake`) only the backoff is
   * applied; the connection resends its SYN.
   */
  onRetransmissionTimeout(now: number, handshake: boolean): boolean {
    const config = this.#config;
    this.#stats.rtoExpirations++;
    this.rtoDeadline = Infinity;
    this.ptoDeadline = Infinity;
    this.#probeOutstanding = false;
    this.retries++;
    if (this.retries > (handshake ? config.maxSynRetries : config.maxRetries)) return false;
    this.rtt.onTimeout(); // RFC 6298 §5.5
    this.#rttTime = -1; // Karn
    if (handshake || this.sndUna === this.sndNxt) return true;
    const first = this.recovery !== Recovery.Timeout;
    this.congestion.onRetransmissionTimeout(now, (this.sndNxt - this.sndUna) >>> 0, first);
    // RFC 2018 §8: after repeated timeouts, stop trusting SACK information (the receiver may renege).
    if (!first) this.scoreboard.clear();
    // Timeouts are not undone by Eifel detection: restoring the window after a spurious RTO made
    // transfers under heavy random loss slower in the simulation (mean 13.2 s vs 9.7 s, 80 seeds).
    this.#recoveryTsVal = -1;
    this.recovery = Recovery.Timeout;
    this.#recoveryPoint = this.sndNxt;
    this.#recoveryFence = this.sndNxt;
    this.#highRxt = this.sndUna;
    this.#lossBoundary = this.sndNxt; // everything outstanding and not SACKed is presumed lost
    this.#dupAcks = 0;
    this.#renoSacked = 0;
    this.#forceRetransmit = true; // RFC 6298 §5.4: retransmit the earliest unacknowledged segment
    return true;
  }

  /**
   * Arms the tail loss probe (RFC 8985 §7.2): PTO = 2·SRTT, plus a worst-case delayed-ACK time when
   * one segment is outstanding, and never after the RTO. Only outside recovery, with SACK, and once per
   * flight until an ACK advances.
   */
  #armProbe(now: number): void {
    this.ptoDeadline = Infinity;
    if (this.recovery !== Recovery.None || !this.sack || this.#probeOutstanding) return;
    const flight = (this.sndNxt - this.sndUna) >>> 0;
    if (flight === 0 || this.rtt.srtt < 0) return;
    let pto = 2 * this.rtt.srtt;
    if (flight <= this.sendMss) pto += WORST_CASE_DELAYED_ACK_MS;
    pto = Math.max(pto, MIN_PTO_MS);
    const deadline = now + pto;
    if (deadline < this.rtoDeadline) this.ptoDeadline = deadline;
  }

  /**
   * The probe timeout fired (RFC 8985 §7.3): send one new segment if the windows allow, else retransmit
   * the last segment, so that the peer's (S)ACK reveals a lost tail to fast recovery instead of an RTO.
   * `sending` says whether the connection's state sends data.
   */
  onProbeTimeout(now: number, out: Ipv4Sink, sending: boolean): void {
    this.ptoDeadline = Infinity;
    if (this.recovery !== Recovery.None || this.sndUna === this.sndNxt || !sending) return;
    const mss = this.sendMss;
    const unsent = this.unsentBytes();
    const room = (seqAdd(this.sndUna, this.sndWnd) - this.sndNxt) | 0;
    let probed = false;
    if (unsent > 0 && room > 0) {
      const before = this.sndNxt;
      probed = this.#sendNewData(now, out, Math.min(unsent, mss, room));
      this.#probeSeq = before;
    }
    if (!probed) {
      const dataEnd = seqAdd(this.#sndBufSeq, this.buffer.length);
      const end = this.finSent ? this.finSeq : this.sndNxt;
      const seq = seqMax(this.sndUna, seqAdd(seqMin(end, dataEnd), -mss));
      const length = Math.max(0, (seqMin(end, dataEnd) - seq) | 0);
      const fin = this.finSent;
      if (length === 0 && !fin) return;
      this.#emitter.emit(out, now, seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0), length, true);
      this.#stats.retransmissions++;
      this.#probeSeq = seq;
    }
    this.#stats.tailLossProbes++;
    this.#probeOutstanding = true;
    this.rtoDeadline = now + this.rtt.rto; // RFC 8985 §7.3: the RTO follows the probe
  }

  /**
   * The persist timer fired (RFC 9293 §3.8.6.1): probe the peer's zero window, or send what fits a
   * window too small for SWS avoidance. Returns false when too many probes went unanswered (the
   * connection then times out). `sending` says whether the connection's state sends data.
   */
  onPersistTimeout(now: number, out: Ipv4Sink, sending: boolean): boolean {
    this.persistDeadline = Infinity;
    if (!sending) return true;
    if (this.#probesUnanswered >= this.#config.maxRetries) return false;
    const unsent = this.unsentBytes();
    const usable = (this.sndUna + this.sndWnd - this.sndNxt) | 0;
    if (unsent > 0 && usable > 0 && this.sndUna === this.sndNxt) {
      // The window is open but too small for the sender SWS rules: the override timer fired
      // (RFC 9293 §3.8.6.2.1), send what fits.
      this.#sendNewData(now, out, Math.min(unsent, usable, this.#sendSegmentLimit(out)));
    } else {
      // RFC 9293 §3.8.6.1 zero-window probe, in Linux's form: an old sequence number that forces an ACK.
      this.#stats.windowProbes++;
      this.#emitter.emit(out, now, seqAdd(this.sndUna, -1), TcpFlags.ACK, 0, false);
    }
    this.#probesUnanswered++;
    this.#persistBackoff++;
    return true;
  }

  // ───────────────────────────── output ─────────────────────────────

  /** Sends our SYN (or SYN,ACK with `withAck`) and arms the retransmission timer. */
  sendSyn(now: number, out: Ipv4Sink, withAck: boolean): void {
    // Time the SYN (Karn: only the first transmission) in case timestamps are not negotiated.
    if (this.retries === 0) {
      this.#rttSeq = this.iss;
      this.#rttTime = now;
    }
    this.#emitter.emit(out, now, this.iss, TcpFlags.SYN | (withAck ? TcpFlags.ACK : 0), 0, false);
    this.sndNxt = seqAdd(this.iss, 1);
    if (this.rtoDeadline === Infinity) this.rtoDeadline = now + this.rtt.rto;
  }

  /**
   * Sends what a synchronized state allows: lost retransmissions, new data, RFC 6675 rules 3–4, and
   * arms the probe and persist timers. Returns whether any segment (hence an ACK) went out.
   */
  output(now: number, out: Ipv4Sink): boolean {
    let sent = false;
    if (this.#rtxLog.lost) sent = this.#resendLostRetransmission(now, out);
    if (this.recovery !== Recovery.None && this.#sendRetransmissions(now, out)) sent = true;
    const sentNew = this.#sendNewData(now, out, -1);
    if (sentNew) sent = true;
    if (sentNew || this.#ackAdvanced) this.#armProbe(now);
    this.#ackAdvanced = false;
    if (this.recovery === Recovery.Fast && this.sack && this.#sendRecoveryExtras(now, out)) {
      sent = true;
    }
    // Persist timer (RFC 9293 §3.8.6.1): data waits, nothing in flight to elicit ACKs.
    if (
      this.persistDeadline === Infinity && this.sndUna === this.sndNxt &&
      (this.unsentBytes() > 0 || (this.finQueued && !this.finSent))
    ) {
      const base = Math.max(this.rtt.rto, this.#config.rtoMinMs);
      this.persistDeadline = now + Math.min(this.#config.rtoMaxMs, base * 2 ** this.#persistBackoff);
    }
    return sent;
  }

  /**
   * Largest payload of one emitted segment: the configured `maxSendSegment` when larger than the MSS,
   * else with a segmentation-offloading link (TSO) whole MSS multiples up to what fits a 64 KiB IPv4
   * packet, else the MSS.
   */
  #sendSegmentLimit(out: Ipv4Sink): number {
    const mss = this.sendMss;
    const configured = this.#config.maxSendSegment;
    if (configured > mss) return Math.min(configured, MAX_TSO_PAYLOAD);
    if (out.offloads === true) return Math.max(mss, Math.floor(MAX_TSO_PAYLOAD / mss) * mss);
    return mss;
  }

  /** Emits a retransmission of `length` bytes at `seq` (with the FIN when it ends there). */
  #retransmit(out: Ipv4Sink, now: number, seq: number, length: number, fin: boolean): void {
    this.#emitter.emit(out, now, seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0), length, true);
    this.#stats.retransmissions++;
  }

  /** Sends the oldest retransmission again after the {@link RetransmissionLog} found it lost. */
  #resendLostRetransmission(now: number, out: Ipv4Sink): boolean {
    const log = this.#rtxLog;
    log.lost = false;
    if (log.count === 0 || this.recovery !== Recovery.Fast) return false;
    const seq = this.scoreboard.nextUnsacked(seqMax(log.oldestStart, this.sndUna));
    const end = log.oldestEnd;
    if (!seqLt(seq, end)) return false;
    const limit = seqMin(end, this.scoreboard.nextSackedStart(seq, end));
    const dataEnd = seqAdd(this.#sndBufSeq, this.buffer.length);
    const length = Math.max(0, Math.min(this.sendMss, (seqMin(limit, dataEnd) - seq) | 0));
    const fin = this.finSent && seqAdd(seq, length) === this.finSeq && seqLt(this.finSeq, limit);
    if (length === 0 && !fin) return false;
    this.#retransmit(out, now, seq, length, fin);
    this.#stats.lostRetransmissions++;
    log.resent(this.sndNxt);
    if (this.rtoDeadline === Infinity) this.rtoDeadline = now + this.rtt.rto;
    return true;
  }

  /** RFC 6675 §4 NextSeg rule 1 (RFC 6582 without SACK): retransmits what is deemed lost, as cwnd allows. */
  #sendRetransmissions(now: number, out: Ipv4Sink): boolean {
    const sack = this.sack;
    let sent = false;
    const cwnd = this.congestion.cwnd;
    while (true) {
      if (!this.#forceRetransmit && this.pipe() + this.sendMss > cwnd) break;
      let seq = seqMax(this.#highRxt, this.sndUna);
      if (sack) seq = this.scoreboard.nextUnsacked(seq);
      if (!seqLt(seq, this.#lossBoundary)) break;
      let limit = this.#lossBoundary;
      if (sack) limit = seqMin(limit, this.scoreboard.nextSackedStart(seq, limit));
      const dataEnd = seqAdd(this.#sndBufSeq, this.buffer.length);
      let length = Math.min(this.sendMss, (seqMin(limit, dataEnd) - seq) | 0);
      if (length < 0) length = 0;
      const fin = this.finSent && seqAdd(seq, length) === this.finSeq && seqLt(this.finSeq, limit);
      if (length === 0 && !fin) break;
      this.#retransmit(out, now, seq, length, fin);
      this.#highRxt = seqAdd(seq, length + (fin ? 1 : 0));
      this.#recordRetransmission(seq, this.#highRxt);
      this.#forceRetransmit = false;
      if (this.rtoDeadline === Infinity) this.rtoDeadline = now + this.rtt.rto;
      sent = true;
    }
    this.#forceRetransmit = false;
    return sent;
  }

  /**
   * RFC 6675 §4 NextSeg rules 3 and 4, when neither a lost segment (rule 1) nor new data (rule 2) could
   * use the room in cwnd: rule 3 retransmits an un-SACKed segment below the highest SACK that is not yet
   * deemed lost; rule 4 (once per recovery) retransmits the last segment, which no later SACK can ever
   * reveal as lost (the tail-loss case).
   */
  #sendRecoveryExtras(now: number, out: Ipv4Sink): boolean {
    const mss = this.sendMss;
    if (this.pipe() + mss > this.congestion.cwnd) return false;
    const from = this.scoreboard.nextUnsacked(seqMax(this.#highRxt, this.sndUna));
    const highSack = this.scoreboard.highestSacked(this.sndUna);
    let seq: number;
    let limit: number;
    if (seqLt(from, highSack)) {
      seq = from;
      limit = seqMin(highSack, this.scoreboard.nextSackedStart(from, highSack));
    } else if (!this.#rescueDone && seqLt(this.sndUna, this.sndNxt)) {
      this.#rescueDone = true;
      limit = this.sndNxt;
      seq = seqMax(seqMax(seqAdd(this.sndNxt, -mss), this.sndUna), from);
      if (!seqLt(seq, limit)) return false;
    } else {
      return false;
    }
    const dataEnd = seqAdd(this.#sndBufSeq, this.buffer.length);
    const length = Math.max(0, Math.min(mss, (seqMin(limit, dataEnd) - seq) | 0));
    const fin = this.finSent && seqAdd(seq, length) === this.finSeq && seqLt(this.finSeq, limit);
    if (length === 0 && !fin) return false;
    this.#retransmit(out, now, seq, length, fin);
    this.#highRxt = seqMax(this.#highRxt, seqAdd(seq, length + (fin ? 1 : 0)));
    this.#recordRetransmission(seq, seqAdd(seq, length + (fin ? 1 : 0)));
    if (this.rtoDeadline === Infinity) this.rtoDeadline = now + this.rtt.rto;
    return true;
  }

  /** Sends new data (and the FIN) as window, cwnd, Nagle and SWS allow; `forced` > 0 overrides them. */
  #sendNewData(now: number, out: Ipv4Sink, forced: number): boolean {
    const mss = this.sendMss;
    const segmentLimit = this.#sendSegmentLimit(out);
    let sent = false;
    this.#cwndLimited = false;
    while (!this.finSent) {
      const unsent = this.unsentBytes();
      const wantFin = this.finQueued;
      if (unsent === 0 && !wantFin) break;
      const windowRoom = (seqAdd(this.sndUna, this.sndWnd) - this.sndNxt) | 0;
      const cwndRoom = this.congestion.cwnd - this.pipe();
      let length: number;
      const overriding = forced > 0;
      if (overriding) {
        length = forced;
        forced = 0;
      } else {
        length = Math.min(unsent, segmentLimit, windowRoom);
        if (unsent > 0 && length <= 0) break; // window closed: the persist timer takes over
        if (length > cwndRoom) {
          this.#cwndLimited = true;
          // Whole segments only when limited by cwnd (no runts).
          length = cwndRoom >= mss ? cwndRoom - (cwndRoom % mss) : 0;
          if (length <= 0) break;
        }
        if (length < mss && length < unsent) {
          // Sender SWS avoidance (RFC 9293 §3.8.6.2.1): a partial segment only when it is at least
          // half the largest window the peer offered.
          if (length < (this.maxSndWnd >> 1)) break;
        } else if (length < mss && !this.noDelay && !wantFin && seqGt(this.#smallSegmentEnd, this.sndUna)) {
          // Nagle (RFC 9293 §3.7.4) with Minshall's refinement (as Linux): hold a small segment while
          // an earlier small segment is unacknowledged.
          break;
        }
      }
      const fin = wantFin && length === unsent;
      if (length === 0 && !fin) break;
      if (
        !overriding && length > 0 && this.sndUna === this.sndNxt && this.#lastDataSent >= 0 &&
        now - this.#lastDataSent > this.rtt.rto
      ) {
        // RFC 5681 §4.1: restart after an idle period longer than the RTO with at most the initial
        // window (the ACK clock is lost); recompute this segment against the new cwnd next round.
        this.#lastDataSent = now;
        this.congestion.onIdleRestart(now);
        continue;
      }
      if (length > 0) this.#lastDataSent = now;
      if (this.#rttTime < 0 && !this.timestamps && length > 0) {
        this.#rttSeq = this.sndNxt;
        this.#rttTime = now;
      }
      this.#emitter.emit(
        out,
        now,
        this.sndNxt,
        TcpFlags.ACK | (fin ? TcpFlags.FIN : 0) | (length > 0 && length === unsent ? TcpFlags.PSH : 0),
        length,
        true,
      );
      this.sndNxt = seqAdd(this.sndNxt, length + (fin ? 1 : 0));
      if (length < mss) this.#smallSegmentEnd = this.sndNxt;
      if (fin) {
        this.finSent = true;
        this.finSeq = seqAdd(this.sndNxt, -1);
      }
      if (this.rtoDeadline === Infinity) this.rtoDeadline = now + this.rtt.rto; // RFC 6298 §5.1
      this.persistDeadline = Infinity;
      sent = true;
    }
    return sent;
  }
}

/**
 * One TCP connection: the RFC 9293 §3.10 event processing state machine, sans-I/O. The owning
 * {@link TcpLayer} hands it validated segments with the current time and polls it for timers; the
 * application side is a byte-buffer API plus readiness events:
 *
 * - `send(bytes)` copies into the bounded send buffer and returns how many bytes it took (0 when full:
 *   wait for a WRITABLE event); it throws {@link TcpStateError} after shutdown/close or once CLOSED.
 * - `recv(into)` copies out and returns the count, 0 when nothing is buffered (wait for READABLE), or
 *   null at end of stream (peer's FIN consumed, or CLOSED: then `error` says why).
 * - `shutdownWrite()` half-closes (FIN after queued data); `close()` closes both directions (RST instead
 *   when received data was left unread); `abort()` resets.
 * - `onEvent(connection, events)` receives a bitmask of {@link TcpEvent} after each ingress/poll that
 *   changed something; it runs synchronously inside the layer, so it should only resolve promises or
 *   touch buffers (send/recv/close are safe: they never emit packets themselves).
 *
 * Loss recovery follows RFC 6675 (SACK) or RFC 6582 (NewReno without SACK) with RFC 6298 timers; the
 * window sizes come from a {@link CongestionControl} (CUBIC by default).
 *
 * @module
 */

import type { Ipv4Sink } from "../iface/protocol.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import {
  fillTcpChecksum,
  MAX_SACK_BLOCKS,
  TCP_HEADER_LENGTH,
  TcpFlags,
  type TcpOptions,
  type TcpSegment,
  writeMssOption,
  writeSackOption,
  writeSackPermittedOption,
  writeTcpHeader,
  writeTimestampsOption,
  writeWindowScaleOption,
} from "../wire/tcp.ts";
import { foldSum, ipv4PseudoHeaderSum } from "../wire/checksum.ts";
import { TxFlags } from "../phy/device.ts";
import type { TcpConfig } from "./config.ts";
import { type CongestionControl, createCongestionControl } from "./congestion.ts";
import type { IsnGenerator } from "./isn.ts";
import { ReassemblyQueue } from "./reassembly.ts";
import { RecvBuffer } from "./recv_buffer.ts";
import { sendReset } from "./reset.ts";
import { RttEstimator } from "./rtt.ts";
import { DUP_THRESH, SackScoreboard } from "./sack_scoreboard.ts";
import { SendBuffer } from "./send_buffer.ts";
import { seqAdd, seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from "./seq.ts";
import type { TcpStats } from "./stats.ts";

/** Connection states of RFC 9293 §3.3.2 (LISTEN lives in the layer's listeners). */
export type TcpState =
  | "CLOSED"
  | "SYN_SENT"
  | "SYN_RECEIVED"
  | "ESTABLISHED"
  | "FIN_WAIT_1"
  | "FIN_WAIT_2"
  | "CLOSE_WAIT"
  | "CLOSING"
  | "LAST_ACK"
  | "TIME_WAIT";

/** Readiness bits passed to {@link TcpConnection.onEvent}. */
export const TcpEvent = {
  /** The handshake completed (ESTABLISHED). */
  OPEN: 1,
  /** New bytes are readable (or end of stream, see EOF). */
  READABLE: 2,
  /** Send buffer space became free. */
  WRITABLE: 4,
  /** The peer's FIN arrived: after the buffered bytes, {@link TcpConnection.recv} returns null. */
  EOF: 8,
  /** The connection reached CLOSED; {@link TcpConnection.error} says why, if abnormally. */
  CLOSED: 16,
} as const;

/** See {@link TcpConnection.diagnostics}. */
export interface TcpConnectionDiagnostics {
  /** Connection state. */
  state: TcpState;
  /** Loss recovery phase. */
  recovery: "none" | "fast" | "timeout";
  /** Congestion window (bytes). */
  cwnd: number;
  /** Slow start threshold (bytes). */
  ssthresh: number;
  /** RFC 6675 pipe estimate (bytes). */
  pipe: number;
  /** SND.NXT − SND.UNA. */
  flight: number;
  /** Bytes the peer SACKed. */
  sackedBytes: number;
  /** Queued bytes not yet sent. */
  unsent: number;
  /** Peer's window (bytes). */
  sndWnd: number;
  /** Our advertised window remaining (bytes). */
  rcvWnd: number;
  /** Smoothed RTT (ms, −1 unknown). */
  srtt: number;
  /** Current RTO (ms). */
  rto: number;
  /** Consecutive retransmission timeouts. */
  retries: number;
  /** Disjoint out-of-order ranges held. */
  outOfOrderRanges: number;
}

/** Why a connection ended abnormally. */
export type TcpCloseError = "reset" | "refused" | "timeout" | "aborted";

/** Misuse of the application API (e.g. sending after shutdown); never raised for received segments. */
export class TcpStateError extends Error {
  /** Creates the error with a message naming the operation and state. */
  constructor(message: string) {
    super(message);
    this.name = "TcpStateError";
  }
}

/** What a connection needs from its layer. */
export interface TcpConnectionContext {
  /** Resolved configuration. */
  readonly config: TcpConfig;
  /** Shared counters. */
  readonly stats: TcpStats;
  /** Shared output buffer, large enough for one IPv4 packet of the largest segment. */
  readonly scratch: Uint8Array;
  /** ISN and timestamp-offset source. */
  readonly isn: IsnGenerator;
  /** Called when the application made output necessary (data queued, window opened, close). */
  requestPoll(connection: TcpConnection): void;
  /** Called once when a passively opened connection reaches ESTABLISHED. */
  passiveEstablished(connection: TcpConnection): void;
  /** Whether another challenge ACK may be sent at `now` (RFC 5961 §7 rate limit). */
  allowChallengeAck(now: number): boolean;
}

/** `TxFlags.CHECKSUM_PARTIAL`: the device completes the checksum from the pseudo-header sum. */
const TX_CHECKSUM_PARTIAL = TxFlags.CHECKSUM_PARTIAL;

/** RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK time assumed of the peer. */
const WORST_CASE_DELAYED_ACK_MS = 200;
/** Floor of the probe timeout (Linux's TCP_TIMEOUT_MIN is 2 ms; 10 ms leaves room for jitter). */
const MIN_PTO_MS = 10;

/** Largest TSO payload: a 65 535-byte IPv4 packet minus IPv4 and maximal TCP headers. */
const MAX_TSO_PAYLOAD = 65535 - IPV4_HEADER_LENGTH - 60;

const enum Recovery {
  None = 0,
  /** Fast retransmit / fast recovery (RFC 5681 §3.2, RFC 6582, RFC 6675). */
  Fast = 1,
  /** Loss recovery after a retransmission timeout (RFC 6298 §5, RFC 5681 §3.1). */
  Timeout = 2,
}

const SYNCHRONIZED_SEND_STATES: ReadonlySet<TcpState> = new Set([
  "ESTABLISHED",
  "CLOSE_WAIT",
  "FIN_WAIT_1",
  "CLOSING",
  "LAST_ACK",
]);

/** A TCP connection; created by {@link TcpLayer.connect} or accepted from a {@link TcpListener}. */
export class TcpConnection {
  /** Our address. */
  readonly localAddress: number;
  /** Our port. */
  readonly localPort: number;
  /** The peer's address. */
  readonly remoteAddress: number;
  /** The peer's port. */
  readonly remotePort: number;
  /** Whether this side opened passively (from a listener). */
  readonly passive: boolean;
  /** Current state. */
  state: TcpState = "CLOSED";
  /** Why the connection closed abnormally, or null. */
  error: TcpCloseError | null = null;
  /**
   * Readiness callback: called after a segment or poll changed something, with a bitmask of
   * {@link TcpEvent}. It may call {@link send}/{@link recv}/{@link close} (they only touch buffers and
   * request a poll); it must not call the layer's `ingress`/`poll` re-entrantly.
   */
  onEvent: ((connection: TcpConnection, events: number) => void) | null = null;
  /** Disables Nagle's algorithm (RFC 9293 §3.7.4) when true. */
  noDelay: boolean;
  /** Opaque slot for the layer (listener bookkeeping). */
  owner: unknown = null;

  // Send sequence variables (RFC 9293 §3.3.1). sndNxt is the highest sequence sent + 1.
  /** Initial send sequence number. */
  iss = 0;
  /** Oldest unacknowledged sequence number. */
  sndUna = 0;
  /** Next new sequence number to send. */
  sndNxt = 0;
  /** Send window (scaled) offered by the peer. */
  sndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  #maxSndWnd = 0;
  /** Sequence number of the first byte in the send buffer. */
  #sndBufSeq = 0;

  // Receive sequence variables.
  /** Initial receive sequence number. */
  irs = 0;
  /** Next sequence number expected. */
  rcvNxt = 0;
  /** Right edge of the window we advertised last (never moves left, RFC 9293 §3.8.6.2.2). */
  #rcvAdvEdge = 0;

  // Negotiated options.
  /** Shift applied to windows the peer sends (RFC 7323 §2.3), 0 without scaling. */
  sndScale = 0;
  /** Shift applied to windows we send. */
  rcvScale = 0;
  /** Whether timestamps are in use (RFC 7323 §3.2). */
  timestampsEnabled = false;
  /** Whether SACK is in use (RFC 2018). */
  sackEnabled = false;
  /** The peer's MSS (RFC 9293 §3.7.1: 536 when absent). */
  peerMss = 536;
  /** Payload bytes per full-size segment we send (effective MSS minus option space). */
  sendMss = 536;
  #advertisedMss: number;
  #tsRecent = 0;
  #tsOffset = 0;
  #lastAckSent = 0;

  // Buffers.
  readonly #sendBuffer: SendBuffer;
  readonly #recvBuffer: RecvBuffer;
  readonly #reassembly: ReassemblyQueue;
  readonly #scoreboard = new SackScoreboard();
  readonly #sackOut = new Uint32Array(MAX_SACK_BLOCKS * 2);

  // Timers (absolute deadlines, Infinity when stopped).
  #rtoDeadline = Infinity;
  #delayedAckDeadline = Infinity;
  #persistDeadline = Infinity;
  #keepaliveDeadline = Infinity;
  #timeWaitDeadline = Infinity;
  #finWait2Deadline = Infinity;

  /** RTT estimator and RTO (RFC 6298). */
  readonly rtt: RttEstimator;
  /** Congestion controller. */
  readonly congestion: CongestionControl;
  #retries = 0;
  #persistBackoff = 0;
  #probesUnanswered = 0;
  #keepalivesUnanswered = 0;
  #rttSeq = 0;
  #rttTime = -1;

  // Loss recovery.
  #recovery: Recovery = Recovery.None;
  #recoveryPoint = 0;
  #recoveryFence = 0;
  #highRxt = 0;
  #lossBoundary = 0;
  #dupAcks = 0;
  #renoSacked = 0;
  #forceRetransmit = false;
  #rescueDone = false;
  readonly #rtxStart = new Uint32Array(256);
  readonly #rtxEnd = new Uint32Array(256);
  readonly #rtxSentAtNxt = new Uint32Array(256);
  #rtxHead = 0;
  #rtxCount = 0;
  #lostRetransmission = false;
  #smallSegmentEnd = 0;
  #lastDataSent = -1;
  #lastInvalidAck = -Infinity;
  /** Our TSval when the current recovery's first retransmission went out, or −1 (Eifel detection). */
  #recoveryTsVal = -1;
  #ptoDeadline = Infinity;
  #probeOutstanding = false;
  #probeSeq = 0;
  #ackAdvanced = false;
  #cwndLimited = false;

  // Flags.
  #finQueued = false;
  #finSent = false;
  #finSeq = 0;
  #peerFin = false;
  #pendingPeerFin = false;
  #pendingPeerFinSeq = 0;
  #ackNow = false;
  #synAckDue = false;
  #pendingRst = false;
  #outputPending = false;
  #pendingRstSeq = 0;
  #pendingRstAck = 0;
  #pendingRstWithAck = false;
  #windowScalingOk = false;
  #appClosed = false;
  #unackedSegments = 0;
  #events = 0;
  #ctx: TcpConnectionContext;
  #cachedView: Uint8Array | null = null;

  /** Creates a connection in CLOSED; the layer then calls {@link openActive} or {@link openPassive}. */
  constructor(
    ctx: TcpConnectionContext,
    localAddress: number,
    localPort: number,
    remoteAddress: number,
    remotePort: number,
    passive: boolean,
  ) {
    const config = ctx.config;
    this.#ctx = ctx;
    this.localAddress = localAddress;
    this.localPort = localPort;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.passive = passive;
    this.noDelay = config.noDelay;
    this.#advertisedMss = Math.min(65535, config.mtu - IPV4_HEADER_LENGTH - TCP_HEADER_LENGTH);
    let shift = 0;
    while ((config.recvBufferSize >> shift) > 65535 && shift < 14) shift++;
    this.rcvScale = config.windowScaling ? shift : 0;
    this.#sendBuffer = new SendBuffer(config.sendBufferSize);
    // Slack of one window-scale unit absorbs rounding of the advertised window (see #windowField).
    this.#recvBuffer = new RecvBuffer(config.recvBufferSize + (1 << shift));
    this.#reassembly = new ReassemblyQueue(config.maxOutOfOrderRanges);
    this.rtt = new RttEstimator(config.rtoInitialMs, config.rtoMinMs, config.rtoMaxMs);
    this.congestion = createCongestionControl(config.congestionControl, 536);
  }

  // ───────────────────────────── application API ─────────────────────────────

  /** Bytes that {@link recv} can return now. */
  get readableBytes(): number {
    return this.#recvBuffer.length;
  }

  /** Bytes {@link send} would accept now (0 once the write side is shut). */
  get writableBytes(): number {
    return this.#canSend() ? this.#sendBuffer.free : 0;
  }

  /** Bytes queued and not yet acknowledged. */
  get unacknowledgedBytes(): number {
    return this.#sendBuffer.length;
  }

  /** Whether the peer's FIN has arrived (no data follows what is buffered). */
  get peerClosed(): boolean {
    return this.#peerFin;
  }

  /** Whether {@link shutdownWrite} or {@link close} was called. */
  get writeShut(): boolean {
    return this.#finQueued;
  }

  /** The send buffer size. */
  get sendBufferSize(): number {
    return this.#sendBuffer.capacity;
  }

  /** Congestion window in bytes. */
  get cwnd(): number {
    return this.congestion.cwnd;
  }

  /** A snapshot of sender internals for status output and debugging (allocates; not for hot paths). */
  diagnostics(): TcpConnectionDiagnostics {
    return {
      state: this.state,
      recovery: this.#recovery === Recovery.None
        ? "none"
        : this.#recovery === Recovery.Fast
        ? "fast"
        : "timeout",
      cwnd: this.congestion.cwnd,
      ssthresh: this.congestion.ssthresh,
      pipe: this.#pipe(),
      flight: (this.sndNxt - this.sndUna) >>> 0,
      sackedBytes: this.#scoreboard.sackedBytes,
      unsent: this.#unsentBytes(),
      sndWnd: this.sndWnd,
      rcvWnd: Math.max(0, (this.#rcvAdvEdge - this.rcvNxt) | 0),
      srtt: this.rtt.srtt,
      rto: this.rtt.rto,
      retries: this.#retries,
      outOfOrderRanges: this.#reassembly.rangeCount,
    };
  }

  #canSend(): boolean {
    if (this.#finQueued) return false;
    const s = this.state;
    return s === "ESTABLISHED" || s === "CLOSE_WAIT" || s === "SYN_SENT" || s === "SYN_RECEIVED";
  }

  /**
   * Queues bytes for sending and returns how many were accepted (0 when the buffer is full). Throws
   * {@link TcpStateError} after shutdown or close. Data goes out at the next layer poll.
   */
  send(data: Uint8Array): number {
    if (!this.#canSend()) {
      throw new TcpStateError(
        `tcp: cannot send in state ${this.state}${this.#finQueued ? " after shutdown" : ""}`,
      );
    }
    const n = this.#sendBuffer.write(data);
    if (n > 0) this.#wake();
    return n;
  }

  /**
   * Moves received bytes into `into` and returns the count; 0 when nothing is buffered yet; `null` at end
   * of stream (the peer's FIN was consumed, or the connection closed — check {@link error}).
   */
  recv(into: Uint8Array): number | null {
    const n = this.#recvBuffer.read(into);
    if (n > 0) {
      this.#maybeWindowUpdate();
      return n;
    }
    if (into.length === 0) return 0;
    return this.#peerFin || this.state === "CLOSED" ? null : 0;
  }

  /** Half-close (RFC 9293 §3.10.4 CLOSE on the send side): queues a FIN after the buffered data. */
  shutdownWrite(): void {
    if (this.#finQueued) return;
    switch (this.state) {
      case "SYN_SENT":
      case "SYN_RECEIVED":
        // The FIN follows the handshake: #establish enters FIN-WAIT-1.
        this.#finQueued = true;
        return;
      case "ESTABLISHED":
        this.#finQueued = true;
        this.state = "FIN_WAIT_1";
        break;
      case "CLOSE_WAIT":
        this.#finQueued = true;
        this.state = "LAST_ACK";
        break;
      default:
        return;
    }
    this.#wake();
  }

  /**
   * Closes both directions. With unread received data the connection is reset instead (RFC 2525 §2.17,
   * as Linux); data arriving later is acknowledged and discarded.
   */
  close(): void {
    if (this.#appClosed) return;
    this.#appClosed = true;
    if (this.state === "CLOSED") return;
    if (this.state === "SYN_SENT") {
      this.#enterClosed(null); // RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB
      return;
    }
    if (this.#recvBuffer.length > 0) {
      this.abort();
      return;
    }
    this.shutdownWrite();
    this.#wake();
  }

  /** Aborts: sends RST (in synchronized states) at the next poll and enters CLOSED (RFC 9293 §3.10.5). */
  abort(): void {
    if (this.state === "CLOSED") return;
    // No RST from SYN-SENT (nothing to reset) or TIME-WAIT (the peer already closed).
    const synchronized = this.state !== "SYN_SENT" && this.state !== "TIME_WAIT";
    this.#appClosed = true;
    if (synchronized) {
      this.#pendingRst = true;
      this.#pendingRstSeq = this.sndNxt;
      this.#pendingRstAck = 0;
      this.#pendingRstWithAck = false;
      this.#wake();
    }
    this.#enterClosed("aborted");
  }

  /** Marks output as pending and asks the layer for a poll. */
  #wake(): void {
    this.#outputPending = true;
    this.#ctx.requestPoll(this);
  }

  #maybeWindowUpdate(): void {
    if (this.state === "CLOSED" || this.state === "SYN_SENT" || this.#peerFin) return;
    // Linux-style (__tcp_cleanup_rbuf): announce when the window at least doubles and grows by at least
    // the receiver SWS threshold (RFC 9293 §3.8.6.2.2).
    const current = Math.max(0, (this.#rcvAdvEdge - this.rcvNxt) | 0);
    const possible = this.#freeWindow();
    if (possible >= 2 * current && possible - current >= this.#swsThreshold()) {
      this.#ackNow = true;
      this.#wake();
    }
  }

  // ───────────────────────────── opening ─────────────────────────────

  /**
   * Picks the initial send sequence number (RFC 6528, or `issOverride`) and the timestamp offset, and
   * starts every send-side sequence variable there.
   */
  #initSendSequence(issOverride: number | null, now: number): void {
    const isn = this.#ctx.isn;
    this.iss = issOverride ??
      isn.isn(this.localAddress, this.localPort, this.remoteAddress, this.remotePort, now);
    this.#tsOffset = isn.timestampOffset(
      this.localAddress,
      this.localPort,
      this.remoteAddress,
      this.remotePort,
    );
    this.sndUna = this.iss;
    this.sndNxt = this.iss;
    this.#sndBufSeq = seqAdd(this.iss, 1);
    this.#recoveryFence = this.iss;
    this.#smallSegmentEnd = this.iss;
  }

  /** Active open (RFC 9293 §3.10.1): picks the ISN and enters SYN-SENT; the SYN leaves at the next poll. */
  openActive(now: number): void {
    this.#initSendSequence(null, now);
    this.state = "SYN_SENT";
    this.#outputPending = true;
    this.#ctx.stats.activeOpens++;
    const config = this.#ctx.config;
    this.timestampsEnabled = config.timestamps;
    this.sackEnabled = config.sack;
    if (!config.windowScaling) this.rcvScale = 0;
    this.#wake();
  }

  /**
   * Passive open from LISTEN on a SYN (RFC 9293 §3.10.7.2): records the peer's options and sends
   * SYN,ACK. `issOverride` reuses a sequence space above an old TIME-WAIT incarnation (RFC 6191).
   */
  openPassive(
    seg: TcpSegment,
    opts: TcpOptions,
    now: number,
    out: Ipv4Sink,
    issOverride: number | null,
  ): void {
    this.#initSendSequence(issOverride, now);
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.#lastAckSent = this.rcvNxt;
    this.#rcvAdvEdge = this.rcvNxt;
    this.#negotiate(opts);
    // RFC 7323 §2.2: the window in a SYN is never scaled.
    this.sndWnd = seg.window;
    this.#maxSndWnd = this.sndWnd;
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = this.iss;
    this.state = "SYN_RECEIVED";
    this.#ctx.stats.passiveOpens++;
    this.#output(now, out);
  }

  #negotiate(opts: TcpOptions): void {
    const config = this.#ctx.config;
    // RFC 7323 §2.2: scaling only when both SYNs carry the option.
    if (config.windowScaling && opts.windowScale >= 0) {
      this.sndScale = opts.windowScale;
      this.#windowScalingOk = true;
    } else {
      this.#windowScalingOk = false;
      this.sndScale = 0;
      this.rcvScale = 0;
    }
    this.timestampsEnabled = config.timestamps && opts.hasTimestamps;
    if (this.timestampsEnabled) this.#tsRecent = opts.tsVal;
    this.sackEnabled = config.sack && opts.sackPermitted;
    // RFC 9293 §3.7.1: 536 when the option is absent; RFC 6691: never above what our MTU allows.
    this.peerMss = opts.mss > 0 ? opts.mss : 536;
    const mss = Math.max(64, Math.min(this.peerMss, this.#advertisedMss));
    this.sendMss = mss - (this.timestampsEnabled ? 12 : 0);
    this.congestion.setMss(this.sendMss);
  }

  // ───────────────────────────── input ─────────────────────────────

  /**
   * Processes one validated segment addressed to this connection (RFC 9293 §3.10.7.3–4), sends what it
   * calls for, and fires events. Never throws for bad input.
   */
  ingress(seg: TcpSegment, opts: TcpOptions, now: number, out: Ipv4Sink): void {
    if (this.state === "CLOSED") {
      this.#flushReset(out);
      return;
    }
    if (this.state === "SYN_SENT") this.#ingressSynSent(seg, opts, now);
    else this.#ingressSynchronized(seg, opts, now);
    if (this.config.keepalive && !this.#isClosed()) {
      this.#keepalivesUnanswered = 0;
      this.#keepaliveDeadline = Infinity;
    }
    this.#output(now, out);
    this.#flushEvents();
  }

  #isClosed(): boolean {
    return this.state === "CLOSED";
  }

  /** The layer's configuration. */
  get config(): TcpConfig {
    return this.#ctx.config;
  }

  #ingressSynSent(seg: TcpSegment, opts: TcpOptions, now: number): void {
    const flags = seg.flags;
    const stats = this.#ctx.stats;
    const hasAck = (flags & TcpFlags.ACK) !== 0;
    // RFC 9293 §3.10.7.3 first: an ACK outside (ISS, SND.NXT] is unacceptable.
    if (hasAck && (seqLe(seg.ack, this.iss) || seqGt(seg.ack, this.sndNxt))) {
      stats.drop("syn-sent-bad");
      if (!(flags & TcpFlags.RST)) this.#rstAt(seg.ack, 0, false);
      return;
    }
    if (flags & TcpFlags.RST) {
      // Second: RST is acceptable only with an acceptable ACK (RFC 5961 §3.2 leaves SYN-SENT as is).
      if (hasAck) {
        stats.resetsIn++;
        this.#enterClosed("refused");
      } else {
        stats.drop("syn-sent-bad");
      }
      return;
    }
    if (!(flags & TcpFlags.SYN)) {
      stats.drop("syn-sent-bad");
      return;
    }
    // Fourth: SYN.
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.#rcvAdvEdge = this.rcvNxt;
    this.#lastAckSent = this.rcvNxt;
    this.#negotiate(opts);
    if (hasAck) {
      this.#takeRttSample(seg.ack, opts, now);
      this.sndUna = seg.ack;
      this.#rtoDeadline = Infinity;
      // RFC 7323 §2.2: the window in a SYN,ACK is not scaled.
      this.sndWnd = seg.window;
      this.#maxSndWnd = this.sndWnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = seg.ack;
      this.#establish();
      this.#ackNow = true;
    } else {
      // Simultaneous open (RFC 9293 Figure 8): SYN-RECEIVED, send SYN,ACK with our ISS.
      this.sndWnd = seg.window;
      this.#maxSndWnd = this.sndWnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = this.iss;
      this.state = "SYN_RECEIVED";
      this.#synAckDue = true;
    }
  }

  #establish(): void {
    // RFC 6298 §5.7: if the handshake needed a retransmission and gave no RTT sample, start data
    // transfer with a 3 s RTO.
    if (this.#retries > 0 && this.rtt.srtt < 0) this.rtt.resetInitial(3000);
    this.#retries = 0;
    // A shutdown requested during the handshake takes effect now (RFC 9293 §3.10.4).
    this.state = this.#finQueued ? "FIN_WAIT_1" : "ESTABLISHED";
    this.#ctx.stats.established++;
    this.#events |= TcpEvent.OPEN | TcpEvent.WRITABLE;
    if (this.#ctx.config.keepalive) this.#keepaliveDeadline = Infinity;
    if (this.passive) this.#ctx.passiveEstablished(this);
  }

  #ingressSynchronized(seg: TcpSegment, opts: TcpOptions, now: number): void {
    const stats = this.#ctx.stats;
    const flags = seg.flags;
    let seq = seg.seq;
    let dataOffset = seg.payloadOffset;
    let dataLength = seg.payloadLength;
    let fin = (flags & TcpFlags.FIN) !== 0;
    let syn = (flags & TcpFlags.SYN) !== 0;
    const rst = (flags & TcpFlags.RST) !== 0;
    if (
      syn && this.state === "SYN_RECEIVED" && !this.passive && (flags & TcpFlags.ACK) &&
      seqAdd(seq, 1) === this.rcvNxt && dataLength === 0 && seg.ack === this.sndNxt
    ) {
      // Simultaneous open (RFC 9293 Figure 8): the peer's SYN,ACK repeats the SYN we already have and
      // acknowledges ours; only its ACK is new (Linux makes the same exception to RFC 5961 §4.2).
      syn = false;
      seq = this.rcvNxt;
    }
    const segLength = dataLength + (syn ? 1 : 0) + (fin ? 1 : 0);

    // RFC 7323 §5.3 R1: PAWS, before the sequence check; RSTs are exempt.
    if (this.timestampsEnabled && opts.hasTimestamps && !rst && seqLt(opts.tsVal, this.#tsRecent)) {
      stats.drop("paws");
      this.#ackInvalid(now, segLength, syn);
      return;
    }

    // RFC 9293 §3.10.7.4 first: sequence number acceptability (the four cases).
    const rcvWnd = Math.max(0, (this.#rcvAdvEdge - this.rcvNxt) | 0);
    const rcvEnd = seqAdd(this.rcvNxt, rcvWnd);
    let acceptable: boolean;
    if (segLength === 0) {
      // RFC 9293 asks RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND; like Linux (tcp_sequence) we also accept a
      // zero-length segment exactly at the right edge. A peer that filled our window sends its pure
      // ACKs with SEG.SEQ = its SND.NXT = our right edge: rejecting them when both directions are full
      // and losing deadlocks the connection in an exchange of "unacceptable" ACKs.
      acceptable = seqGe(seq, this.rcvNxt) && seqLe(seq, rcvEnd);
    } else if (rcvWnd === 0) {
      // RFC 9293 §3.10.7.4: with a zero window still accept valid ACKs and RSTs (text is trimmed below).
      acceptable = seq === this.rcvNxt;
    } else {
      const last = seqAdd(seq, segLength - 1);
      acceptable = (seqGe(seq, this.rcvNxt) && seqLt(seq, rcvEnd)) ||
        (seqGe(last, this.rcvNxt) && seqLt(last, rcvEnd));
    }
    if (!acceptable) {
      if (rst) {
        stats.drop("rst-out-of-window");
        return;
      }
      stats.drop("out-of-window");
      if (this.state === "SYN_RECEIVED" && syn && seq === this.irs) {
        this.#synAckDue = true; // the peer's SYN was retransmitted: our SYN,ACK was lost
      } else {
        this.#ackInvalid(now, segLength, syn);
      }
      return;
    }

    // RFC 7323 §4.3: remember the timestamp of a segment covering Last.ACK.sent.
    if (this.timestampsEnabled && opts.hasTimestamps && seqLe(seq, this.#lastAckSent)) {
      this.#tsRecent = opts.tsVal;
    }

    // Second: RST (RFC 5961 §3.2: only an exact match resets; other in-window RSTs get a challenge ACK).
    if (rst) {
      if (seq !== this.rcvNxt) {
        this.#challengeAck(now);
        return;
      }
      stats.resetsIn++;
      switch (this.state) {
        case "SYN_RECEIVED":
          // Passive: back to LISTEN, i.e. this embryonic connection goes away; active: refused.
          this.#enterClosed(this.passive ? null : "refused");
          return;
        case "ESTABLISHED":
        case "FIN_WAIT_1":
        case "FIN_WAIT_2":
        case "CLOSE_WAIT":
          this.#enterClosed("reset");
          return;
        default:
          this.#enterClosed(null);
          return;
      }
    }

    // Fourth: SYN in a synchronized state or SYN-RECEIVED (RFC 5961 §4.2): challenge ACK.
    if (syn) {
      this.#challengeAck(now);
      return;
    }

    // Trim to the window (RFC 9293 §3.10.7.4: "segments ... trimmed to the window").
    if (seqLt(seq, this.rcvNxt)) {
      const before = (this.rcvNxt - seq) >>> 0;
      if (before >= dataLength) {
        if (fin && before > dataLength) fin = false; // a FIN we already have
        dataOffset += dataLength;
        dataLength = 0;
      } else {
        dataOffset += before;
        dataLength -= before;
      }
      seq = this.rcvNxt;
      this.#ackNow = true; // duplicate data: acknowledge at once (RFC 9293 §3.10.7.4)
    }
    const room = (rcvEnd - seq) | 0;
    if (dataLength > room || (fin && dataLength === room && room === 0 && rcvWnd === 0)) {
      // Text beyond the window is dropped; the ACK tells the sender where the window stands (this
      // answers zero-window probes).
      dataLength = Math.max(0, Math.min(dataLength, room));
      fin = false;
      this.#ackNow = true;
    }

    // Fifth: ACK.
    if (!(flags & TcpFlags.ACK)) {
      stats.drop("no-ack");
      return;
    }
    const ack = seg.ack;
    if (this.state === "SYN_RECEIVED") {
      if (seqGt(ack, this.sndUna) && seqLe(ack, this.sndNxt)) {
        this.sndWnd = seg.window << this.sndScale;
        this.#maxSndWnd = Math.max(this.#maxSndWnd, this.sndWnd);
        this.#sndWl1 = seg.seq;
        this.#sndWl2 = ack;
        this.#establish();
      } else {
        stats.drop("bad-ack");
        this.#rstAt(ack, 0, false);
        return;
      }
    }
    if (seqGt(ack, this.sndNxt)) {
      // Acknowledges something not yet sent: ACK and drop (RFC 9293; RFC 5961 §5.2).
      stats.drop("bad-ack");
      this.#ackInvalid(now, dataLength + (fin ? 1 : 0), false);
      return;
    }
    if (seqLt(ack, seqAdd(this.sndUna, -Math.max(this.#maxSndWnd, 1)))) {
      // RFC 5961 §5.2: too old to be plausible: challenge ACK.
      stats.drop("bad-ack");
      this.#challengeAck(now);
      return;
    }
    this.#processAck(seg, opts, ack, seg.seq, dataLength, fin, now);
    if (this.state === "CLOSED") return;
    if (this.state === "TIME_WAIT") {
      // Only a retransmitted FIN can arrive: acknowledge it and restart the 2 MSL timer.
      if (fin || dataLength > 0) {
        this.#ackNow = true;
        this.#timeWaitDeadline = now + this.#ctx.config.timeWaitMs;
      }
      return;
    }

    // Seventh: segment text.
    if (dataLength > 0) {
      if (this.state === "ESTABLISHED" || this.state === "FIN_WAIT_1" || this.state === "FIN_WAIT_2") {
        this.#receiveData(seg.bytes, seq, dataOffset, dataLength, now);
      } else {
        stats.drop("after-close"); // data after the peer's FIN cannot be legitimate
      }
    }

    // Eighth: FIN (only once everything before it has arrived).
    if (fin) {
      const finSeq = seqAdd(seq, dataLength);
      if (finSeq === this.rcvNxt) {
        this.#processFin(now);
      } else if (seqGt(finSeq, this.rcvNxt)) {
        this.#pendingPeerFin = true;
        this.#pendingPeerFinSeq = finSeq;
      }
    }
    if (this.#pendingPeerFin && !this.#peerFin && this.#pendingPeerFinSeq === this.rcvNxt) {
      this.#processFin(now);
    }
  }

  /**
   * Answers an unacceptable segment with an ACK (RFC 9293 §3.10.7.4). For segments without data (and
   * SYNs) at most one such ACK per `invalidAckIntervalMs`, as Linux's tcp_oow_rate_limited: two
   * desynchronised ends would otherwise answer each other's ACKs forever (an ACK storm); a segment
   * carrying data is always answered.
   */
  #ackInvalid(now: number, dataLength: number, syn: boolean): void {
    if (dataLength === 0 || syn) {
      if (now - this.#lastInvalidAck < this.#ctx.config.invalidAckIntervalMs) {
        this.#ctx.stats.invalidAcksSuppressed++;
        return;
      }
      this.#lastInvalidAck = now;
    }
    this.#ackNow = true;
  }

  #challengeAck(now: number): void {
    // RFC 5961 §3.2 / §4.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate-limited per layer (§7).
    if (!this.#ctx.allowChallengeAck(now)) {
      this.#ctx.stats.drop("challenge-ack-limit");
      return;
    }
    this.#ctx.stats.challengeAcks++;
    this.#ackNow = true;
  }

  #takeRttSample(ack: number, opts: TcpOptions, now: number): void {
    if (this.timestampsEnabled && opts.hasTimestamps && opts.tsEcr !== 0) {
      // RFC 7323 §4.1: RTTM from the echoed timestamp (valid across retransmissions).
      const sample = (this.#tsNow(now) - opts.tsEcr) | 0;
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

  #processAck(
    seg: TcpSegment,
    opts: TcpOptions,
    ack: number,
    seq: number,
    dataLength: number,
    fin: boolean,
    now: number,
  ): void {
    const mss = this.sendMss;
    const window = seg.window << this.sndScale;
    const acked = (ack - this.sndUna) | 0;
    // Any acceptable ACK shows the peer is alive (Linux resets probes_out here).
    this.#probesUnanswered = 0;

    if (acked > 0) {
      this.#takeRttSample(ack, opts, now);
      const flightBefore = (this.sndNxt - this.sndUna) | 0;
      // Data bytes acknowledged (the SYN and FIN occupy sequence space but not the buffer).
      const bufferAcked = seqGt(ack, this.#sndBufSeq)
        ? Math.min((ack - this.#sndBufSeq) >>> 0, this.#sendBuffer.length)
        : 0;
      if (bufferAcked > 0) {
        this.#sendBuffer.consume(bufferAcked);
        this.#sndBufSeq = seqAdd(this.#sndBufSeq, bufferAcked);
        this.#events |= TcpEvent.WRITABLE;
      }
      this.sndUna = ack;
      this.#retries = 0;
      this.#ackAdvanced = true;
      this.#probeOutstanding = false;
      if (this.#sackActive()) this.#scoreboard.advance(ack);
      if (this.#sackActive() && opts.sackBlockCount > 0) {
        this.#scoreboard.update(opts.sackBlocks, opts.sackBlockCount, this.sndUna, this.sndNxt);
      }
      if (
        this.#recovery !== Recovery.None && this.#recoveryTsVal >= 0 && opts.hasTimestamps &&
        opts.tsEcr !== 0 && seqLt(opts.tsEcr, this.#recoveryTsVal)
      ) {
        // RFC 3522 (Eifel): the first ACK for the retransmitted data echoes a timestamp older than the
        // retransmission, so an original transmission arrived: the fast retransmit was spurious
        // (reordering). Undo the reduction (RFC 4015) and leave recovery.
        this.#ctx.stats.spuriousRecoveries++;
        this.congestion.undoReduction();
        this.#recovery = Recovery.None;
        this.#dupAcks = 0;
        this.#renoSacked = 0;
        this.#rtxCount = 0;
        this.#lostRetransmission = false;
        this.#recoveryFence = this.sndUna;
      }
      this.#recoveryTsVal = this.#recovery === Recovery.None ? -1 : this.#recoveryTsVal;
      const endedFastRecovery = this.#recovery === Recovery.Fast && seqGe(ack, this.#recoveryPoint);
      if (this.#recovery !== Recovery.None && seqGe(ack, this.#recoveryPoint)) {
        // Full acknowledgment: recovery ends (RFC 6582 §3.2 step 3, RFC 6675 §5).
        this.#recovery = Recovery.None;
        this.#dupAcks = 0;
        this.#renoSacked = 0;
      } else if (this.#recovery === Recovery.Fast) {
        // Partial acknowledgment.
        if (!this.#sackActive()) {
          // RFC 6582 §3.2 step 5: retransmit the first unacknowledged segment; deflate.
          this.#highRxt = ack;
          this.#lossBoundary = seqMin(seqAdd(ack, mss), this.sndNxt);
          this.#renoSacked = Math.max(0, this.#renoSacked - Math.max(0, acked - mss));
          this.#forceRetransmit = true;
        } else {
          this.#lossBoundary = seqMax(this.#lossBoundary, this.#scoreboard.lossBoundary(ack, mss));
        }
      } else if (this.#recovery === Recovery.Timeout) {
        if (this.#sackActive()) {
          this.#lossBoundary = seqMax(this.#lossBoundary, this.#scoreboard.lossBoundary(ack, mss));
        }
      }
      if (this.#recovery !== Recovery.Fast && !endedFastRecovery) {
        // The ACK ending fast recovery leaves cwnd at ssthresh (RFC 6582 §3.2 step 3, RFC 6675 §5).
        this.congestion.onAck(
          acked,
          now,
          this.rtt.srtt,
          this.#cwndLimited || flightBefore >= this.congestion.cwnd,
        );
        this.#dupAcks = 0;
      }
      // RFC 6298 §5.2/5.3: stop the timer when all is acknowledged, else restart it.
      this.#rtoDeadline = this.sndUna === this.sndNxt ? Infinity : now + this.rtt.rto;
      if (this.#finSent && seqGt(ack, this.#finSeq)) this.#onFinAcked(now);
      if (this.state === "CLOSED") return;
    } else if (acked === 0 && this.sndUna !== this.sndNxt) {
      // RFC 5681 §2 duplicate ACK: no data, no window change, outstanding data. RFC 6675: or new SACK info.
      let newlySacked = 0;
      if (this.#sackActive() && opts.sackBlockCount > 0) {
        newlySacked = this.#scoreboard.update(opts.sackBlocks, opts.sackBlockCount, this.sndUna, this.sndNxt);
      }
      const duplicate = dataLength === 0 && !fin && window === this.sndWnd;
      if (duplicate || newlySacked > 0) {
        if (this.#recovery === Recovery.None) {
          this.#dupAcks++;
          // The probe was delivered while everything sent before it is still missing: that was lost
          // (RACK's "sent earlier than a delivered segment" rule, RFC 8985 §6.2, for the probe only).
          const probeDelivered = this.#probeOutstanding && this.#sackActive() &&
            seqGt(this.#probeSeq, this.sndUna) && this.#scoreboard.isSacked(this.#probeSeq);
          const lostBySack = this.#sackActive() &&
            (probeDelivered || this.#scoreboard.lossBoundary(this.sndUna, mss) !== this.sndUna);
          // RFC 6582 §3.2 step 1 / RFC 6675 §5 step 4: only once per window of data (the "recover" fence).
          if (
            (this.#dupAcks >= this.#dupThreshold() || lostBySack) && seqGe(this.sndUna, this.#recoveryFence)
          ) {
            this.#enterFastRecovery(now);
          }
        } else if (this.#recovery === Recovery.Fast) {
          if (this.#sackActive()) {
            this.#lossBoundary = seqMax(this.#lossBoundary, this.#scoreboard.lossBoundary(this.sndUna, mss));
          } else if (duplicate) {
            // RFC 6582 §3.2 step 4: each further duplicate means a segment left the network.
            this.#renoSacked = Math.min((this.sndNxt - this.sndUna) >>> 0, this.#renoSacked + mss);
          }
        } else if (this.#sackActive()) {
          this.#lossBoundary = seqMax(this.#lossBoundary, this.#scoreboard.lossBoundary(this.sndUna, mss));
        }
      }
    }

    if (this.#recovery === Recovery.Fast && this.#sackActive()) this.#detectLostRetransmission();

    // Window update (RFC 9293 §3.10.7.4: SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK)).
    if (seqLt(this.#sndWl1, seq) || (this.#sndWl1 === seq && seqLe(this.#sndWl2, ack))) {
      const opened = window > this.sndWnd;
      this.sndWnd = window;
      this.#sndWl1 = seq;
      this.#sndWl2 = ack;
      if (window > this.#maxSndWnd) this.#maxSndWnd = window;
      if (window > 0 && opened) {
        this.#persistDeadline = Infinity;
        this.#persistBackoff = 0;
      }
    }
  }

  #onFinAcked(now: number): void {
    switch (this.state) {
      case "FIN_WAIT_1":
        this.state = "FIN_WAIT_2";
        if (this.#appClosed) this.#finWait2Deadline = now + this.#ctx.config.finWait2TimeoutMs;
        break;
      case "CLOSING":
        this.#enterTimeWait(now);
        break;
      case "LAST_ACK":
        this.#enterClosed(null);
        break;
    }
  }

  /**
   * Remembers a retransmission in fast recovery with the SND.NXT of that moment, to detect its loss:
   * once the peer SACKs a full segment sent after it while it is still missing, the retransmission was
   * lost too (the idea of Linux's tcp_mark_lost_retrans and of RACK, RFC 8985, without RACK's reordering
   * window: a reordered retransmission costs one needless resend). A DupThresh-segment margin left
   * twice as many RTOs in a low-RTT 5 %-loss simulation, where windows are small after losses.
   */
  #recordRetransmission(start: number, end: number): void {
    if (this.#recovery !== Recovery.Fast || !this.#sackActive()) return;
    const cap = this.#rtxStart.length;
    if (this.#rtxCount === cap) {
      // Full: forget the oldest record (its loss will then be found by the RTO instead).
      this.#rtxHead = (this.#rtxHead + 1) % cap;
      this.#rtxCount--;
    }
    const i = (this.#rtxHead + this.#rtxCount) % cap;
    this.#rtxStart[i] = start;
    this.#rtxEnd[i] = end;
    this.#rtxSentAtNxt[i] = this.sndNxt;
    this.#rtxCount++;
  }

  /** Checks the oldest outstanding retransmission for loss (see {@link #recordRetransmission}). */
  #detectLostRetransmission(): void {
    const cap = this.#rtxStart.length;
    while (this.#rtxCount > 0) {
      const i = this.#rtxHead;
      const start = seqMax(this.#rtxStart[i], this.sndUna);
      const end = this.#rtxEnd[i];
      if (seqLt(start, end) && this.#scoreboard.unsackedBytes(start, end) > 0) break;
      this.#rtxHead = (i + 1) % cap;
      this.#rtxCount--;
    }
    if (this.#rtxCount === 0 || this.#lostRetransmission) return;
    const i = this.#rtxHead;
    const threshold = seqAdd(this.#rtxSentAtNxt[i], this.sendMss);
    if (seqGe(this.#scoreboard.highestSacked(this.sndUna), threshold)) {
      this.#lostRetransmission = true;
    }
  }

  /** Sends the oldest retransmission again after {@link #detectLostRetransmission} found it lost. */
  #resendLostRetransmission(now: number, out: Ipv4Sink): boolean {
    this.#lostRetransmission = false;
    if (this.#rtxCount === 0 || this.#recovery !== Recovery.Fast) return false;
    const i = this.#rtxHead;
    const seq = this.#scoreboard.nextUnsacked(seqMax(this.#rtxStart[i], this.sndUna));
    const end = this.#rtxEnd[i];
    if (!seqLt(seq, end)) return false;
    const limit = seqMin(end, this.#scoreboard.nextSackedStart(seq, end));
    const dataEnd = seqAdd(this.#sndBufSeq, this.#sendBuffer.length);
    const length = Math.max(0, Math.min(this.sendMss, (seqMin(limit, dataEnd) - seq) | 0));
    const fin = this.#finSent && seqAdd(seq, length) === this.#finSeq && seqLt(this.#finSeq, limit);
    if (length === 0 && !fin) return false;
    this.#emit(out, now, seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0), length, true);
    this.#ctx.stats.retransmissions++;
    this.#ctx.stats.lostRetransmissions++;
    this.#rtxSentAtNxt[i] = this.sndNxt;
    if (this.#rtoDeadline === Infinity) this.#rtoDeadline = now + this.rtt.rto;
    return true;
  }

  /**
   * The duplicate-ACK threshold: DupThresh, lowered by Early Retransmit (RFC 5827 §3.1) to one less than
   * the outstanding segments when fewer than four are outstanding and no new data can be sent (so too
   * few duplicate ACKs could ever arrive). Only with SACK (RFC 5827 §3.2's conservative variant).
   */
  #dupThreshold(): number {
    if (!this.#sackActive()) return DUP_THRESH;
    const mss = this.sendMss;
    const outstanding = Math.ceil(((this.sndNxt - this.sndUna) >>> 0) / mss);
    if (outstanding >= 4) return DUP_THRESH;
    const unsent = this.#unsentBytes();
    const room = (seqAdd(this.sndUna, this.sndWnd) - this.sndNxt) | 0;
    if (unsent > 0 && room >= Math.min(unsent, mss)) return DUP_THRESH;
    return Math.max(1, outstanding - 1);
  }

  #enterFastRecovery(now: number): void {
    this.#ptoDeadline = Infinity;
    this.#recoveryTsVal = this.timestampsEnabled ? this.#tsNow(now) : -1;
    this.#rtxCount = 0;
    this.#lostRetransmission = false;
    const mss = this.sendMss;
    this.#ctx.stats.fastRecoveries++;
    this.#recovery = Recovery.Fast;
    this.#recoveryPoint = this.sndNxt;
    this.#recoveryFence = this.sndNxt;
    this.congestion.onCongestionEvent(now, (this.sndNxt - this.sndUna) >>> 0);
    this.#highRxt = this.sndUna;
    let boundary = seqMin(seqAdd(this.sndUna, mss), this.sndNxt);
    if (this.#sackActive()) boundary = seqMax(boundary, this.#scoreboard.lossBoundary(this.sndUna, mss));
    if (this.#probeOutstanding && this.#sackActive() && this.#scoreboard.isSacked(this.#probeSeq)) {
      boundary = seqMax(boundary, this.#probeSeq); // everything sent before the delivered probe
    }
    this.#lossBoundary = boundary;
    this.#renoSacked = this.#sackActive() ? 0 : Math.min(DUP_THRESH * mss, (this.sndNxt - this.sndUna) >>> 0);
    this.#forceRetransmit = true; // RFC 6675 §5 step 4.3 / RFC 5681 §3.2 step 2: retransmit now
    this.#rescueDone = false;
    this.#probeOutstanding = false;
    this.#rttTime = -1; // Karn
  }

  #sackActive(): boolean {
    return this.sackEnabled;
  }

  #receiveData(bytes: Uint8Array, seq: number, offset: number, length: number, now: number): void {
    const stats = this.#ctx.stats;
    const rel = (seq - this.rcvNxt) >>> 0;
    const space = this.#recvBuffer.free - rel;
    if (space <= 0) {
      stats.drop("buffer-full");
      this.#ackNow = true;
      return;
    }
    if (length > space) length = space;
    if (rel === 0) {
      const hadHoles = this.#reassembly.rangeCount > 0;
      this.#recvBuffer.writeAt(0, bytes, offset, length);
      const inOrderEnd = seqAdd(this.rcvNxt, length);
      const next = hadHoles ? this.#reassembly.advance(inOrderEnd) : inOrderEnd;
      const delivered = (next - this.rcvNxt) >>> 0;
      this.#recvBuffer.commit(delivered);
      this.rcvNxt = next;
      stats.bytesIn += delivered;
      if (this.#appClosed) {
        this.#recvBuffer.discard(this.#recvBuffer.length);
      } else {
        this.#events |= TcpEvent.READABLE;
      }
      if (hadHoles) {
        this.#ackNow = true; // RFC 5681 §4.2: ACK at once when a gap is (partly) filled
      } else {
        // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK at least every second full-size segment, else delay.
        const full = this.#advertisedMss - (this.timestampsEnabled ? 12 : 0);
        this.#unackedSegments += length >= full ? Math.floor(length / full) : 1;
        if (this.#unackedSegments >= 2) this.#ackNow = true;
        else if (this.#delayedAckDeadline === Infinity) {
          this.#delayedAckDeadline = now + this.#ctx.config.delayedAckMs;
        }
      }
    } else {
      if (!this.#reassembly.add(seq, length)) {
        stats.drop("ooo-queue-full");
        this.#ackNow = true;
        return;
      }
      this.#recvBuffer.writeAt(rel, bytes, offset, length);
      this.#ackNow = true; // RFC 5681 §4.2: out-of-order data triggers an immediate (duplicate) ACK
    }
  }

  #processFin(now: number): void {
    this.#peerFin = true;
    this.#pendingPeerFin = false;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.#ackNow = true;
    this.#events |= TcpEvent.EOF | TcpEvent.READABLE;
    switch (this.state) {
      case "SYN_RECEIVED":
      case "ESTABLISHED":
        this.state = "CLOSE_WAIT";
        break;
      case "FIN_WAIT_1":
        // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2): simultaneous close.
        this.state = "CLOSING";
        break;
      case "FIN_WAIT_2":
        this.#enterTimeWait(now);
        break;
    }
  }

  #enterTimeWait(now: number): void {
    this.state = "TIME_WAIT";
    // Nothing more can be sent or received: free the stores (unread bytes stay readable).
    this.#sendBuffer.release();
    if (this.#recvBuffer.length === 0) this.#recvBuffer.release();
    this.#reassembly.clear();
    this.#scoreboard.clear();
    this.#timeWaitDeadline = now + this.#ctx.config.timeWaitMs;
    this.#rtoDeadline = Infinity;
    this.#ptoDeadline = Infinity;
    this.#persistDeadline = Infinity;
    this.#keepaliveDeadline = Infinity;
    this.#finWait2Deadline = Infinity;
    this.#delayedAckDeadline = Infinity;
  }

  #enterClosed(error: TcpCloseError | null): void {
    if (this.state === "CLOSED") return;
    this.state = "CLOSED";
    this.#sendBuffer.release();
    if (this.#recvBuffer.length === 0) this.#recvBuffer.release();
    this.#reassembly.clear();
    if (this.error === null) this.error = error;
    this.#rtoDeadline = Infinity;
    this.#ptoDeadline = Infinity;
    this.#persistDeadline = Infinity;
    this.#keepaliveDeadline = Infinity;
    this.#timeWaitDeadline = Infinity;
    this.#finWait2Deadline = Infinity;
    this.#delayedAckDeadline = Infinity;
    this.#events |= TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE;
  }

  /** Whether this TIME-WAIT connection may be replaced by a new SYN (RFC 6191 §2 / RFC 9293 §3.10.7.4). */
  acceptsNewIncarnation(seg: TcpSegment, opts: TcpOptions): boolean {
    if (this.state !== "TIME_WAIT") return false;
    if (this.timestampsEnabled && opts.hasTimestamps) return seqGt(opts.tsVal, this.#tsRecent);
    return seqGt(seg.seq, this.rcvNxt);
  }

  // ───────────────────────────── timers ─────────────────────────────

  /**
   * Runs expired timers and pending output at `now`; returns the next deadline (or null when it only
   * waits for input). After it returns with {@link state} CLOSED the layer forgets the connection.
   */
  poll(now: number, out: Ipv4Sink): number | null {
    if (!this.#outputPending && !this.#pendingRst && this.#events === 0) {
      // Fast path: nothing queued by the application and no timer due.
      const due = this.nextDeadline();
      if (due === null || now < due) return due;
    }
    this.#outputPending = false;
    this.#flushReset(out);
    if (this.#appClosed && this.state === "FIN_WAIT_2" && this.#finWait2Deadline === Infinity) {
      this.#finWait2Deadline = now + this.#ctx.config.finWait2TimeoutMs;
    }
    if (this.state !== "CLOSED") {
      if (now >= this.#timeWaitDeadline) this.#enterClosed(null);
      else if (now >= this.#finWait2Deadline) this.#enterClosed(null);
    }
    if (this.state !== "CLOSED") {
      if (now >= this.#rtoDeadline) this.#onRetransmissionTimeout(now);
      if (now >= this.#ptoDeadline) this.#onProbeTimeout(now, out);
      if (now >= this.#persistDeadline) this.#onPersistTimeout(now, out);
      if (now >= this.#keepaliveDeadline) this.#onKeepaliveTimeout(now, out);
      if (now >= this.#delayedAckDeadline) this.#ackNow = true;
      this.#output(now, out);
    }
    this.#flushEvents();
    return this.nextDeadline();
  }

  /** The earliest armed timer, or null. */
  nextDeadline(): number | null {
    if (this.state === "CLOSED") return null;
    const d = Math.min(
      this.#rtoDeadline,
      this.#ptoDeadline,
      this.#delayedAckDeadline,
      this.#persistDeadline,
      this.#keepaliveDeadline,
      this.#timeWaitDeadline,
      this.#finWait2Deadline,
    );
    return d === Infinity ? null : d;
  }

  #onRetransmissionTimeout(now: number): void {
    const config = this.#ctx.config;
    const stats = this.#ctx.stats;
    stats.rtoExpirations++;
    this.#rtoDeadline = Infinity;
    this.#ptoDeadline = Infinity;
    this.#probeOutstanding = false;
    this.#retries++;
    const handshake = this.state === "SYN_SENT" || this.state === "SYN_RECEIVED";
    if (this.#retries > (handshake ? config.maxSynRetries : config.maxRetries)) {
      stats.timeouts++;
      this.#enterClosed("timeout");
      return;
    }
    this.rtt.onTimeout(); // RFC 6298 §5.5
    this.#rttTime = -1; // Karn
    if (handshake) {
      if (this.state === "SYN_SENT") this.sndNxt = this.iss; // resend the SYN
      else this.#synAckDue = true;
      return;
    }
    if (this.sndUna === this.sndNxt) return;
    const first = this.#recovery !== Recovery.Timeout;
    this.congestion.onRetransmissionTimeout(now, (this.sndNxt - this.sndUna) >>> 0, first);
    // RFC 2018 §8: after repeated timeouts, stop trusting SACK information (the receiver may renege).
    if (!first) this.#scoreboard.clear();
    // Timeouts are not undone by Eifel detection: restoring the window after a spurious RTO made
    // transfers under heavy random loss slower in the simulation (mean 13.2 s vs 9.7 s, 80 seeds).
    this.#recoveryTsVal = -1;
    this.#recovery = Recovery.Timeout;
    this.#recoveryPoint = this.sndNxt;
    this.#recoveryFence = this.sndNxt;
    this.#highRxt = this.sndUna;
    this.#lossBoundary = this.sndNxt; // everything outstanding and not SACKed is presumed lost
    this.#dupAcks = 0;
    this.#renoSacked = 0;
    this.#forceRetransmit = true; // RFC 6298 §5.4: retransmit the earliest unacknowledged segment
  }

  /**
   * Arms the tail loss probe (RFC 8985 §7.2): PTO = 2·SRTT, plus a worst-case delayed-ACK time when
   * one segment is outstanding, and never after the RTO. Only outside recovery, with SACK, and once per
   * flight until an ACK advances.
   */
  #armProbe(now: number): void {
    this.#ptoDeadline = Infinity;
    if (this.#recovery !== Recovery.None || !this.#sackActive() || this.#probeOutstanding) return;
    const flight = (this.sndNxt - this.sndUna) >>> 0;
    if (flight === 0 || this.rtt.srtt < 0) return;
    let pto = 2 * this.rtt.srtt;
    if (flight <= this.sendMss) pto += WORST_CASE_DELAYED_ACK_MS;
    pto = Math.max(pto, MIN_PTO_MS);
    const deadline = now + pto;
    if (deadline < this.#rtoDeadline) this.#ptoDeadline = deadline;
  }

  /**
   * The probe timeout fired (RFC 8985 §7.3): send one new segment if the windows allow, else retransmit
   * the last segment, so that the peer's (S)ACK reveals a lost tail to fast recovery instead of an RTO.
   */
  #onProbeTimeout(now: number, out: Ipv4Sink): void {
    this.#ptoDeadline = Infinity;
    if (
      this.#recovery !== Recovery.None || this.sndUna === this.sndNxt ||
      !SYNCHRONIZED_SEND_STATES.has(this.state)
    ) {
      return;
    }
    const mss = this.sendMss;
    const unsent = this.#unsentBytes();
    const room = (seqAdd(this.sndUna, this.sndWnd) - this.sndNxt) | 0;
    let probed = false;
    if (unsent > 0 && room > 0) {
      const before = this.sndNxt;
      probed = this.#sendNewData(now, out, Math.min(unsent, mss, room));
      this.#probeSeq = before;
    }
    if (!probed) {
      const dataEnd = seqAdd(this.#sndBufSeq, this.#sendBuffer.length);
      const end = this.#finSent ? this.#finSeq : this.sndNxt;
      const seq = seqMax(this.sndUna, seqAdd(seqMin(end, dataEnd), -mss));
      const length = Math.max(0, (seqMin(end, dataEnd) - seq) | 0);
      const fin = this.#finSent;
      if (length === 0 && !fin) return;
      this.#emit(out, now, seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0), length, true);
      this.#ctx.stats.retransmissions++;
      this.#probeSeq = seq;
    }
    this.#ctx.stats.tailLossProbes++;
    this.#probeOutstanding = true;
    this.#rtoDeadline = now + this.rtt.rto; // RFC 8985 §7.3: the RTO follows the probe
  }

  #onPersistTimeout(now: number, out: Ipv4Sink): void {
    const config = this.#ctx.config;
    this.#persistDeadline = Infinity;
    if (!SYNCHRONIZED_SEND_STATES.has(this.state)) return;
    if (this.#probesUnanswered >= config.maxRetries) {
      this.#ctx.stats.timeouts++;
      this.#enterClosed("timeout");
      return;
    }
    const unsent = this.#unsentBytes();
    const usable = (this.sndUna + this.sndWnd - this.sndNxt) | 0;
    if (unsent > 0 && usable > 0 && this.sndUna === this.sndNxt) {
      // The window is open but too small for the sender SWS rules: the override timer fired
      // (RFC 9293 §3.8.6.2.1), send what fits.
      this.#sendNewData(now, out, Math.min(unsent, usable, this.#sendSegmentLimit(out)));
    } else {
      // RFC 9293 §3.8.6.1 zero-window probe, in Linux's form: an old sequence number that forces an ACK.
      this.#ctx.stats.windowProbes++;
      this.#emit(out, now, seqAdd(this.sndUna, -1), TcpFlags.ACK, 0, false);
    }
    this.#probesUnanswered++;
    this.#persistBackoff++;
  }

  #onKeepaliveTimeout(now: number, out: Ipv4Sink): void {
    const config = this.#ctx.config;
    this.#keepaliveDeadline = Infinity;
    if (this.state !== "ESTABLISHED" && this.state !== "CLOSE_WAIT") return;
    if (this.sndUna !== this.sndNxt) return; // data in flight: the RTO watches the peer
    if (this.#keepalivesUnanswered >= config.keepaliveCount) {
      this.#ctx.stats.timeouts++;
      this.#enterClosed("timeout");
      return;
    }
    // RFC 9293 §3.8.4: SEG.SEQ = SND.NXT − 1, no data (Linux form).
    this.#ctx.stats.keepaliveProbes++;
    this.#emit(out, now, seqAdd(this.sndNxt, -1), TcpFlags.ACK, 0, false);
    this.#keepalivesUnanswered++;
    this.#keepaliveDeadline = now + config.keepaliveIntervalMs;
  }

  #flushEvents(): void {
    const events = this.#events;
    if (events === 0) return;
    this.#events = 0;
    this.onEvent?.(this, events);
  }

  // ───────────────────────────── output ─────────────────────────────

  #unsentBytes(): number {
    if (this.#finSent) return 0;
    return (seqAdd(this.#sndBufSeq, this.#sendBuffer.length) - this.sndNxt) | 0;
  }

  /**
   * Largest payload of one emitted segment: the configured `maxSendSegment` when larger than the MSS,
   * else with a segmentation-offloading link (TSO) whole MSS multiples up to what fits a 64 KiB IPv4
   * packet, else the MSS.
   */
  #sendSegmentLimit(out: Ipv4Sink): number {
    const mss = this.sendMss;
    const configured = this.#ctx.config.maxSendSegment;
    if (configured > mss) return Math.min(configured, MAX_TSO_PAYLOAD);
    if (out.offloads === true) return Math.max(mss, Math.floor(MAX_TSO_PAYLOAD / mss) * mss);
    return mss;
  }

  /** RFC 6675 §4 pipe: bytes presumed in the network. */
  #pipe(): number {
    const outstanding = (this.sndNxt - this.sndUna) >>> 0;
    const sack = this.#sackActive();
    if (this.#recovery === Recovery.None) {
      // Outside recovery SACKed (or duplicate-ACKed) bytes have left the network: this is limited
      // transmit (RFC 3042) generalised, as Linux's packets_in_flight.
      const left = sack ? this.#scoreboard.sackedBytes : Math.min(this.#dupAcks, 2) * this.sendMss;
      return Math.max(0, outstanding - left);
    }
    const sacked = sack ? this.#scoreboard.sackedBytes : this.#renoSacked;
    const from = seqMax(this.#highRxt, this.sndUna);
    const lostNotRetransmitted = sack
      ? this.#scoreboard.unsackedBytes(from, this.#lossBoundary)
      : Math.max(0, (this.#lossBoundary - from) | 0);
    return Math.max(0, outstanding - sacked - lostNotRetransmitted);
  }

  #output(now: number, out: Ipv4Sink): void {
    this.#flushReset(out);
    const state = this.state;
    if (state === "CLOSED") return;
    if (state === "SYN_SENT") {
      if (this.sndNxt === this.iss) this.#sendSyn(now, out, false);
      return;
    }
    if (state === "SYN_RECEIVED") {
      if (this.sndNxt === this.iss || this.#synAckDue) {
        this.#synAckDue = false;
        this.#sendSyn(now, out, true);
      } else if (this.#ackNow) {
        this.#emit(out, now, this.sndNxt, TcpFlags.ACK, 0, false);
      }
      return;
    }
    let sent = false;
    if (SYNCHRONIZED_SEND_STATES.has(state)) {
      if (this.#lostRetransmission) sent = this.#resendLostRetransmission(now, out);
      if (this.#recovery !== Recovery.None && this.#sendRetransmissions(now, out)) sent = true;
      const sentNew = this.#sendNewData(now, out, -1);
      if (sentNew) sent = true;
      if (sentNew || this.#ackAdvanced) this.#armProbe(now);
      this.#ackAdvanced = false;
      if (this.#recovery === Recovery.Fast && this.#sackActive() && this.#sendRecoveryExtras(now, out)) {
        sent = true;
      }
      // Persist timer (RFC 9293 §3.8.6.1): data waits, nothing in flight to elicit ACKs.
      if (
        this.#persistDeadline === Infinity && this.sndUna === this.sndNxt &&
        (this.#unsentBytes() > 0 || (this.#finQueued && !this.#finSent))
      ) {
        const base = Math.max(this.rtt.rto, this.#ctx.config.rtoMinMs);
        this.#persistDeadline = now + Math.min(this.#ctx.config.rtoMaxMs, base * 2 ** this.#persistBackoff);
      }
      if (this.#ctx.config.keepalive && this.#keepaliveDeadline === Infinity && state !== "LAST_ACK") {
        this.#keepaliveDeadline = now + this.#ctx.config.keepaliveIdleMs;
      }
    }
    if (!sent && this.#ackNow) this.#emit(out, now, this.sndNxt, TcpFlags.ACK, 0, false);
  }

  #sendRetransmissions(now: number, out: Ipv4Sink): boolean {
    const sack = this.#sackActive();
    let sent = false;
    const cwnd = this.congestion.cwnd;
    while (true) {
      if (!this.#forceRetransmit && this.#pipe() + this.sendMss > cwnd) break;
      let seq = seqMax(this.#highRxt, this.sndUna);
      if (sack) seq = this.#scoreboard.nextUnsacked(seq);
      if (!seqLt(seq, this.#lossBoundary)) break;
      let limit = this.#lossBoundary;
      if (sack) limit = seqMin(limit, this.#scoreboard.nextSackedStart(seq, limit));
      const dataEnd = seqAdd(this.#sndBufSeq, this.#sendBuffer.length);
      let length = Math.min(this.sendMss, (seqMin(limit, dataEnd) - seq) | 0);
      if (length < 0) length = 0;
      const fin = this.#finSent && seqAdd(seq, length) === this.#finSeq && seqLt(this.#finSeq, limit);
      if (length === 0 && !fin) break;
      this.#emit(out, now, seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0), length, true);
      this.#ctx.stats.retransmissions++;
      this.#highRxt = seqAdd(seq, length + (fin ? 1 : 0));
      this.#recordRetransmission(seq, this.#highRxt);
      this.#forceRetransmit = false;
      if (this.#rtoDeadline === Infinity) this.#rtoDeadline = now + this.rtt.rto;
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
    if (this.#pipe() + mss > this.congestion.cwnd) return false;
    const from = this.#scoreboard.nextUnsacked(seqMax(this.#highRxt, this.sndUna));
    const highSack = this.#scoreboard.highestSacked(this.sndUna);
    let seq: number;
    let limit: number;
    if (seqLt(from, highSack)) {
      seq = from;
      limit = seqMin(highSack, this.#scoreboard.nextSackedStart(from, highSack));
    } else if (!this.#rescueDone && seqLt(this.sndUna, this.sndNxt)) {
      this.#rescueDone = true;
      limit = this.sndNxt;
      seq = seqMax(seqMax(seqAdd(this.sndNxt, -mss), this.sndUna), from);
      if (!seqLt(seq, limit)) return false;
    } else {
      return false;
    }
    const dataEnd = seqAdd(this.#sndBufSeq, this.#sendBuffer.length);
    const length = Math.max(0, Math.min(mss, (seqMin(limit, dataEnd) - seq) | 0));
    const fin = this.#finSent && seqAdd(seq, length) === this.#finSeq && seqLt(this.#finSeq, limit);
    if (length === 0 && !fin) return false;
    this.#emit(out, now, seq, TcpFlags.ACK | (fin ? TcpFlags.FIN : 0), length, true);
    this.#ctx.stats.retransmissions++;
    this.#highRxt = seqMax(this.#highRxt, seqAdd(seq, length + (fin ? 1 : 0)));
    this.#recordRetransmission(seq, seqAdd(seq, length + (fin ? 1 : 0)));
    if (this.#rtoDeadline === Infinity) this.#rtoDeadline = now + this.rtt.rto;
    return true;
  }

  /** Sends new data (and the FIN) as window, cwnd, Nagle and SWS allow; `forced` > 0 overrides them. */
  #sendNewData(now: number, out: Ipv4Sink, forced: number): boolean {
    const mss = this.sendMss;
    const segmentLimit = this.#sendSegmentLimit(out);
    let sent = false;
    this.#cwndLimited = false;
    while (!this.#finSent) {
      const unsent = this.#unsentBytes();
      const wantFin = this.#finQueued;
      if (unsent === 0 && !wantFin) break;
      const windowRoom = (seqAdd(this.sndUna, this.sndWnd) - this.sndNxt) | 0;
      const cwndRoom = this.congestion.cwnd - this.#pipe();
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
          if (length < (this.#maxSndWnd >> 1)) break;
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
      if (this.#rttTime < 0 && !this.timestampsEnabled && length > 0) {
        this.#rttSeq = this.sndNxt;
        this.#rttTime = now;
      }
      this.#emit(
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
        this.#finSent = true;
        this.#finSeq = seqAdd(this.sndNxt, -1);
      }
      if (this.#rtoDeadline === Infinity) this.#rtoDeadline = now + this.rtt.rto; // RFC 6298 §5.1
      this.#persistDeadline = Infinity;
      sent = true;
    }
    return sent;
  }

  #sendSyn(now: number, out: Ipv4Sink, withAck: boolean): void {
    // Time the SYN (Karn: only the first transmission) in case timestamps are not negotiated.
    if (this.#retries === 0) {
      this.#rttSeq = this.iss;
      this.#rttTime = now;
    }
    this.#emit(out, now, this.iss, TcpFlags.SYN | (withAck ? TcpFlags.ACK : 0), 0, false);
    this.sndNxt = seqAdd(this.iss, 1);
    if (this.#rtoDeadline === Infinity) this.#rtoDeadline = now + this.rtt.rto;
  }

  #tsNow(now: number): number {
    return (Math.floor(now) + this.#tsOffset) >>> 0;
  }

  #swsThreshold(): number {
    return Math.min(this.#ctx.config.recvBufferSize >> 1, this.#advertisedMss);
  }

  /** Free receive space we could advertise, bounded by what the window field can express. */
  #freeWindow(): number {
    const free = Math.max(0, this.#ctx.config.recvBufferSize - this.#recvBuffer.length);
    const max = 65535 * (1 << this.rcvScale);
    return free < max ? free : max;
  }

  /** The window field for a non-SYN segment; moves the advertised right edge (never left). */
  #windowField(): number {
    const current = Math.max(0, (this.#rcvAdvEdge - this.rcvNxt) | 0);
    let window = this.#freeWindow();
    // Receiver SWS avoidance (RFC 9293 §3.8.6.2.2): move the right edge only by a useful amount.
    if (window - current < this.#swsThreshold()) window = current;
    let field = window >>> this.rcvScale;
    if (field * (1 << this.rcvScale) < current) field = Math.ceil(current / (1 << this.rcvScale));
    if (field > 65535) field = 65535;
    const edge = seqAdd(this.rcvNxt, field * (1 << this.rcvScale));
    if (seqGt(edge, this.#rcvAdvEdge)) this.#rcvAdvEdge = edge;
    return field;
  }

  /**
   * Writes and sends one segment carrying `length` bytes of the send buffer starting at `seq`
   * (`withData`), or none. Every segment after the SYN carries ACK, window and timestamps.
   */
  #emit(out: Ipv4Sink, now: number, seq: number, flags: number, length: number, withData: boolean): void {
    const buf = this.#ctx.scratch;
    const tcpOffset = IPV4_HEADER_LENGTH;
    const syn = (flags & TcpFlags.SYN) !== 0;
    let o = tcpOffset + TCP_HEADER_LENGTH;
    let window: number;
    if (syn) {
      // RFC 7323 §2.2: a SYN's window is unscaled; the option order follows Linux.
      window = Math.min(65535, this.#freeWindow());
      this.#rcvAdvEdge = seqAdd(this.rcvNxt, window);
      const config = this.#ctx.config;
      o = writeMssOption(buf, o, this.#advertisedMss);
      // Before the peer's SYN we offer what we are configured for; after it, what was negotiated.
      const offerScale = this.state === "SYN_SENT" ? config.windowScaling : this.#windowScalingOk;
      const echo = this.state === "SYN_SENT" ? 0 : this.#tsRecent;
      if (this.sackEnabled) o = writeSackPermittedOption(buf, o);
      if (this.timestampsEnabled) o = writeTimestampsOption(buf, o, this.#tsNow(now), echo);
      if (offerScale) o = writeWindowScaleOption(buf, o, this.rcvScale);
    } else {
      window = this.#windowField();
      if (this.timestampsEnabled) o = writeTimestampsOption(buf, o, this.#tsNow(now), this.#tsRecent);
      if (this.sackEnabled && this.#reassembly.rangeCount > 0 && (flags & TcpFlags.ACK)) {
        // RFC 2018 §3: as many blocks as fit (3 next to timestamps, else 4).
        const max = this.timestampsEnabled ? 3 : 4;
        const n = this.#reassembly.sackBlocks(this.#sackOut, max);
        o = writeSackOption(buf, o, this.#sackOut, n);
      }
    }
    const optionsLength = o - tcpOffset - TCP_HEADER_LENGTH;
    writeTcpHeader(
      buf,
      tcpOffset,
      this.localPort,
      this.remotePort,
      seq,
      flags & TcpFlags.ACK ? this.rcvNxt : 0,
      flags,
      window,
      optionsLength,
    );
    if (withData && length > 0) {
      this.#sendBuffer.copyOut((seq - this.#sndBufSeq) >>> 0, buf, o, length);
    } else {
      length = 0;
    }
    const tcpLength = TCP_HEADER_LENGTH + optionsLength + length;
    const offload = out.offloads === true;
    if (offload) {
      // Checksum offload: the field holds the folded pseudo-header sum; the device completes it.
      const sum = foldSum(
        ipv4PseudoHeaderSum(this.localAddress, this.remoteAddress, IpProtocol.TCP, tcpLength),
      );
      buf[tcpOffset + 16] = sum >> 8;
      buf[tcpOffset + 17] = sum & 0xff;
    } else {
      fillTcpChecksum(buf, tcpOffset, tcpLength, this.localAddress, this.remoteAddress);
    }
    writeIpv4Header(buf, 0, this.localAddress, this.remoteAddress, IpProtocol.TCP, tcpLength);
    const total = IPV4_HEADER_LENGTH + tcpLength;
    let view = this.#cachedView;
    if (view === null || view.length !== total || view.buffer !== buf.buffer) {
      view = buf.subarray(0, total);
      this.#cachedView = view;
    }
    if (flags & TcpFlags.ACK) {
      this.#ackNow = false;
      this.#delayedAckDeadline = Infinity;
      this.#unackedSegments = 0;
      this.#lastAckSent = this.rcvNxt;
    }
    const stats = this.#ctx.stats;
    stats.segmentsOut++;
    stats.bytesOut += length;
    if (offload) {
      // A payload above the MSS is a super-segment the device cuts into MSS-sized segments (TSO).
      out.sendIpv4(view, TX_CHECKSUM_PARTIAL, length > this.sendMss ? this.sendMss : 0);
    } else {
      out.sendIpv4(view);
    }
  }

  /** Queues a RST (sent by the next output pass, which every ingress and poll ends with). */
  #rstAt(seq: number, ack: number, withAck: boolean): void {
    this.#pendingRst = true;
    this.#pendingRstSeq = seq;
    this.#pendingRstAck = ack;
    this.#pendingRstWithAck = withAck;
  }

  #flushReset(out: Ipv4Sink): void {
    if (!this.#pendingRst) return;
    this.#pendingRst = false;
    const stats = this.#ctx.stats;
    stats.resetsOut++;
    stats.segmentsOut++;
    sendReset(
      this.#ctx.scratch,
      out,
      this.localAddress,
      this.localPort,
      this.remoteAddress,
      this.remotePort,
      this.#pendingRstSeq,
      this.#pendingRstAck,
      this.#pendingRstWithAck,
    );
    this.#cachedView = null;
  }
}

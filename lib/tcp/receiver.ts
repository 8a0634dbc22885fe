/**
 * The receive side of a TCP connection: the receive sequence variables, the segment acceptability test
 * and trimming (RFC 9293 §3.10.7.4), PAWS (RFC 7323 §5), reassembly into the receive buffer, the
 * advertised window with receiver SWS avoidance (RFC 9293 §3.8.6.2.2), delayed ACKs (RFC 9293 §3.8.6.3,
 * RFC 5681 §4.2) and the SACK blocks we report (RFC 2018). The connection decides state transitions;
 * this only keeps the receive-side bookkeeping.
 *
 * @module
 */

import { IPV4_HEADER_LENGTH } from "../wire/ipv4.ts";
import { MAX_SACK_BLOCKS, TCP_HEADER_LENGTH, type TcpOptions, writeSackOption } from "../wire/tcp.ts";
import type { TcpConfig } from "./config.ts";
import { NO_OUT_OF_ORDER, ReassemblyQueue } from "./reassembly.ts";
import { RecvBuffer } from "./recv_buffer.ts";
import { type MemoryBudget, UNBOUNDED_BUDGET } from "./memory_budget.ts";
import { seqAdd, seqGe, seqGt, seqLe, seqLt } from "./seq.ts";
import type { TcpStats } from "./stats.ts";

/**
 * The part of an arriving segment that occupies sequence space, trimmed to the window by
 * {@link TcpReceiver.trim}. One instance per connection is reused for every segment.
 */
export class SegmentText {
  /** Sequence number of the first byte (after trimming). */
  seq = 0;
  /** Offset of the first data byte in the segment's bytes. */
  offset = 0;
  /** Data bytes. */
  length = 0;
  /** Whether a FIN follows the data. */
  fin = false;
}

/** SACK blocks on their way into an option: written and read in one call, so shared by all connections. */
const SACK_OUT = new Uint32Array(MAX_SACK_BLOCKS * 2);

/** Bits returned by {@link TcpReceiver.receiveText}. */
export const TextResult = {
  /** New bytes became readable. */
  READABLE: 1,
  /** The peer's FIN is next in sequence: the connection consumes it ({@link TcpReceiver.consumeFin}). */
  FIN: 2,
} as const;

/** Receive sequence space, buffers and acknowledgment policy of one connection. */
export class TcpReceiver {
  /** Initial receive sequence number. */
  irs = 0;
  /** Next sequence number expected (RCV.NXT). */
  rcvNxt = 0;
  /** Shift applied to windows we send (RFC 7323 §2.3), 0 without scaling. */
  rcvScale: number;
  /** Whether our SYN offers window scaling (what we are configured for, then what was negotiated). */
  offerWindowScale = false;
  /** Whether timestamps are in use (RFC 7323 §3.2). */
  timestamps = false;
  /** Whether SACK is in use (RFC 2018). */
  sack = false;
  /** The MSS we advertise (RFC 9293 §3.7.1), from our MTU. */
  readonly advertisedMss: number;
  /** TS.Recent (RFC 7323 §4.3): the timestamp we echo. */
  tsRecent = 0;
  /** Whether an ACK must be sent at the next output. */
  ackNow = false;
  /** Deadline of the delayed ACK (Infinity when none is pending). */
  delayedAckDeadline = Infinity;
  /** Whether the peer's FIN has been consumed (no data follows what is buffered). */
  peerFin = false;
  /** In-order bytes waiting for the application (and out-of-order bytes at their offsets). */
  readonly buffer: RecvBuffer;
  /**
   * Out-of-order ranges held beyond RCV.NXT: the shared empty {@link NO_OUT_OF_ORDER} until the first
   * out-of-order segment (an in-order connection owns none).
   */
  reassembly: ReassemblyQueue = NO_OUT_OF_ORDER;

  /** Right edge of the window we advertised last (never moves left, RFC 9293 §3.8.6.2.2). */
  #rcvAdvEdge = 0;
  /** RCV.NXT in the last ACK sent (Last.ACK.sent of RFC 7323 §4.3). */
  #lastAckSent = 0;
  #unackedSegments = 0;
  #pendingPeerFin = false;
  #pendingPeerFinSeq = 0;
  #lastInvalidAck = -Infinity;
  readonly #config: TcpConfig;
  readonly #stats: TcpStats;
  readonly #budget: MemoryBudget;

  /** Sizes the buffers and the window scale from `config`. */
  constructor(config: TcpConfig, stats: TcpStats, budget: MemoryBudget = UNBOUNDED_BUDGET) {
    this.#config = config;
    this.#stats = stats;
    this.advertisedMss = Math.min(65535, config.mtu - IPV4_HEADER_LENGTH - TCP_HEADER_LENGTH);
    let shift = 0;
    while ((config.recvBufferSize >> shift) > 65535 && shift < 14) shift++;
    this.rcvScale = config.windowScaling ? shift : 0;
    // Slack of one window-scale unit absorbs rounding of the advertised window (see windowField).
    this.buffer = new RecvBuffer(config.recvBufferSize + (1 << shift), budget);
    this.#budget = budget;
  }

  /** Synchronizes on the peer's SYN with sequence number `seq` (RFC 9293 §3.10.7.2–3). */
  start(seq: number): void {
    this.irs = seq;
    this.rcvNxt = seqAdd(seq, 1);
    this.#rcvAdvEdge = this.rcvNxt;
    this.#lastAckSent = this.rcvNxt;
  }

  /** RCV.WND: what remains of the window we advertised last. */
  get window(): number {
    return Math.max(0, (this.#rcvAdvEdge - this.rcvNxt) | 0);
  }

  /** RFC 7323 §5.3 R1 (PAWS): whether the segment's timestamp is older than TS.Recent; RSTs are exempt. */
  pawsRejects(opts: TcpOptions, rst: boolean): boolean {
    return this.timestamps && opts.hasTimestamps && !rst && seqLt(opts.tsVal, this.tsRecent);
  }

  /**
   * RFC 9293 §3.10.7.4 "first": whether a segment starting at `seq` and occupying `segLength` sequence
   * numbers is acceptable (the four cases).
   */
  acceptable(seq: number, segLength: number): boolean {
    const rcvWnd = this.window;
    const rcvEnd = seqAdd(this.rcvNxt, rcvWnd);
    if (segLength === 0) {
      // RFC 9293 asks RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND; like Linux (tcp_sequence) we also accept a
      // zero-length segment exactly at the right edge. A peer that filled our window sends its pure
      // ACKs with SEG.SEQ = its SND.NXT = our right edge: rejecting them when both directions are full
      // and losing deadlocks the connection in an exchange of "unacceptable" ACKs.
      return seqGe(seq, this.rcvNxt) && seqLe(seq, rcvEnd);
    }
    if (rcvWnd === 0) {
      // RFC 9293 §3.10.7.4: with a zero window still accept valid ACKs and RSTs (text is trimmed below).
      return seq === this.rcvNxt;
    }
    const last = seqAdd(seq, segLength - 1);
    return (seqGe(seq, this.rcvNxt) && seqLt(seq, rcvEnd)) ||
      (seqGe(last, this.rcvNxt) && seqLt(last, rcvEnd));
  }

  /** RFC 7323 §4.3: remembers the timestamp of a segment covering Last.ACK.sent. */
  noteTimestamp(seq: number, opts: TcpOptions): void {
    if (this.timestamps && opts.hasTimestamps && seqLe(seq, this.#lastAckSent)) {
      this.tsRecent = opts.tsVal;
    }
  }

  /**
   * Trims an acceptable segment's text to the window (RFC 9293 §3.10.7.4: "segments ... trimmed to the
   * window"): drops what we already have and what lies beyond the right edge, asking for an immediate
   * ACK in both cases.
   */
  trim(text: SegmentText): void {
    const rcvWnd = this.window;
    const rcvEnd = seqAdd(this.rcvNxt, rcvWnd);
    if (seqLt(text.seq, this.rcvNxt)) {
      const before = (this.rcvNxt - text.seq) >>> 0;
      if (before >= text.length) {
        if (text.fin && before > text.length) text.fin = false; // a FIN we already have
        text.offset += text.length;
        text.length = 0;
      } else {
        text.offset += before;
        text.length -= before;
      }
      text.seq = this.rcvNxt;
      this.ackNow = true; // duplicate data: acknowledge at once (RFC 9293 §3.10.7.4)
    }
    const room = (rcvEnd - text.seq) | 0;
    if (text.length > room || (text.fin && text.length === room && room === 0 && rcvWnd === 0)) {
      // Text beyond the window is dropped; the ACK tells the sender where the window stands (this
      // answers zero-window probes).
      text.length = Math.max(0, Math.min(text.length, room));
      text.fin = false;
      this.ackNow = true;
    }
  }

  /**
   * Answers an unacceptable segment with an ACK (RFC 9293 §3.10.7.4). For segments without data (and
   * SYNs) at most one such ACK per `invalidAckIntervalMs`, as Linux's tcp_oow_rate_limited: two
   * desynchronised ends would otherwise answer each other's ACKs forever (an ACK storm); a segment
   * carrying data is always answered.
   */
  ackInvalid(now: number, dataLength: number, syn: boolean): void {
    if (dataLength === 0 || syn) {
      if (now - this.#lastInvalidAck < this.#config.invalidAckIntervalMs) {
        this.#stats.invalidAcksSuppressed++;
        return;
      }
      this.#lastInvalidAck = now;
    }
    this.ackNow = true;
  }

  /**
   * Stores `length` bytes of `bytes` at `offset` (sequence `seq`, within the window) in order or in
   * the reassembly queue, and schedules the ACK. With `discard` (the application closed) in-order bytes
   * are dropped after being acknowledged. Returns whether new bytes became readable.
   */
  receive(
    bytes: Uint8Array,
    seq: number,
    offset: number,
    length: number,
    now: number,
    discard: boolean,
  ): boolean {
    const stats = this.#stats;
    const buffer = this.buffer;
    const rel = (seq - this.rcvNxt) >>> 0;
    const space = buffer.free - rel;
    if (space <= 0) {
      stats.drop("buffer-full");
      this.ackNow = true;
      return false;
    }
    if (length > space) length = space;
    if (rel !== 0) {
      if (this.reassembly === NO_OUT_OF_ORDER) {
        this.reassembly = new ReassemblyQueue(this.#config.maxOutOfOrderRanges);
      }
      if (!this.reassembly.add(seq, length)) {
        stats.drop("ooo-queue-full");
        this.ackNow = true;
        return false;
      }
      if (!buffer.writeAt(rel, bytes, offset, length)) {
        this.reassembly.clear();
        stats.drop("memory-pressure");
        this.ackNow = true;
        return false;
      }
      this.ackNow = true; // RFC 5681 §4.2: out-of-order data triggers an immediate (duplicate) ACK
      return false;
    }
    const hadHoles = this.reassembly.rangeCount > 0;
    if (!buffer.writeAt(0, bytes, offset, length)) {
      // The budget refused the store: dropped (the peer retransmits), as Linux prunes under tcp_mem.
      stats.drop("memory-pressure");
      this.ackNow = true;
      return false;
    }
    const inOrderEnd = seqAdd(this.rcvNxt, length);
    const next = hadHoles ? this.reassembly.advance(inOrderEnd) : inOrderEnd;
    const delivered = (next - this.rcvNxt) >>> 0;
    buffer.commit(delivered);
    this.rcvNxt = next;
    stats.bytesIn += delivered;
    if (discard) buffer.discard(buffer.length);
    if (hadHoles) {
      this.ackNow = true; // RFC 5681 §4.2: ACK at once when a gap is (partly) filled
    } else {
      // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: ACK at least every second full-size segment, else delay.
      const full = this.advertisedMss - (this.timestamps ? 12 : 0);
      this.#unackedSegments += length >= full ? Math.floor(length / full) : 1;
      if (this.#unackedSegments >= 2) this.ackNow = true;
      else if (this.delayedAckDeadline === Infinity) {
        this.delayedAckDeadline = now + this.#config.delayedAckMs;
      }
    }
    return !discard;
  }

  /**
   * RFC 9293 §3.10.7.4 seventh and eighth: stores the trimmed `text` of a segment whose bytes are
   * `bytes` (only when `open`, i.e. before the peer's FIN; else it is dropped and counted) and notes its
   * FIN. `discard` drops in-order bytes after acknowledging them (the application closed). Returns
   * {@link TextResult} bits.
   */
  receiveText(bytes: Uint8Array, text: SegmentText, now: number, open: boolean, discard: boolean): number {
    let result = 0;
    if (text.length > 0) {
      if (!open) this.#stats.drop("after-close"); // data after the peer's FIN cannot be legitimate
      else if (this.receive(bytes, text.seq, text.offset, text.length, now, discard)) {
        result = TextResult.READABLE;
      }
    }
    if ((text.fin && this.noteFin(seqAdd(text.seq, text.length))) || this.finDue()) result |= TextResult.FIN;
    return result;
  }

  /**
   * Notes a FIN at sequence `finSeq`: returns true when it is next in sequence (consume it with
   * {@link consumeFin}); a FIN beyond a gap is remembered until the gap fills (see {@link finDue}).
   */
  noteFin(finSeq: number): boolean {
    if (finSeq === this.rcvNxt) return true;
    if (seqGt(finSeq, this.rcvNxt)) {
      this.#pendingPeerFin = true;
      this.#pendingPeerFinSeq = finSeq;
    }
    return false;
  }

  /** Whether a FIN that arrived beyond a gap is now next in sequence. */
  finDue(): boolean {
    return this.#pendingPeerFin && !this.peerFin && this.#pendingPeerFinSeq === this.rcvNxt;
  }

  /**
   * Consumes the peer's FIN: it occupies one sequence number. It is acknowledged at once, or with
   * `delay` (the application has yet to answer, CLOSE-WAIT) as data is: the FIN is not a full-sized
   * segment, so RFC 1122 §4.2.3.2 lets its ACK wait (< 0.5 s) for the application's own FIN or data to
   * carry it, as Linux does (`tcp_fin` enters pingpong mode). A request/close exchange then answers the
   * FIN with one FIN,ACK instead of an ACK and a FIN.
   */
  consumeFin(now: number, delay = false): void {
    this.peerFin = true;
    this.#pendingPeerFin = false;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    if (!delay) this.ackNow = true;
    else if (this.delayedAckDeadline === Infinity) this.delayedAckDeadline = now + this.#config.delayedAckMs;
  }

  /** Receiver SWS threshold (RFC 9293 §3.8.6.2.2): min(half the buffer, one MSS). */
  #swsThreshold(): number {
    return Math.min(this.#config.recvBufferSize >> 1, this.advertisedMss);
  }

  /** Free receive space we could advertise, bounded by what the window field can express. */
  freeWindow(): number {
    // Never more than the store has room for plus what the budget could still give it.
    const free = Math.max(
      0,
      Math.min(
        this.#config.recvBufferSize - this.buffer.length,
        this.buffer.storeRoom + this.#budget.available,
      ),
    );
    const max = 65535 * (1 << this.rcvScale);
    return free < max ? free : max;
  }

  /**
   * After the application read: whether the window grew enough to be announced at once, Linux-style
   * (__tcp_cleanup_rbuf): when it at least doubles and grows by at least the SWS threshold.
   */
  windowUpdateDue(): boolean {
    const current = this.window;
    const possible = this.freeWindow();
    return possible >= 2 * current && possible - current >= this.#swsThreshold();
  }

  /** The window field of a SYN (RFC 7323 §2.2: never scaled); sets the advertised right edge. */
  synWindow(): number {
    const window = Math.min(65535, this.freeWindow());
    this.#rcvAdvEdge = seqAdd(this.rcvNxt, window);
    return window;
  }

  /** The window field for a non-SYN segment; moves the advertised right edge (never left). */
  windowField(): number {
    const current = this.window;
    let window = this.freeWindow();
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
   * Writes the SACK option at `o` of `buf` when out-of-order data is held (RFC 2018 §3: as many blocks
   * as fit, `max`); returns the offset after it.
   */
  writeSackBlocks(buf: Uint8Array, o: number, max: number): number {
    if (this.reassembly.rangeCount === 0) return o;
    const n = this.reassembly.sackBlocks(SACK_OUT, max);
    return writeSackOption(buf, o, SACK_OUT, n);
  }

  /** An ACK of RCV.NXT went out: nothing is owed any more. */
  onAckSent(): void {
    this.ackNow = false;
    this.delayedAckDeadline = Infinity;
    this.#unackedSegments = 0;
    this.#lastAckSent = this.rcvNxt;
  }

  /** Nothing more will be received: frees the stores (unread bytes stay readable). */
  release(): void {
    if (this.buffer.length === 0) this.buffer.release();
    this.reassembly.clear();
    this.delayedAckDeadline = Infinity;
  }

  /** Whether a SYN may start a new incarnation over this TIME-WAIT state (RFC 6191 §2). */
  acceptsNewIncarnation(seq: number, opts: TcpOptions): boolean {
    if (this.timestamps && opts.hasTimestamps) return seqGt(opts.tsVal, this.tsRecent);
    return seqGt(seq, this.rcvNxt);
  }
}

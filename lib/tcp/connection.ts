/**
 * One TCP connection: the RFC 9293 §3.10 event processing state machine, sans-I/O, over a
 * {@link TcpReceiver} (receive side), a {@link TcpSender} (send side, loss recovery, send timers) and a
 * {@link SegmentEmitter} (writing segments). The owning {@link TcpLayer} hands it validated segments
 * with the current time and polls it for timers; the application side is a byte-buffer API plus
 * readiness events:
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

import type { MemoryBudget } from "./memory_budget.ts";
import type { Ipv4Sink } from "../iface/protocol.ts";
import { type Ipv6Handles, isIpv6Handle } from "../iface/ipv6_handles.ts";
import { TcpFlags, type TcpOptions, type TcpSegment } from "../wire/tcp.ts";
import type { TcpConfig } from "./config.ts";
import type { CongestionControl } from "./congestion.ts";
import { SegmentEmitter } from "./emitter.ts";
import type { IsnGenerator } from "./isn.ts";
import { KeepaliveAction, KeepaliveTimer } from "./keepalive.ts";
import { negotiateOptions, setOptionFlags } from "./negotiate.ts";
import { SegmentText, TcpReceiver, TextResult } from "./receiver.ts";
import type { RttEstimator } from "./rtt.ts";
import { AckResult, TcpSender } from "./sender.ts";
import { seqAdd, seqGt, seqLe } from "./seq.ts";
import {
  SYNCHRONIZED_SEND_STATES,
  type TcpCloseError,
  type TcpConnectionStats,
  TcpEvent,
  type TcpState,
  TcpStateError,
} from "./state.ts";
import type { TcpStats } from "./stats.ts";

export { TcpEvent, TcpStateError } from "./state.ts";
export type { TcpCloseError, TcpConnectionStats, TcpState } from "./state.ts";

/** Smallest autotuned send buffer (Linux's initial tcp_wmem is 16 KiB; a few segments more here). */
const SEND_BUFFER_FLOOR = 64 * 1024;

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
  /** The configuration of IPv6 connections: the same, with the MTU lowered by IPv6's longer header. */
  readonly config6?: TcpConfig;
  /** IPv6 handles: connections whose addresses are handles speak IPv6. */
  readonly handles?: Ipv6Handles;
  /** Called once when a passively opened connection reaches ESTABLISHED. */
  passiveEstablished(connection: TcpConnection): void;
  /** Whether another challenge ACK may be sent at `now` (RFC 5961 §7 rate limit). */
  allowChallengeAck(now: number): boolean;
  /** The layer's buffer memory budget (absent: unbounded). */
  readonly memory?: MemoryBudget;
}

/**
 * The text of the segment being processed, for all connections: a segment is processed from start to
 * end within one call, never interleaved with another's (one object per connection cost ~110 bytes).
 */
const TEXT = new SegmentText();

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
  /** Opaque slot for the layer (listener bookkeeping). */
  owner: unknown = null;
  /** The peer's MSS (RFC 9293 §3.7.1: 536 when absent). */
  peerMss = 536;
  /** The layer's timer heap: this connection's place in it (-1: not queued). @internal */
  timerIndex = -1;
  /** The layer's timer heap: the deadline this connection is queued at. @internal */
  timerDeadline = Infinity;

  readonly #receiver: TcpReceiver;
  readonly #sender: TcpSender;
  readonly #emitter: SegmentEmitter;

  // Timers of the state machine (absolute deadlines, Infinity when stopped); the sender and the
  // receiver keep their own.
  readonly #keepalive: KeepaliveTimer;
  #timeWaitDeadline = Infinity;
  #finWait2Deadline = Infinity;

  #synAckDue = false;
  #outputPending = false;
  #appClosed = false;
  #events = 0;
  #ctx: TcpConnectionContext;

  /** Creates a connection in CLOSED; the layer then calls {@link openActive} or {@link openPassive}. */
  constructor(
    ctx: TcpConnectionContext,
    localAddress: number,
    localPort: number,
    remoteAddress: number,
    remotePort: number,
    passive: boolean,
  ) {
    // An IPv6 connection sizes its MSS from the IPv6 MTU minus the 40-byte header (RFC 8200 §8.3).
    const config = isIpv6Handle(localAddress) && ctx.config6 !== undefined ? ctx.config6 : ctx.config;
    this.#ctx = ctx;
    this.localAddress = localAddress;
    this.localPort = localPort;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.passive = passive;
    this.#receiver = new TcpReceiver(config, ctx.stats, ctx.memory);
    this.#emitter = new SegmentEmitter(ctx.scratch, ctx.stats, this.#receiver, this, ctx.handles ?? null);
    this.#sender = new TcpSender(config, ctx.stats, this.#emitter, ctx.memory);
    this.#keepalive = new KeepaliveTimer(config);
  }

  // ───────────────────────────── sequence variables (read-only views) ─────────────────────────────

  /** Initial send sequence number. */
  get iss(): number {
    return this.#sender.iss;
  }
  /** Oldest unacknowledged sequence number. */
  get sndUna(): number {
    return this.#sender.sndUna;
  }
  /** Next new sequence number to send. */
  get sndNxt(): number {
    return this.#sender.sndNxt;
  }
  /** Send window (scaled) offered by the peer. */
  get sndWnd(): number {
    return this.#sender.sndWnd;
  }
  /** Initial receive sequence number. */
  get irs(): number {
    return this.#receiver.irs;
  }
  /** Next sequence number expected. */
  get rcvNxt(): number {
    return this.#receiver.rcvNxt;
  }
  /** Shift applied to windows the peer sends (RFC 7323 §2.3), 0 without scaling. */
  get sndScale(): number {
    return this.#sender.sndScale;
  }
  /** Shift applied to windows we send. */
  get rcvScale(): number {
    return this.#receiver.rcvScale;
  }
  /** Whether timestamps are in use (RFC 7323 §3.2). */
  get timestampsEnabled(): boolean {
    return this.#sender.timestamps;
  }
  /** Whether SACK is in use (RFC 2018). */
  get sackEnabled(): boolean {
    return this.#sender.sack;
  }
  /** Payload bytes per full-size segment we send (effective MSS minus option space). */
  get sendMss(): number {
    return this.#sender.sendMss;
  }
  /** RTT estimator and RTO (RFC 6298). */
  get rtt(): RttEstimator {
    return this.#sender.rtt;
  }
  /** Congestion controller. */
  get congestion(): CongestionControl {
    return this.#sender.congestion;
  }
  /** Disables Nagle's algorithm (RFC 9293 §3.7.4) when true. */
  get noDelay(): boolean {
    return this.#sender.noDelay;
  }
  set noDelay(value: boolean) {
    this.#sender.noDelay = value;
  }

  // ───────────────────────────── application API ─────────────────────────────

  /** Bytes that {@link recv} can return now. */
  get readableBytes(): number {
    return this.#receiver.buffer.length;
  }

  /** Bytes {@link send} would accept now (0 once the write side is shut). */
  get writableBytes(): number {
    if (!this.#canSend()) return 0;
    return Math.max(0, Math.min(this.#sender.buffer.free, this.#sendLimit() - this.#sender.buffer.length));
  }

  /**
   * The send buffer's autotuned size (as Linux's tcp_sndbuf_expand): twice what the path can hold in
   * flight (the larger of the congestion window and the peer's largest window), at least 64 KiB, at most
   * the configured size. A peer that stops reading thus holds a small buffer, not the whole of it.
   */
  #sendLimit(): number {
    const sender = this.#sender;
    const inFlight = Math.max(sender.congestion.cwnd, sender.maxSndWnd);
    return Math.min(this.#ctx.config.sendBufferSize, Math.max(SEND_BUFFER_FLOOR, 2 * inFlight));
  }

  /** Bytes queued and not yet acknowledged. */
  get unacknowledgedBytes(): number {
    return this.#sender.buffer.length;
  }

  /** Whether the peer's FIN has arrived (no data follows what is buffered). */
  get peerClosed(): boolean {
    return this.#receiver.peerFin;
  }

  /** Whether {@link shutdownWrite} or {@link close} was called. */
  get writeShut(): boolean {
    return this.#sender.finQueued;
  }

  /** The send buffer size. */
  get sendBufferSize(): number {
    return this.#sender.buffer.capacity;
  }

  /** Congestion window in bytes. */
  get cwnd(): number {
    return this.#sender.congestion.cwnd;
  }

  /** The layer's configuration. */
  get config(): TcpConfig {
    return this.#ctx.config;
  }

  /** A snapshot of sender internals for status output and debugging (allocates; not for hot paths). */
  stats(): TcpConnectionStats {
    const receiver = this.#receiver;
    return this.#sender.stats(this.state, receiver.window, receiver.reassembly.rangeCount);
  }

  #canSend(): boolean {
    if (this.#sender.finQueued) return false;
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
        `tcp: cannot send in state ${this.state}${this.#sender.finQueued ? " after shutdown" : ""}`,
      );
    }
    const n = this.#sender.buffer.write(data, this.#sendLimit());
    if (n > 0) this.#wake();
    return n;
  }

  /**
   * Moves received bytes into `into` and returns the count; 0 when nothing is buffered yet; `null` at end
   * of stream (the peer's FIN was consumed, or the connection closed — check {@link error}).
   */
  recv(into: Uint8Array): number | null {
    const receiver = this.#receiver;
    const n = receiver.buffer.read(into);
    if (n > 0) {
      receiver.buffer.shrinkIfEmpty(); // read to the end: the store goes back to the budget
      this.#maybeWindowUpdate();
      return n;
    }
    if (into.length === 0) return 0;
    return receiver.peerFin || this.state === "CLOSED" ? null : 0;
  }

  /** Half-close (RFC 9293 §3.10.4 CLOSE on the send side): queues a FIN after the buffered data. */
  shutdownWrite(): void {
    const sender = this.#sender;
    if (sender.finQueued) return;
    switch (this.state) {
      case "SYN_SENT":
      case "SYN_RECEIVED":
        // The FIN follows the handshake: #establish enters FIN-WAIT-1.
        sender.finQueued = true;
        return;
      case "ESTABLISHED":
        sender.finQueued = true;
        this.state = "FIN_WAIT_1";
        break;
      case "CLOSE_WAIT":
        sender.finQueued = true;
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
    if (this.state === "CLOSED") {
      // Unread bytes of a closed connection will never be read now: their store goes back.
      this.#receiver.buffer.release();
      return;
    }
    if (this.state === "SYN_SENT") {
      this.#enterClosed(null); // RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB
      return;
    }
    if (this.#receiver.buffer.length > 0) {
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
      this.#emitter.queueReset(this.#sender.sndNxt, 0, false);
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
    if (this.state === "CLOSED" || this.state === "SYN_SENT" || this.#receiver.peerFin) return;
    if (this.#receiver.windowUpdateDue()) {
      this.#receiver.ackNow = true;
      this.#wake();
    }
  }

  // ───────────────────────────── opening ─────────────────────────────

  /** Starts the send sequence at the ISN (RFC 6528, or `issOverride`) with this tuple's TS offset. */
  #initSendSequence(issOverride: number | null, now: number): void {
    const isn = this.#ctx.isn;
    const l = this.localAddress, lp = this.localPort, r = this.remoteAddress, rp = this.remotePort;
    this.#sender.start(issOverride ?? isn.isn(l, lp, r, rp, now), isn.timestampOffset(l, lp, r, rp));
  }

  /** Active open (RFC 9293 §3.10.1): picks the ISN and enters SYN-SENT; the SYN leaves at the next poll. */
  openActive(now: number): void {
    this.#initSendSequence(null, now);
    this.state = "SYN_SENT";
    this.#outputPending = true;
    this.#ctx.stats.activeOpens++;
    const config = this.#ctx.config;
    // Our SYN offers what we are configured for; the peer's SYN then settles it (negotiateOptions).
    setOptionFlags(this.#sender, this.#receiver, config.timestamps, config.sack);
    this.#receiver.offerWindowScale = config.windowScaling;
    if (!config.windowScaling) this.#receiver.rcvScale = 0;
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
    this.#receiver.start(seg.seq);
    this.peerMss = negotiateOptions(this.#ctx.config, opts, this.#sender, this.#receiver);
    // RFC 7323 §2.2: the window in a SYN is never scaled.
    this.#sender.setWindow(seg.window, seg.seq, this.#sender.iss);
    this.state = "SYN_RECEIVED";
    this.#ctx.stats.passiveOpens++;
    this.#output(now, out);
  }

  // ───────────────────────────── input ─────────────────────────────

  /**
   * Processes one validated segment addressed to this connection (RFC 9293 §3.10.7.3–4), sends what it
   * calls for, and fires events. Never throws for bad input.
   */
  ingress(seg: TcpSegment, opts: TcpOptions, now: number, out: Ipv4Sink): void {
    if (this.state === "CLOSED") {
      this.#emitter.flushReset(out);
      return;
    }
    if (this.state === "SYN_SENT") this.#ingressSynSent(seg, opts, now);
    else this.#ingressSynchronized(seg, opts, now);
    if (!this.#isClosed()) this.#keepalive.onSegment();
    this.#output(now, out);
    this.#flushEvents();
  }

  /** A method, not an inline test: TypeScript narrows `state` across the calls that change it. */
  #isClosed(): boolean {
    return this.state === "CLOSED";
  }

  #ingressSynSent(seg: TcpSegment, opts: TcpOptions, now: number): void {
    const flags = seg.flags;
    const stats = this.#ctx.stats;
    const sender = this.#sender;
    const hasAck = (flags & TcpFlags.ACK) !== 0;
    // RFC 9293 §3.10.7.3 first: an ACK outside (ISS, SND.NXT] is unacceptable.
    if (hasAck && (seqLe(seg.ack, sender.iss) || seqGt(seg.ack, sender.sndNxt))) {
      stats.drop("syn-sent-bad");
      if (!(flags & TcpFlags.RST)) this.#emitter.queueReset(seg.ack, 0, false);
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
    this.#receiver.start(seg.seq);
    this.peerMss = negotiateOptions(this.#ctx.config, opts, this.#sender, this.#receiver);
    if (hasAck) {
      sender.onSynAcked(seg.ack, opts, now);
      // RFC 7323 §2.2: the window in a SYN,ACK is not scaled.
      sender.setWindow(seg.window, seg.seq, seg.ack);
      this.#establish();
      this.#receiver.ackNow = true;
    } else {
      // Simultaneous open (RFC 9293 Figure 8): SYN-RECEIVED, send SYN,ACK with our ISS.
      sender.setWindow(seg.window, seg.seq, sender.iss);
      this.state = "SYN_RECEIVED";
      this.#synAckDue = true;
    }
  }

  #establish(): void {
    this.#sender.onEstablished();
    // A shutdown requested during the handshake takes effect now (RFC 9293 §3.10.4).
    this.state = this.#sender.finQueued ? "FIN_WAIT_1" : "ESTABLISHED";
    this.#ctx.stats.established++;
    this.#events |= TcpEvent.OPEN | TcpEvent.WRITABLE;
    this.#keepalive.stop();
    if (this.passive) this.#ctx.passiveEstablished(this);
  }

  /** RFC 9293 §3.10.7.4: a segment in SYN-RECEIVED or a synchronized state, checked in the RFC's order. */
  #ingressSynchronized(seg: TcpSegment, opts: TcpOptions, now: number): void {
    const stats = this.#ctx.stats;
    const receiver = this.#receiver;
    const flags = seg.flags;
    const text = TEXT;
    text.seq = seg.seq;
    text.offset = seg.payloadOffset;
    text.length = seg.payloadLength;
    text.fin = (flags & TcpFlags.FIN) !== 0;
    let syn = (flags & TcpFlags.SYN) !== 0;
    const rst = (flags & TcpFlags.RST) !== 0;
    if (
      syn && this.state === "SYN_RECEIVED" && !this.passive && (flags & TcpFlags.ACK) &&
      seqAdd(text.seq, 1) === receiver.rcvNxt && text.length === 0 && seg.ack === this.#sender.sndNxt
    ) {
      // Simultaneous open (RFC 9293 Figure 8): the peer's SYN,ACK repeats the SYN we already have and
      // acknowledges ours; only its ACK is new (Linux makes the same exception to RFC 5961 §4.2).
      syn = false;
      text.seq = receiver.rcvNxt;
    }
    const segLength = text.length + (syn ? 1 : 0) + (text.fin ? 1 : 0);

    // RFC 7323 §5.3 R1: PAWS, before the sequence check.
    if (receiver.pawsRejects(opts, rst)) {
      stats.drop("paws");
      receiver.ackInvalid(now, segLength, syn);
      return;
    }
    // First: sequence number acceptability.
    if (!receiver.acceptable(text.seq, segLength)) {
      if (rst) {
        stats.drop("rst-out-of-window");
        return;
      }
      stats.drop("out-of-window");
      if (this.state === "SYN_RECEIVED" && syn && text.seq === receiver.irs) {
        this.#synAckDue = true; // the peer's SYN was retransmitted: our SYN,ACK was lost
      } else {
        receiver.ackInvalid(now, segLength, syn);
      }
      return;
    }
    receiver.noteTimestamp(text.seq, opts);
    // Second: RST (RFC 5961 §3.2: only an exact match resets; other in-window RSTs get a challenge ACK).
    if (rst) {
      this.#onReset(text.seq, now);
      return;
    }
    // Fourth: SYN in a synchronized state or SYN-RECEIVED (RFC 5961 §4.2): challenge ACK.
    if (syn) {
      this.#challengeAck(now);
      return;
    }
    receiver.trim(text);
    // Fifth: ACK.
    if (!(flags & TcpFlags.ACK)) {
      stats.drop("no-ack");
      return;
    }
    if (!this.#checkAck(seg, now)) return;
    this.#processAck(seg, opts, now);
    if (this.state === "CLOSED") return;
    if (this.state === "TIME_WAIT") {
      // Only a retransmitted FIN can arrive: acknowledge it and restart the 2 MSL timer.
      if (text.fin || text.length > 0) {
        receiver.ackNow = true;
        this.#timeWaitDeadline = now + this.#ctx.config.timeWaitMs;
      }
      return;
    }
    // Seventh and eighth: text (none after the peer's FIN), then the FIN once all before it arrived.
    const open = this.state === "ESTABLISHED" || this.state === "FIN_WAIT_1" || this.state === "FIN_WAIT_2";
    const got = receiver.receiveText(seg.bytes, text, now, open, this.#appClosed);
    if (got & TextResult.READABLE) this.#events |= TcpEvent.READABLE;
    if (got & TextResult.FIN) this.#processFin(now);
  }

  /** An acceptable RST (RFC 9293 §3.10.7.4 second, with RFC 5961 §3.2's exact-match rule). */
  #onReset(seq: number, now: number): void {
    if (seq !== this.#receiver.rcvNxt) {
      this.#challengeAck(now);
      return;
    }
    this.#ctx.stats.resetsIn++;
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

  /**
   * RFC 9293 §3.10.7.4 fifth, the checks before ACK processing: the ACK completing the handshake in
   * SYN-RECEIVED, and ACKs of unsent data or too old (RFC 5961 §5.2). Returns false when the segment
   * stops here.
   */
  #checkAck(seg: TcpSegment, now: number): boolean {
    const stats = this.#ctx.stats;
    const sender = this.#sender;
    const ack = seg.ack;
    if (this.state === "SYN_RECEIVED") {
      if (seqGt(ack, sender.sndUna) && seqLe(ack, sender.sndNxt)) {
        sender.setWindow(seg.window << sender.sndScale, seg.seq, ack);
        this.#establish();
      } else {
        stats.drop("bad-ack");
        this.#emitter.queueReset(ack, 0, false);
        return false;
      }
    }
    if (sender.ackTooNew(ack)) {
      // Acknowledges something not yet sent: ACK and drop (RFC 9293; RFC 5961 §5.2).
      stats.drop("bad-ack");
      this.#receiver.ackInvalid(now, TEXT.length + (TEXT.fin ? 1 : 0), false);
      return false;
    }
    if (sender.ackTooOld(ack)) {
      // RFC 5961 §5.2: too old to be plausible: challenge ACK.
      stats.drop("bad-ack");
      this.#challengeAck(now);
      return false;
    }
    return true;
  }

  /** Hands an acceptable ACK to the sender and applies what it means for the state (our FIN acked). */
  #processAck(seg: TcpSegment, opts: TcpOptions, now: number): void {
    const sender = this.#sender;
    const text = TEXT;
    const result = sender.processAck(seg.window, opts, seg.ack, text.length, text.fin, now);
    if (result & AckResult.FREED) this.#events |= TcpEvent.WRITABLE;
    if (result & AckResult.FIN_ACKED) {
      this.#onFinAcked(now);
      if (this.state === "CLOSED") return;
    }
    sender.updateWindow(seg.window, seg.seq, seg.ack);
  }

  #challengeAck(now: number): void {
    // RFC 5961 §3.2 / §4.2: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, rate-limited per layer (§7).
    if (!this.#ctx.allowChallengeAck(now)) {
      this.#ctx.stats.drop("challenge-ack-limit");
      return;
    }
    this.#ctx.stats.challengeAcks++;
    this.#receiver.ackNow = true;
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

  #processFin(now: number): void {
    // ESTABLISHED: the application answers the FIN (its own FIN or data carries the ACK); in the other
    // states nothing of ours may follow, so the ACK goes at once.
    this.#receiver.consumeFin(now, this.state === "ESTABLISHED");
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
    this.#sender.release(true);
    this.#receiver.release();
    this.#timeWaitDeadline = now + this.#ctx.config.timeWaitMs;
    this.#keepalive.stop();
    this.#finWait2Deadline = Infinity;
  }

  #enterClosed(error: TcpCloseError | null): void {
    if (this.state === "CLOSED") return;
    this.state = "CLOSED";
    this.#sender.release(false);
    this.#receiver.release();
    if (this.error === null) this.error = error;
    this.#keepalive.stop();
    this.#timeWaitDeadline = Infinity;
    this.#finWait2Deadline = Infinity;
    this.#events |= TcpEvent.CLOSED | TcpEvent.READABLE | TcpEvent.WRITABLE;
  }

  /** Whether this TIME-WAIT connection may be replaced by a new SYN (RFC 6191 §2 / RFC 9293 §3.10.7.4). */
  acceptsNewIncarnation(seg: TcpSegment, opts: TcpOptions): boolean {
    if (this.state !== "TIME_WAIT") return false;
    return this.#receiver.acceptsNewIncarnation(seg.seq, opts);
  }

  // ───────────────────────────── timers ─────────────────────────────

  /**
   * Runs expired timers and pending output at `now`; returns the next deadline (or null when it only
   * waits for input). After it returns with {@link state} CLOSED the layer forgets the connection.
   */
  poll(now: number, out: Ipv4Sink): number | null {
    if (!this.#outputPending && !this.#emitter.resetPending && this.#events === 0) {
      // Fast path: nothing queued by the application and no timer due.
      const due = this.nextDeadline();
      if (due === null || now < due) return due;
    }
    this.#outputPending = false;
    this.#emitter.flushReset(out);
    if (this.#appClosed && this.state === "FIN_WAIT_2" && this.#finWait2Deadline === Infinity) {
      this.#finWait2Deadline = now + this.#ctx.config.finWait2TimeoutMs;
    }
    if (this.state !== "CLOSED") {
      if (now >= this.#timeWaitDeadline) this.#enterClosed(null);
      else if (now >= this.#finWait2Deadline) this.#enterClosed(null);
    }
    if (this.state !== "CLOSED") {
      const sender = this.#sender;
      const sending = SYNCHRONIZED_SEND_STATES.has(this.state);
      if (now >= sender.rtoDeadline) this.#onRetransmissionTimeout(now);
      if (now >= sender.ptoDeadline) sender.onProbeTimeout(now, out, sending);
      if (now >= sender.persistDeadline && !sender.onPersistTimeout(now, out, sending)) this.#timedOut();
      if (now >= this.#keepalive.deadline) this.#onKeepaliveTimeout(now, out);
      if (now >= this.#receiver.delayedAckDeadline) this.#receiver.ackNow = true;
      this.#output(now, out);
    }
    this.#flushEvents();
    return this.nextDeadline();
  }

  /** The earliest armed timer, or null. */
  nextDeadline(): number | null {
    if (this.state === "CLOSED") return null;
    const sender = this.#sender;
    const d = Math.min(
      sender.rtoDeadline,
      sender.ptoDeadline,
      this.#receiver.delayedAckDeadline,
      sender.persistDeadline,
      this.#keepalive.deadline,
      this.#timeWaitDeadline,
      this.#finWait2Deadline,
    );
    return d === Infinity ? null : d;
  }

  #timedOut(): void {
    this.#ctx.stats.timeouts++;
    this.#enterClosed("timeout");
  }

  #onRetransmissionTimeout(now: number): void {
    const handshake = this.state === "SYN_SENT" || this.state === "SYN_RECEIVED";
    if (!this.#sender.onRetransmissionTimeout(now, handshake)) this.#timedOut();
    else if (this.state === "SYN_SENT") this.#sender.sndNxt = this.#sender.iss; // resend the SYN
    else if (handshake) this.#synAckDue = true; // resend the SYN,ACK
  }

  #onKeepaliveTimeout(now: number, out: Ipv4Sink): void {
    const sender = this.#sender;
    const idle = (this.state === "ESTABLISHED" || this.state === "CLOSE_WAIT") &&
      sender.sndUna === sender.sndNxt;
    const action = this.#keepalive.expire(now, idle);
    if (action === KeepaliveAction.TimedOut) {
      this.#timedOut();
    } else if (action === KeepaliveAction.Probe) {
      // RFC 9293 §3.8.4: SEG.SEQ = SND.NXT − 1, no data (Linux form).
      this.#ctx.stats.keepaliveProbes++;
      this.#emitter.emit(out, now, seqAdd(sender.sndNxt, -1), TcpFlags.ACK, 0, false);
    }
  }

  #flushEvents(): void {
    const events = this.#events;
    if (events === 0) return;
    this.#events = 0;
    this.onEvent?.(this, events);
  }

  // ───────────────────────────── output ─────────────────────────────

  #output(now: number, out: Ipv4Sink): void {
    this.#emitter.flushReset(out);
    const state = this.state;
    if (state === "CLOSED") return;
    const sender = this.#sender;
    if (state === "SYN_SENT") {
      if (sender.sndNxt === sender.iss) sender.sendSyn(now, out, false);
      return;
    }
    if (state === "SYN_RECEIVED") {
      if (sender.sndNxt === sender.iss || this.#synAckDue) {
        this.#synAckDue = false;
        sender.sendSyn(now, out, true);
      } else if (this.#receiver.ackNow) {
        this.#emitter.emit(out, now, sender.sndNxt, TcpFlags.ACK, 0, false);
      }
      return;
    }
    let sent = false;
    if (SYNCHRONIZED_SEND_STATES.has(state)) {
      sent = sender.output(now, out);
      if (state !== "LAST_ACK") this.#keepalive.arm(now);
    }
    if (!sent && this.#receiver.ackNow) this.#emitter.emit(out, now, sender.sndNxt, TcpFlags.ACK, 0, false);
  }
}

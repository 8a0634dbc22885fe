/**
 * The segment emitter of a connection: writes one IPv4+TCP or IPv6+TCP packet into the layer's shared
 * scratch buffer — header, options (SYN options, timestamps, SACK blocks), payload from the sender — fills
 * the checksum (or leaves it to an offloading device) and hands it to the IP sink. A connection whose
 * addresses are IPv6 handles (see `lib/iface/ipv6_handles.ts`) writes IPv6 (RFC 8200 §8.1 pseudo-header,
 * GSO type TCPV6) and sends through the sink's `sendIpv6`. Every segment after the
 * SYN carries the ACK, window and timestamps the receiver dictates (RFC 9293 §3.10.7.4, RFC 7323).
 *
 * @module
 */

import type { Ipv4Sink, Ipv6Sink } from "../iface/protocol.ts";
import { type Ipv6Handles, isIpv6Handle } from "../iface/ipv6_handles.ts";
import { IPV6_HEADER_LENGTH, NextHeader, writeIpv6Header } from "../wire/ipv6.ts";
import { foldSum, ipv4PseudoHeaderSum } from "../wire/checksum.ts";
import { GsoType, TxFlags, TxOffload } from "../wire/offload.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import {
  fillTcpChecksum,
  fillTcpChecksumIpv6,
  TCP_HEADER_LENGTH,
  TcpFlags,
  tcpIpv6PseudoSum,
  writeMssOption,
  writeSackPermittedOption,
  writeTcpHeader,
  writeTimestampsOption,
  writeWindowScaleOption,
} from "../wire/tcp.ts";
import type { TcpReceiver } from "./receiver.ts";
import { sendReset } from "./reset.ts";
import type { TcpStats } from "./stats.ts";

/** What the emitter needs from the send side: the payload bytes and the timestamp clock. */
export interface PayloadSource {
  /** Whether timestamps are in use (RFC 7323 §3.2). */
  readonly timestamps: boolean;
  /** Whether SACK is in use (RFC 2018). */
  readonly sack: boolean;
  /** Payload bytes per full-size segment; larger payloads are TSO super-segments. */
  readonly sendMss: number;
  /** Our TSval at `now` (RFC 7323 §4.1). */
  tsNow(now: number): number;
  /** Copies `length` bytes of the send buffer starting at sequence number `seq` into `into` at `offset`. */
  copyPayload(seq: number, into: Uint8Array, offset: number, length: number): void;
}

/**
 * The addresses and ports of a connection: the one place its segments' IP header is built from (see
 * {@link SegmentEmitter}).
 */
export interface TcpEndpoints {
  /** Our address. */
  readonly localAddress: number;
  /** Our port. */
  readonly localPort: number;
  /** The peer's address. */
  readonly remoteAddress: number;
  /** The peer's port. */
  readonly remotePort: number;
}

/**
 * The offload request handed down with each segment to an offloading link: one for all connections, as
 * a sink may use it only during the call (a typed object per connection would cost ~100 bytes each).
 */
const OFFLOAD = new TxOffload();

/** Writes and sends the segments of one connection. */
export class SegmentEmitter {
  /** Where payloads and TSvals come from; set once by the sender it serves. */
  source: PayloadSource | null = null;
  readonly #scratch: Uint8Array;
  readonly #stats: TcpStats;
  readonly #receiver: TcpReceiver;
  readonly #localAddress: number;
  readonly #localPort: number;
  readonly #remoteAddress: number;
  readonly #remotePort: number;
  /** The connection's IPv6 addresses (16 bytes each), or `null` for IPv4. */
  readonly #local6: Uint8Array | null;
  readonly #remote6: Uint8Array | null;
  #cachedView: Uint8Array | null = null;
  #pendingRstSeq = 0;
  #pendingRstAck = 0;
  #pendingRstWithAck = false;
  /** Whether a RST waits for {@link flushReset}. */
  resetPending = false;

  /**
   * An emitter for the connection between `endpoints`, writing into `scratch`; `handles` resolves
   * IPv6 handles to addresses.
   */
  constructor(
    scratch: Uint8Array,
    stats: TcpStats,
    receiver: TcpReceiver,
    endpoints: TcpEndpoints,
    handles: Ipv6Handles | null = null,
  ) {
    this.#scratch = scratch;
    this.#stats = stats;
    this.#receiver = receiver;
    this.#localAddress = endpoints.localAddress;
    this.#localPort = endpoints.localPort;
    this.#remoteAddress = endpoints.remoteAddress;
    this.#remotePort = endpoints.remotePort;
    const v6 = handles !== null && isIpv6Handle(endpoints.localAddress);
    // Copies: the handles are released when the connection is removed, after its last segment.
    this.#local6 = v6 ? handles.address(endpoints.localAddress).slice() : null;
    this.#remote6 = v6 ? handles.address(endpoints.remoteAddress).slice() : null;
  }

  /** The IP header's length for this connection's family. */
  get ipHeaderLength(): number {
    return this.#local6 === null ? IPV4_HEADER_LENGTH : IPV6_HEADER_LENGTH;
  }

  /**
   * Writes and sends one segment carrying `length` bytes of the send buffer starting at `seq`
   * (`withData`), or none. Every segment after the SYN carries ACK, window and timestamps.
   */
  emit(out: Ipv4Sink, now: number, seq: number, flags: number, length: number, withData: boolean): void {
    const source = this.source!;
    const receiver = this.#receiver;
    const buf = this.#scratch;
    const v6 = this.#local6 !== null;
    const tcpOffset = v6 ? IPV6_HEADER_LENGTH : IPV4_HEADER_LENGTH;
    const syn = (flags & TcpFlags.SYN) !== 0;
    let o = tcpOffset + TCP_HEADER_LENGTH;
    let window: number;
    if (syn) {
      // RFC 7323 §2.2: a SYN's window is unscaled; the option order follows Linux.
      window = receiver.synWindow();
      o = writeMssOption(buf, o, receiver.advertisedMss);
      // Before the peer's SYN we offer what we are configured for, after it what was negotiated; the
      // echoed timestamp is 0 until the peer's SYN set TS.Recent.
      if (source.sack) o = writeSackPermittedOption(buf, o);
      if (source.timestamps) o = writeTimestampsOption(buf, o, source.tsNow(now), receiver.tsRecent);
      if (receiver.offerWindowScale) o = writeWindowScaleOption(buf, o, receiver.rcvScale);
    } else {
      window = receiver.windowField();
      if (source.timestamps) o = writeTimestampsOption(buf, o, source.tsNow(now), receiver.tsRecent);
      if (source.sack && (flags & TcpFlags.ACK)) {
        // RFC 2018 §3: as many blocks as fit (3 next to timestamps, else 4).
        o = receiver.writeSackBlocks(buf, o, source.timestamps ? 3 : 4);
      }
    }
    const optionsLength = o - tcpOffset - TCP_HEADER_LENGTH;
    writeTcpHeader(
      buf,
      tcpOffset,
      this.#localPort,
      this.#remotePort,
      seq,
      flags & TcpFlags.ACK ? receiver.rcvNxt : 0,
      flags,
      window,
      optionsLength,
    );
    if (withData && length > 0) {
      source.copyPayload(seq, buf, o, length);
    } else {
      length = 0;
    }
    const tcpLength = TCP_HEADER_LENGTH + optionsLength + length;
    const offload = out.offloads === true;
    if (v6) writeIpv6Header(buf, 0, this.#local6!, this.#remote6!, NextHeader.TCP, tcpLength);
    if (offload) {
      // Checksum offload: the field holds the folded pseudo-header sum (computed here and nowhere
      // else); the device completes it from the descriptor filled below.
      const sum = foldSum(
        v6
          ? tcpIpv6PseudoSum(buf, 0, tcpLength)
          : ipv4PseudoHeaderSum(this.#localAddress, this.#remoteAddress, IpProtocol.TCP, tcpLength),
      );
      buf[tcpOffset + 16] = sum >> 8;
      buf[tcpOffset + 17] = sum & 0xff;
    } else if (v6) {
      fillTcpChecksumIpv6(buf, tcpOffset, tcpLength, 0);
    } else {
      fillTcpChecksum(buf, tcpOffset, tcpLength, this.#localAddress, this.#remoteAddress);
    }
    if (!v6) writeIpv4Header(buf, 0, this.#localAddress, this.#remoteAddress, IpProtocol.TCP, tcpLength);
    const total = tcpOffset + tcpLength;
    let view = this.#cachedView;
    if (view === null || view.length !== total || view.buffer !== buf.buffer) {
      view = buf.subarray(0, total);
      this.#cachedView = view;
    }
    if (flags & TcpFlags.ACK) receiver.onAckSent();
    const stats = this.#stats;
    stats.segmentsOut++;
    stats.bytesOut += length;
    if (offload) {
      // A payload above the MSS is a super-segment the device cuts into MSS-sized segments (TSO).
      const mss = source.sendMss;
      const d = OFFLOAD;
      d.flags = TxFlags.CHECKSUM_PARTIAL;
      d.checksumStart = tcpOffset;
      d.checksumOffset = 16;
      d.headerLength = tcpOffset + TCP_HEADER_LENGTH + optionsLength;
      d.gsoType = length > mss ? (v6 ? GsoType.TCPV6 : GsoType.TCPV4) : GsoType.NONE;
      d.gsoSize = length > mss ? mss : 0;
      if (v6) (out as unknown as Ipv6Sink).sendIpv6(view, d);
      else out.sendIpv4(view, d);
    } else if (v6) {
      (out as unknown as Ipv6Sink).sendIpv6(view);
    } else {
      out.sendIpv4(view);
    }
  }

  /**
   * Queues a RST from this connection's endpoints: `<SEQ=seq><ACK=ack><CTL=RST,ACK>` with `withAck`,
   * else `<SEQ=seq><CTL=RST>` (RFC 9293 §3.10.7). It leaves at the next {@link flushReset}, which every
   * output pass of the connection starts with.
   */
  queueReset(seq: number, ack: number, withAck: boolean): void {
    this.resetPending = true;
    this.#pendingRstSeq = seq;
    this.#pendingRstAck = ack;
    this.#pendingRstWithAck = withAck;
  }

  /** Sends the queued RST, if any. */
  flushReset(out: Ipv4Sink): void {
    if (!this.resetPending) return;
    this.resetPending = false;
    const stats = this.#stats;
    stats.resetsOut++;
    stats.segmentsOut++;
    sendReset(
      this.#scratch,
      out,
      this.#local6 ?? this.#localAddress,
      this.#localPort,
      this.#remote6 ?? this.#remoteAddress,
      this.#remotePort,
      this.#pendingRstSeq,
      this.#pendingRstAck,
      this.#pendingRstWithAck,
    );
    this.#cachedView = null;
  }
}

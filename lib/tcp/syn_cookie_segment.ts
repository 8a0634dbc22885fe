/**
 * The SYN,ACK that carries a SYN cookie, written by the layer without a connection: the same header and
 * option layout as a connection's own SYN,ACK (MSS, SACK-permitted, timestamps, window scale, in Linux's
 * order), so that the connection later made from the cookie agrees with what the peer was told.
 *
 * @module
 */

import type { Ipv4Sink, Ipv6Sink } from "../iface/protocol.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import { IPV6_HEADER_LENGTH, NextHeader, writeIpv6Header } from "../wire/ipv6.ts";
import {
  fillTcpChecksum,
  fillTcpChecksumIpv6,
  TCP_HEADER_LENGTH,
  TcpFlags,
  writeMssOption,
  writeSackPermittedOption,
  writeTcpHeader,
  writeTimestampsOption,
  writeWindowScaleOption,
} from "../wire/tcp.ts";
import type { TcpConfig } from "./config.ts";
import type { CookieAddress } from "./syn_cookie.ts";

/** Fields of a cookie SYN,ACK. */
export interface CookieSynAck {
  /** Our address (a number over IPv4, 16 bytes over IPv6). */
  src: CookieAddress;
  /** Our port. */
  srcPort: number;
  /** The peer's address, of the same family. */
  dst: CookieAddress;
  /** The peer's port. */
  dstPort: number;
  /** The cookie: our ISS. */
  seq: number;
  /** The peer's ISN + 1. */
  ack: number;
  /** Whether to send timestamps (the peer offered them). */
  timestamps: boolean;
  /** Our TSval, carrying the peer's options in its low bits. */
  tsVal: number;
  /** The peer's TSval, echoed. */
  tsEcr: number;
  /** Whether to offer our window scale. */
  windowScaling: boolean;
  /** Whether to send SACK-permitted. */
  sack: boolean;
}

/** Our window scale shift for `config` (as a connection computes it from its receive buffer). */
export function ourWindowScale(config: TcpConfig): number {
  let shift = 0;
  while ((config.recvBufferSize >> shift) > 65535 && shift < 14) shift++;
  return config.windowScaling ? shift : 0;
}

/**
 * Writes the cookie SYN,ACK into `scratch` and sends it: an IPv4 packet, or an IPv6 one through the
 * sink's `sendIpv6` when the addresses are 16 bytes. `config` is the family's (over IPv6, the layer's
 * IPv6 view of it, whose MTU yields the IPv6 MSS: RFC 8200 §8.3).
 */
export function writeCookieSynAck(
  scratch: Uint8Array,
  out: Ipv4Sink,
  config: TcpConfig,
  f: CookieSynAck,
): void {
  const v6 = typeof f.src !== "number";
  const tcpOffset = v6 ? IPV6_HEADER_LENGTH : IPV4_HEADER_LENGTH;
  let o = tcpOffset + TCP_HEADER_LENGTH;
  o = writeMssOption(scratch, o, Math.min(65535, config.mtu - IPV4_HEADER_LENGTH - TCP_HEADER_LENGTH));
  if (f.sack) o = writeSackPermittedOption(scratch, o);
  if (f.timestamps) o = writeTimestampsOption(scratch, o, f.tsVal, f.tsEcr);
  if (f.windowScaling) o = writeWindowScaleOption(scratch, o, ourWindowScale(config));
  const optionsLength = o - tcpOffset - TCP_HEADER_LENGTH;
  // RFC 7323 §2.2: the window of a SYN is not scaled.
  const window = Math.min(65535, config.recvBufferSize);
  writeTcpHeader(
    scratch,
    tcpOffset,
    f.srcPort,
    f.dstPort,
    f.seq,
    f.ack,
    TcpFlags.SYN | TcpFlags.ACK,
    window,
    optionsLength,
  );
  const tcpLength = TCP_HEADER_LENGTH + optionsLength;
  if (v6) {
    writeIpv6Header(scratch, 0, f.src as Uint8Array, f.dst as Uint8Array, NextHeader.TCP, tcpLength);
    fillTcpChecksumIpv6(scratch, tcpOffset, tcpLength, 0);
    (out as unknown as Ipv6Sink).sendIpv6(scratch.subarray(0, tcpOffset + tcpLength));
    return;
  }
  fillTcpChecksum(scratch, tcpOffset, tcpLength, f.src as number, f.dst as number);
  writeIpv4Header(scratch, 0, f.src as number, f.dst as number, IpProtocol.TCP, tcpLength);
  out.sendIpv4(scratch.subarray(0, IPV4_HEADER_LENGTH + tcpLength));
}

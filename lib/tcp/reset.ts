/**
 * Writing bare control segments that belong to no connection state: RSTs for closed ports and bad
 * ACKs (RFC 9293 §3.10.7.1, §3.10.7.3).
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
  writeTcpHeader,
} from "../wire/tcp.ts";

/**
 * Sends a 40-byte IPv4+TCP RST (60 bytes over IPv6) from `src:srcPort` to `dst:dstPort` using `scratch`.
 * With `withAck`, the segment is `<SEQ=seq><ACK=ack><CTL=RST,ACK>`, else `<SEQ=seq><CTL=RST>`. Addresses
 * given as 16 bytes make an IPv6 packet, sent through the sink's `sendIpv6`.
 */
export function sendReset(
  scratch: Uint8Array,
  out: Ipv4Sink,
  src: number | Uint8Array,
  srcPort: number,
  dst: number | Uint8Array,
  dstPort: number,
  seq: number,
  ack: number,
  withAck: boolean,
): void {
  const v6 = typeof src !== "number";
  const tcpOffset = v6 ? IPV6_HEADER_LENGTH : IPV4_HEADER_LENGTH;
  writeTcpHeader(
    scratch,
    tcpOffset,
    srcPort,
    dstPort,
    seq >>> 0,
    withAck ? ack >>> 0 : 0,
    withAck ? TcpFlags.RST | TcpFlags.ACK : TcpFlags.RST,
    0,
  );
  if (v6) {
    writeIpv6Header(scratch, 0, src, dst as Uint8Array, NextHeader.TCP, TCP_HEADER_LENGTH);
    fillTcpChecksumIpv6(scratch, tcpOffset, TCP_HEADER_LENGTH, 0);
    (out as unknown as Ipv6Sink).sendIpv6(scratch.subarray(0, tcpOffset + TCP_HEADER_LENGTH));
    return;
  }
  fillTcpChecksum(scratch, tcpOffset, TCP_HEADER_LENGTH, src, dst as number);
  writeIpv4Header(scratch, 0, src, dst as number, IpProtocol.TCP, TCP_HEADER_LENGTH);
  out.sendIpv4(scratch.subarray(0, IPV4_HEADER_LENGTH + TCP_HEADER_LENGTH));
}

/**
 * Writing bare control segments that belong to no connection state: RSTs for closed ports and bad
 * ACKs (RFC 9293 §3.10.7.1, §3.10.7.3).
 *
 * @module
 */

import type { Ipv4Sink } from "../iface/protocol.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import { fillTcpChecksum, TCP_HEADER_LENGTH, TcpFlags, writeTcpHeader } from "../wire/tcp.ts";

/**
 * Sends a 40-byte IPv4+TCP RST from `src:srcPort` to `dst:dstPort` using `scratch` (≥ 40 bytes).
 * With `withAck`, the segment is `<SEQ=seq><ACK=ack><CTL=RST,ACK>`, else `<SEQ=seq><CTL=RST>`.
 */
export function sendReset(
  scratch: Uint8Array,
  out: Ipv4Sink,
  src: number,
  srcPort: number,
  dst: number,
  dstPort: number,
  seq: number,
  ack: number,
  withAck: boolean,
): void {
  const tcpOffset = IPV4_HEADER_LENGTH;
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
  fillTcpChecksum(scratch, tcpOffset, TCP_HEADER_LENGTH, src, dst);
  writeIpv4Header(scratch, 0, src, dst, IpProtocol.TCP, TCP_HEADER_LENGTH);
  out.sendIpv4(scratch.subarray(0, IPV4_HEADER_LENGTH + TCP_HEADER_LENGTH));
}

/**
 * A TCP/IPv4 packet as an offloading TCP sender hands it down: checksum field holding only the folded
 * pseudo-header sum, with the matching offload descriptor.
 *
 * @module
 */

import { foldSum, ipv4PseudoHeaderSum } from "../../lib/wire/checksum.ts";
import { IpProtocol } from "../../lib/wire/ipv4.ts";
import { GsoType, TxFlags, TxOffload } from "../../lib/wire/offload.ts";
import { buildSegment } from "./tcp_packet.ts";

/** Builds a checksum-partial segment `src:1000 → dst:80` with `payload` bytes, and its descriptor. */
export function partialTcpPacket(
  src: number,
  dst: number,
  payload: number,
  gsoSize = 0,
): { packet: Uint8Array; offload: TxOffload } {
  const packet = buildSegment({ src, dst, srcPort: 1000, dstPort: 80, flags: "P.", seq: 1, ack: 1, payload })
    .slice();
  const sum = foldSum(ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, packet.length - 20));
  packet[36] = sum >> 8;
  packet[37] = sum & 0xff;
  const offload = new TxOffload();
  offload.flags = TxFlags.CHECKSUM_PARTIAL;
  offload.checksumStart = 20;
  offload.checksumOffset = 16;
  offload.headerLength = 40;
  offload.gsoType = gsoSize > 0 ? GsoType.TCPV4 : GsoType.NONE;
  offload.gsoSize = gsoSize;
  return { packet, offload };
}

/** Whether the TCP checksum of the IPv4 `packet` (a 20-byte header) verifies. */
export function tcpChecksumValid(packet: Uint8Array, src: number, dst: number): boolean {
  let sum = ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, packet.length - 20);
  for (let i = 20; i < packet.length; i += 2) {
    sum += (packet[i] << 8) | (i + 1 < packet.length ? packet[i + 1] : 0);
  }
  return (~foldSum(sum) & 0xffff) === 0;
}

/**
 * Recognising an unfinished (partial) transport checksum on a packet that was meant to be complete.
 *
 * A Linux sender that leaves the TCP/UDP checksum to transmit offload (CHECKSUM_PARTIAL: a veth, a
 * container's interface, a bridge port) writes only the folded pseudo-header sum into the checksum field;
 * the device below would finish it. A capture (libpcap, AF_PACKET without virtio_net_hdr) taps the frame
 * before that and hands it over unfinished, so it fails verification. This module tells that case apart
 * from ordinary corruption, so that it can be named and counted on its own.
 *
 * @module
 */

import { foldSum, ipv4PseudoHeaderSum, sumWords } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";

/**
 * Whether `packet` (an IPv4 packet, from its first byte) is an unfragmented TCP or UDP packet whose
 * checksum fails in exactly the way an unfinished partial checksum does: the field holds the folded
 * pseudo-header sum (RFC 793 §3.1, RFC 768) and the full checksum does not verify. A packet that verifies
 * is never reported (a complete checksum may equal the pseudo-header sum by chance). Never throws.
 */
export function hasUnfinishedChecksum(packet: Uint8Array): boolean {
  if (packet.length < 20 || packet[0] >> 4 !== 4) return false;
  const headerLength = (packet[0] & 0x0f) * 4;
  const total = (packet[2] << 8) | packet[3];
  if (headerLength < 20 || total < headerLength || total > packet.length) return false;
  // A fragment's checksum covers the whole datagram: only reassembly could judge it.
  if (((packet[6] & 0x3f) | packet[7]) !== 0) return false;
  const protocol = packet[9];
  const field = protocol === IpProtocol.TCP ? 16 : protocol === IpProtocol.UDP ? 6 : -1;
  if (field < 0 || headerLength + field + 2 > total) return false;
  const at = headerLength + field;
  const value = (packet[at] << 8) | packet[at + 1];
  if (protocol === IpProtocol.UDP && value === 0) return false; // no checksum (RFC 768)
  const src = (packet[12] << 24 | packet[13] << 16 | packet[14] << 8 | packet[15]) >>> 0;
  const dst = (packet[16] << 24 | packet[17] << 16 | packet[18] << 8 | packet[19]) >>> 0;
  const pseudo = ipv4PseudoHeaderSum(src, dst, protocol, total - headerLength);
  if (value !== foldSum(pseudo)) return false;
  // A verified segment sums (pseudo-header included) to 0xffff.
  return foldSum(sumWords(packet, headerLength, total, pseudo)) !== 0xffff;
}

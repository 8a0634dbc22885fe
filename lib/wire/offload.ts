/**
 * Checksum offload helpers: completing a TCP or UDP checksum that a sender left partial (the field holds
 * only the pseudo-header sum, as with virtio_net_hdr NEEDS_CSUM), for tools that want real checksums
 * (e.g. a pcap capture).
 *
 * @module
 */

import { foldSum, sumWords } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";

/**
 * Completes in place the TCP or UDP checksum of an IPv4 packet whose checksum field holds the folded
 * pseudo-header sum. Returns false (and changes nothing) for anything else or a malformed packet.
 */
export function completePartialChecksum(packet: Uint8Array): boolean {
  if (packet.length < 20 || packet[0] >> 4 !== 4) return false;
  const headerLength = (packet[0] & 0x0f) * 4;
  const total = Math.min(packet.length, (packet[2] << 8) | packet[3]);
  const protocol = packet[9];
  const field = protocol === IpProtocol.TCP ? 16 : protocol === IpProtocol.UDP ? 6 : -1;
  if (field < 0 || headerLength + field + 2 > total) return false;
  // The field already holds the pseudo-header sum, so summing the segment as it is adds both.
  const checksum = ~foldSum(sumWords(packet, headerLength, total)) & 0xffff;
  const value = protocol === IpProtocol.UDP && checksum === 0 ? 0xffff : checksum;
  packet[headerLength + field] = value >> 8;
  packet[headerLength + field + 1] = value & 0xff;
  return true;
}

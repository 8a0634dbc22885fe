/**
 * Offloads as data: the flags a device attaches to received packets, and the descriptor a protocol
 * hands down with a packet it sends when the link takes checksum and segmentation offload (what
 * Linux's virtio_net_hdr carries: checksum start and offset, header length, GSO type and size). The
 * protocol that writes the headers fills the descriptor; nothing below re-parses them to find out.
 * Also the one completion of a partial checksum (the field holding only the pseudo-header sum).
 *
 * @module
 */

import { foldSum, sumWords } from "./checksum.ts";
import { IpProtocol } from "./ipv4.ts";

/** Flags a device attaches to a received packet. */
export const RxFlags = {
  /**
   * The transport checksum need not be verified: the packet comes from the local kernel with its checksum
   * left partial (virtio_net_hdr NEEDS_CSUM) or already verified (DATA_VALID).
   */
  CHECKSUM_TRUSTED: 1,
  /** The TCP/UDP checksum field holds only the pseudo-header sum (the sender left it to offload). */
  CHECKSUM_PARTIAL: 2,
} as const;

/** Bits of {@link TxOffload.flags}. */
export const TxFlags = {
  /**
   * The TCP/UDP checksum field holds only the pseudo-header sum; the device (or the kernel behind it)
   * completes it, or trusts it on local delivery.
   */
  CHECKSUM_PARTIAL: 1,
} as const;

/** Segmentation an offloading device performs on a super-segment ({@link TxOffload.gsoType}). */
export const GsoType = {
  /** None: the packet leaves as it is. */
  NONE: 0,
  /** TCP over IPv4: cut the payload into segments of {@link TxOffload.gsoSize} bytes (TSO). */
  TCPV4: 1,
  /** TCP over IPv6, the same (TSO6). */
  TCPV6: 2,
} as const;

/**
 * The offload request for one outgoing packet. Offsets count from the start of the network-layer
 * packet (the IP header); a device adds the length of its own link header (e.g. 14 for Ethernet).
 * Owners reuse one descriptor for every packet: it is valid only during the send call that carries it.
 */
export class TxOffload {
  /** {@link TxFlags} bits. */
  flags = 0;
  /** Where the checksummed transport data starts (the transport header), with CHECKSUM_PARTIAL. */
  checksumStart = 0;
  /** Offset of the checksum field from {@link checksumStart} (TCP 16, UDP 6). */
  checksumOffset = 0;
  /** Length of the network and transport headers: where the payload that segmentation cuts begins. */
  headerLength = 0;
  /** {@link GsoType} value. */
  gsoType: number = GsoType.NONE;
  /** Payload bytes per segment when {@link gsoType} is not NONE, else 0. */
  gsoSize = 0;

  /** Whether the checksum is left to the device. */
  get checksumPartial(): boolean {
    return (this.flags & TxFlags.CHECKSUM_PARTIAL) !== 0;
  }

  /** Copies `other` into this descriptor (for holders that outlive the send call). */
  copyFrom(other: TxOffload): void {
    this.flags = other.flags;
    this.checksumStart = other.checksumStart;
    this.checksumOffset = other.checksumOffset;
    this.headerLength = other.headerLength;
    this.gsoType = other.gsoType;
    this.gsoSize = other.gsoSize;
  }
}

/**
 * Completes in place a partial checksum: the field at `start + fieldOffset` holds the folded
 * pseudo-header sum, and the checksummed data runs from `start` to the end of `packet`. With `udp`, a
 * result of 0 is sent as 0xffff (RFC 768).
 */
export function completeChecksumAt(
  packet: Uint8Array,
  start: number,
  fieldOffset: number,
  udp = false,
): void {
  // The field already holds the pseudo-header sum, so summing the segment as it is adds both.
  const checksum = ~foldSum(sumWords(packet, start, packet.length)) & 0xffff;
  const value = udp && checksum === 0 ? 0xffff : checksum;
  packet[start + fieldOffset] = value >> 8;
  packet[start + fieldOffset + 1] = value & 0xff;
}

/**
 * Completes the checksum of an outgoing IPv4 packet that `offload` says is partial; does nothing
 * otherwise. Zero link padding after the packet (a short Ethernet frame) does not change the sum. Used where such a packet cannot go down as it is
 * (fragmentation, a queue, a capture).
 */
export function completeTxChecksum(packet: Uint8Array, offload: TxOffload): void {
  if (!offload.checksumPartial) return;
  // A field 6 bytes in is UDP's (TCP's is at 16): there a computed 0 is sent as 0xffff.
  completeChecksumAt(packet, offload.checksumStart, offload.checksumOffset, offload.checksumOffset === 6);
}

/**
 * Completes in place the TCP or UDP checksum of a received IPv4 or IPv6 packet whose checksum field holds the
 * folded pseudo-header sum (a device's {@link RxFlags.CHECKSUM_PARTIAL}; no descriptor comes with
 * those), for tools that want real checksums (e.g. a pcap capture). Returns false (and changes nothing)
 * for anything else or a malformed packet.
 */
export function completePartialChecksum(packet: Uint8Array): boolean {
  const version = packet.length > 0 ? packet[0] >> 4 : 0;
  if (version === 6 && packet.length < 40) return false;
  if (version !== 6 && (packet.length < 20 || version !== 4)) return false;
  // IPv6: the transport header right after the fixed header (the kernel offloads no other layout to us).
  const headerLength = version === 6 ? 40 : (packet[0] & 0x0f) * 4;
  const total = Math.min(
    packet.length,
    version === 6 ? 40 + ((packet[4] << 8) | packet[5]) : (packet[2] << 8) | packet[3],
  );
  const protocol = version === 6 ? packet[6] : packet[9];
  const field = protocol === IpProtocol.TCP ? 16 : protocol === IpProtocol.UDP ? 6 : -1;
  if (field < 0 || headerLength + field + 2 > total) return false;
  completeChecksumAt(packet.subarray(0, total), headerLength, field, protocol === IpProtocol.UDP);
  return true;
}

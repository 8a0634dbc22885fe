/**
 * UDP datagrams (RFC 768): a checked view with pseudo-header checksum and a header writer.
 *
 * @module
 */

import { foldSum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum, sumWords } from "./checksum.ts";
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET, NextHeader } from "./ipv6.ts";
import type { Ipv4Address } from "./ipv4_address.ts";
import { IpProtocol } from "./ipv4.ts";
import { ByteView } from "./view.ts";

/** Length of the UDP header. */
export const UDP_HEADER_LENGTH = 8;

/** Why a received UDP datagram is malformed. */
export type UdpError = "truncated" | "bad-length" | "bad-checksum" | "zero-checksum";

/** A reusable view over a UDP datagram (the IP payload). */
export class UdpDatagram extends ByteView {
  /**
   * Validates the length field against the bytes present and, unless the checksum field is zero (sender
   * computed none, allowed over IPv4 by RFC 768) or `verifyChecksum` is false (offloaded), the checksum
   * over the pseudo-header.
   */
  check(src: Ipv4Address, dst: Ipv4Address, verifyChecksum = true): UdpError | null {
    const b = this.bytes;
    if (b.length < UDP_HEADER_LENGTH) return "truncated";
    const length = (b[4] << 8) | b[5];
    if (length < UDP_HEADER_LENGTH || length > b.length) return "bad-length";
    if (!verifyChecksum || ((b[6] << 8) | b[7]) === 0) return null;
    const sum = sumWords(b, 0, length, ipv4PseudoHeaderSum(src, dst, IpProtocol.UDP, length));
    if (foldSum(sum) !== 0xffff) return "bad-checksum";
    return null;
  }

  /**
   * Validates a datagram carried by IPv6: `packet` holds the IPv6 header whose addresses enter the
   * pseudo-header (RFC 8200 §8.1). A zero checksum is refused: over IPv6 the checksum is mandatory.
   */
  checkIpv6(packet: Uint8Array, verifyChecksum = true): UdpError | null {
    const b = this.bytes;
    if (b.length < UDP_HEADER_LENGTH) return "truncated";
    const length = (b[4] << 8) | b[5];
    if (length < UDP_HEADER_LENGTH || length > b.length) return "bad-length";
    if (!verifyChecksum) return null;
    if (((b[6] << 8) | b[7]) === 0) return "zero-checksum";
    const initial = ipv6PseudoHeaderSum(packet, IPV6_SRC_OFFSET, IPV6_DST_OFFSET, NextHeader.UDP, length);
    if (foldSum(sumWords(b, 0, length, initial)) !== 0xffff) return "bad-checksum";
    return null;
  }

  /** Source port. */
  get srcPort(): number {
    return (this.bytes[0] << 8) | this.bytes[1];
  }
  /** Destination port. */
  get dstPort(): number {
    return (this.bytes[2] << 8) | this.bytes[3];
  }
  /** Length of header and data, from the header. */
  get length(): number {
    return (this.bytes[4] << 8) | this.bytes[5];
  }
  /** Checksum as received (0: none). */
  get checksum(): number {
    return (this.bytes[6] << 8) | this.bytes[7];
  }
  /** The data (a new subarray). */
  data(): Uint8Array {
    return this.bytes.subarray(UDP_HEADER_LENGTH, this.length);
  }
}

/**
 * Writes a UDP header at `buf[offset..offset+8)` for `dataLength` bytes of data already at
 * `buf[offset+8..]`, with the checksum over the pseudo-header. A computed checksum of zero is sent as
 * 0xffff (RFC 768: zero means "no checksum").
 */
export function writeUdpHeader(
  buf: Uint8Array,
  offset: number,
  src: Ipv4Address,
  dst: Ipv4Address,
  srcPort: number,
  dstPort: number,
  dataLength: number,
): void {
  const length = UDP_HEADER_LENGTH + dataLength;
  buf[offset] = srcPort >> 8;
  buf[offset + 1] = srcPort & 0xff;
  buf[offset + 2] = dstPort >> 8;
  buf[offset + 3] = dstPort & 0xff;
  buf[offset + 4] = length >> 8;
  buf[offset + 5] = length & 0xff;
  buf[offset + 6] = 0;
  buf[offset + 7] = 0;
  const sum = sumWords(buf, offset, offset + length, ipv4PseudoHeaderSum(src, dst, IpProtocol.UDP, length));
  const checksum = (~foldSum(sum) & 0xffff) || 0xffff;
  buf[offset + 6] = checksum >> 8;
  buf[offset + 7] = checksum & 0xff;
}

/**
 * Writes a UDP header at `buf[offset..offset+8)` for `dataLength` bytes of data already in place, inside an
 * IPv6 packet whose header (addresses written) starts at `ipOffset`; the checksum covers the IPv6
 * pseudo-header (RFC 8200 §8.1) and a computed zero is sent as 0xffff.
 */
export function writeUdpHeaderIpv6(
  buf: Uint8Array,
  offset: number,
  ipOffset: number,
  srcPort: number,
  dstPort: number,
  dataLength: number,
): void {
  const length = UDP_HEADER_LENGTH + dataLength;
  buf[offset] = srcPort >> 8;
  buf[offset + 1] = srcPort & 0xff;
  buf[offset + 2] = dstPort >> 8;
  buf[offset + 3] = dstPort & 0xff;
  buf[offset + 4] = length >> 8;
  buf[offset + 5] = length & 0xff;
  buf[offset + 6] = 0;
  buf[offset + 7] = 0;
  const initial = ipv6PseudoHeaderSum(
    buf,
    ipOffset + IPV6_SRC_OFFSET,
    ipOffset + IPV6_DST_OFFSET,
    NextHeader.UDP,
    length,
  );
  const checksum = (~foldSum(sumWords(buf, offset, offset + length, initial)) & 0xffff) || 0xffff;
  buf[offset + 6] = checksum >> 8;
  buf[offset + 7] = checksum & 0xff;
}

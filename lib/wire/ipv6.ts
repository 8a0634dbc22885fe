/**
 * IPv6 headers (RFC 8200 §3): a checked view over received bytes and a writer for outgoing headers. The
 * extension-header chain after the fixed header is walked by `ipv6_ext.ts`.
 *
 * @module
 */

import { ByteView } from "./view.ts";
import type { Ipv6Address } from "./ipv6_address.ts";

/** Length of the fixed IPv6 header. */
export const IPV6_HEADER_LENGTH = 40;

/** The minimum link MTU every IPv6 link has (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/** Offset of the source address in the header. */
export const IPV6_SRC_OFFSET = 8;
/** Offset of the destination address in the header. */
export const IPV6_DST_OFFSET = 24;

/** Next Header values (IANA protocol numbers) netstack knows. */
export const NextHeader = {
  HOP_BY_HOP: 0,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  ESP: 50,
  AH: 51,
  ICMPV6: 58,
  NO_NEXT_HEADER: 59,
  DESTINATION_OPTIONS: 60,
} as const;

/** Why a received packet is not a well-formed IPv6 packet; each reason is a drop counter. */
export type Ipv6Error = "truncated" | "bad-version" | "bad-payload-length";

/**
 * A reusable view of an IPv6 packet. {@link Ipv6Packet.check} must pass before the other accessors are
 * trusted. Addresses are read in place (`srcOffset`/`dstOffset` = 8/24) or copied with `src`/`dst`.
 */
export class Ipv6Packet extends ByteView {
  /**
   * Validates version and payload length against the bytes present (RFC 8200 §3). Link padding past the
   * payload is allowed. A payload length of 0 with a Jumbo Payload option (RFC 2675) is not supported:
   * the chain walk then finds no room for the next header and reports it.
   */
  check(): Ipv6Error | null {
    const b = this.bytes;
    if (b.length < IPV6_HEADER_LENGTH) return "truncated";
    if (b[0] >> 4 !== 6) return "bad-version";
    if (IPV6_HEADER_LENGTH + ((b[4] << 8) | b[5]) > b.length) return "bad-payload-length";
    return null;
  }

  /** IP version (6 for a valid packet). */
  get version(): number {
    return this.bytes[0] >> 4;
  }
  /** Traffic class (DSCP and ECN). */
  get trafficClass(): number {
    return ((this.bytes[0] & 0x0f) << 4) | (this.bytes[1] >> 4);
  }
  /** Flow label (20 bits). */
  get flowLabel(): number {
    return ((this.bytes[1] & 0x0f) << 16) | (this.bytes[2] << 8) | this.bytes[3];
  }
  /** Bytes after the fixed header, extension headers included. */
  get payloadLength(): number {
    return (this.bytes[4] << 8) | this.bytes[5];
  }
  /** The Next Header value of the fixed header, see {@link NextHeader}. */
  get nextHeader(): number {
    return this.bytes[6];
  }
  /** Hop limit. */
  get hopLimit(): number {
    return this.bytes[7];
  }
  /** End of the packet in `bytes` (link padding excluded). */
  get end(): number {
    return IPV6_HEADER_LENGTH + this.payloadLength;
  }
  /** A copy of the source address. */
  get src(): Ipv6Address {
    return this.bytes.slice(IPV6_SRC_OFFSET, IPV6_SRC_OFFSET + 16);
  }
  /** A copy of the destination address. */
  get dst(): Ipv6Address {
    return this.bytes.slice(IPV6_DST_OFFSET, IPV6_DST_OFFSET + 16);
  }
}

/**
 * Writes a 40-byte header at `buf[offset..offset+40)`. `payloadLength` counts everything after the fixed
 * header (extension headers included). Positional arguments keep the per-packet path free of allocation.
 * Hop limit 64 is Linux's default (RFC 8200 leaves it to the node).
 */
export function writeIpv6Header(
  buf: Uint8Array,
  offset: number,
  src: Ipv6Address,
  dst: Ipv6Address,
  nextHeader: number,
  payloadLength: number,
  hopLimit = 64,
  trafficClass = 0,
  flowLabel = 0,
): void {
  buf[offset] = 0x60 | (trafficClass >> 4);
  buf[offset + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >> 16) & 0x0f);
  buf[offset + 2] = (flowLabel >> 8) & 0xff;
  buf[offset + 3] = flowLabel & 0xff;
  buf[offset + 4] = payloadLength >> 8;
  buf[offset + 5] = payloadLength & 0xff;
  buf[offset + 6] = nextHeader;
  buf[offset + 7] = hopLimit;
  buf.set(src.subarray(0, 16), offset + IPV6_SRC_OFFSET);
  buf.set(dst.subarray(0, 16), offset + IPV6_DST_OFFSET);
}

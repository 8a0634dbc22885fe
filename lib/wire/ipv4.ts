/**
 * IPv4 headers (RFC 791): a checked view over received bytes and a writer for outgoing headers.
 *
 * @module
 */

import { internetChecksum, sumWords } from "./checksum.ts";
import { type Ipv4Address, readIpv4, writeIpv4 } from "./ipv4_address.ts";
import { ByteView } from "./view.ts";

/** Length of a header without options. */
export const IPV4_HEADER_LENGTH = 20;

/** IP protocol numbers (IANA) netstack knows. */
export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
} as const;

/** Why a received packet is not a well-formed IPv4 packet; each reason is a drop counter. */
export type Ipv4Error =
  | "truncated"
  | "bad-version"
  | "bad-header-length"
  | "bad-total-length"
  | "bad-checksum";

/**
 * A reusable view of an IPv4 packet. {@link Ipv4Packet.wrap} points it at new bytes without allocating;
 * {@link Ipv4Packet.check} must pass before the other accessors are trusted.
 */
export class Ipv4Packet extends ByteView {
  /**
   * Validates version, header length, total length and header checksum (RFC 791 §3.1, RFC 1122 §3.2.1.1:
   * a host must silently discard a datagram with a bad checksum). Returns `null` when valid.
   */
  check(): Ipv4Error | null {
    const b = this.bytes;
    if (b.length < IPV4_HEADER_LENGTH) return "truncated";
    if (b[0] >> 4 !== 4) return "bad-version";
    const headerLength = (b[0] & 0x0f) * 4;
    if (headerLength < IPV4_HEADER_LENGTH) return "bad-header-length";
    if (headerLength > b.length) return "truncated";
    const total = (b[2] << 8) | b[3];
    if (total < headerLength) return "bad-total-length";
    if (total > b.length) return "truncated";
    if (internetChecksum(b, 0, headerLength) !== 0) return "bad-checksum";
    return null;
  }

  /** IP version (4 for a valid packet). */
  get version(): number {
    return this.bytes[0] >> 4;
  }
  /** Header length in bytes, options included. */
  get headerLength(): number {
    return (this.bytes[0] & 0x0f) * 4;
  }
  /** The DSCP and ECN byte (former type of service). */
  get dscpEcn(): number {
    return this.bytes[1];
  }
  /** Total length of header and payload. */
  get totalLength(): number {
    return (this.bytes[2] << 8) | this.bytes[3];
  }
  /** Identification field. */
  get identification(): number {
    return (this.bytes[4] << 8) | this.bytes[5];
  }
  /** The don't-fragment flag. */
  get dontFragment(): boolean {
    return (this.bytes[6] & 0x40) !== 0;
  }
  /** The more-fragments flag. */
  get moreFragments(): boolean {
    return (this.bytes[6] & 0x20) !== 0;
  }
  /** Fragment offset in bytes. */
  get fragmentOffset(): number {
    return (((this.bytes[6] & 0x1f) << 8) | this.bytes[7]) * 8;
  }
  /** Whether this is a fragment (of a larger datagram) rather than a whole datagram. */
  get isFragment(): boolean {
    return this.moreFragments || this.fragmentOffset !== 0;
  }
  /** Time to live. */
  get ttl(): number {
    return this.bytes[8];
  }
  /** Protocol of the payload, see {@link IpProtocol}. */
  get protocol(): number {
    return this.bytes[9];
  }
  /** Header checksum as received. */
  get checksum(): number {
    return (this.bytes[10] << 8) | this.bytes[11];
  }
  /** Source address. */
  get src(): Ipv4Address {
    return readIpv4(this.bytes, 12);
  }
  /** Destination address. */
  get dst(): Ipv4Address {
    return readIpv4(this.bytes, 16);
  }
  /** The payload (a new subarray view); hot paths use `headerLength`/`totalLength` offsets instead. */
  payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength, this.totalLength);
  }
}

/** Fields of an outgoing IPv4 header without options. */
export interface Ipv4HeaderFields {
  /** Source address. */
  src: Ipv4Address;
  /** Destination address. */
  dst: Ipv4Address;
  /** Payload protocol. */
  protocol: number;
  /** Bytes after the header. */
  payloadLength: number;
  /** Time to live; default 64 (RFC 1700's recommended default, as Linux uses). */
  ttl?: number;
  /** Identification; default 0 (fine with DF set, RFC 6864 §4.1). */
  identification?: number;
  /** Don't fragment; default true (path MTU discovery, RFC 1191). */
  dontFragment?: boolean;
  /** DSCP/ECN byte; default 0. */
  dscpEcn?: number;
}

/**
 * Writes a 20-byte header with its checksum at `buf[offset..offset+20)`. Positional arguments keep the
 * per-packet path free of object allocation.
 */
export function writeIpv4Header(
  buf: Uint8Array,
  offset: number,
  src: Ipv4Address,
  dst: Ipv4Address,
  protocol: number,
  payloadLength: number,
  ttl = 64,
  identification = 0,
  dontFragment = true,
  dscpEcn = 0,
): void {
  const total = IPV4_HEADER_LENGTH + payloadLength;
  buf[offset] = 0x45;
  buf[offset + 1] = dscpEcn;
  buf[offset + 2] = total >> 8;
  buf[offset + 3] = total & 0xff;
  buf[offset + 4] = (identification >> 8) & 0xff;
  buf[offset + 5] = identification & 0xff;
  buf[offset + 6] = dontFragment ? 0x40 : 0;
  buf[offset + 7] = 0;
  buf[offset + 8] = ttl;
  buf[offset + 9] = protocol;
  buf[offset + 10] = 0;
  buf[offset + 11] = 0;
  writeIpv4(buf, offset + 12, src);
  writeIpv4(buf, offset + 16, dst);
  const checksum = internetChecksum(buf, offset, offset + IPV4_HEADER_LENGTH);
  buf[offset + 10] = checksum >> 8;
  buf[offset + 11] = checksum & 0xff;
}

/** Writes a header from named fields (convenient outside the hot path, e.g. in tests). */
export function emitIpv4Header(buf: Uint8Array, offset: number, fields: Ipv4HeaderFields): void {
  writeIpv4Header(
    buf,
    offset,
    fields.src,
    fields.dst,
    fields.protocol,
    fields.payloadLength,
    fields.ttl,
    fields.identification,
    fields.dontFragment,
    fields.dscpEcn,
  );
}

/** The unfolded sum of an IPv4 header region, for incremental checksum work. */
export function ipv4HeaderSum(buf: Uint8Array, offset: number, headerLength: number): number {
  return sumWords(buf, offset, offset + headerLength);
}

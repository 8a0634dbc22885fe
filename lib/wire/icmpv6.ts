/**
 * ICMPv6 messages (RFC 4443): a checked view (the checksum covers the IPv6 pseudo-header) and writers for
 * echo and the four error messages. NDP and MLD messages are in `ndp.ts` and `mld.ts`.
 *
 * @module
 */

import { foldSum, internetChecksum, ipv6PseudoHeaderSum, sumWords } from "./checksum.ts";
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET, NextHeader } from "./ipv6.ts";
import { ByteView } from "./view.ts";

/** Length of the fixed ICMPv6 header (type, code, checksum, 4 bytes of message body). */
export const ICMPV6_HEADER_LENGTH = 8;

/** ICMPv6 message types netstack handles (RFC 4443, RFC 4861, RFC 3810). */
export const Icmpv6Type = {
  DESTINATION_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  MLD_QUERY: 130,
  MLDV1_REPORT: 131,
  MLDV1_DONE: 132,
  ROUTER_SOLICITATION: 133,
  ROUTER_ADVERTISEMENT: 134,
  NEIGHBOR_SOLICITATION: 135,
  NEIGHBOR_ADVERTISEMENT: 136,
  REDIRECT: 137,
  MLDV2_REPORT: 143,
} as const;

/** Codes of Destination Unreachable (RFC 4443 §3.1). */
export const Unreachable6Code = {
  NO_ROUTE: 0,
  ADMINISTRATIVELY_PROHIBITED: 1,
  BEYOND_SCOPE: 2,
  ADDRESS: 3,
  PORT: 4,
} as const;

/** Codes of Time Exceeded (RFC 4443 §3.3). */
export const TimeExceededCode = {
  HOP_LIMIT: 0,
  REASSEMBLY: 1,
} as const;

/**
 * RFC 4443 §2.4(c): an error message holds as much of the invoking packet as fits without the error
 * exceeding the minimum IPv6 MTU: 1280 − 40 (IPv6) − 8 (ICMPv6).
 */
export const MAX_ICMPV6_ERROR_QUOTE = 1280 - 40 - ICMPV6_HEADER_LENGTH;

/** Why a received ICMPv6 message is malformed. */
export type Icmpv6Error = "truncated" | "bad-checksum";

/** A reusable view over an ICMPv6 message (the upper-layer payload of an IPv6 packet). */
export class Icmpv6Message extends ByteView {
  /**
   * Validates length and checksum (RFC 4443 §2.3: over the pseudo-header and the whole message).
   * `packet` holds the IPv6 header whose addresses enter the pseudo-header.
   */
  check(packet: Uint8Array, verifyChecksum = true): Icmpv6Error | null {
    if (this.bytes.length < 4) return "truncated";
    if (!verifyChecksum) return null;
    const initial = ipv6PseudoHeaderSum(
      packet,
      IPV6_SRC_OFFSET,
      IPV6_DST_OFFSET,
      NextHeader.ICMPV6,
      this.bytes.length,
    );
    if (foldSum(sumWords(this.bytes, 0, this.bytes.length, initial)) !== 0xffff) return "bad-checksum";
    return null;
  }

  /** Message type, see {@link Icmpv6Type}. */
  get type(): number {
    return this.bytes[0];
  }
  /** Message code. */
  get code(): number {
    return this.bytes[1];
  }
  /** Whether this is an error message (types 0–127, RFC 4443 §2.1). */
  get isError(): boolean {
    return this.bytes[0] < 128;
  }
  /** Echo identifier (echo only). */
  get identifier(): number {
    return (this.bytes[4] << 8) | this.bytes[5];
  }
  /** Echo sequence number (echo only). */
  get sequence(): number {
    return (this.bytes[6] << 8) | this.bytes[7];
  }
  /** The 32-bit field after the checksum: MTU of Packet Too Big, pointer of Parameter Problem. */
  get parameter(): number {
    return ((this.bytes[4] << 24) | (this.bytes[5] << 16) | (this.bytes[6] << 8) | this.bytes[7]) >>> 0;
  }
}

/**
 * Fills in the checksum of the ICMPv6 message at `buf[offset..end)`, whose IPv6 header (already written)
 * starts at `ipOffset`.
 */
export function finishIcmpv6Checksum(buf: Uint8Array, ipOffset: number, offset: number, end: number): void {
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  const initial = ipv6PseudoHeaderSum(
    buf,
    ipOffset + IPV6_SRC_OFFSET,
    ipOffset + IPV6_DST_OFFSET,
    NextHeader.ICMPV6,
    end - offset,
  );
  const checksum = internetChecksum(buf, offset, end, initial);
  buf[offset + 2] = checksum >> 8;
  buf[offset + 3] = checksum & 0xff;
}

/**
 * Writes an echo message (request or reply) carrying `data` at `buf[offset..]`, without its checksum
 * (see {@link finishIcmpv6Checksum}), and returns its length. RFC 4443 §4.2: the reply carries the
 * request's identifier, sequence number and data.
 */
export function writeIcmpv6Echo(
  buf: Uint8Array,
  offset: number,
  type: number,
  identifier: number,
  sequence: number,
  data: Uint8Array,
): number {
  buf[offset] = type;
  buf[offset + 1] = 0;
  buf[offset + 4] = identifier >> 8;
  buf[offset + 5] = identifier & 0xff;
  buf[offset + 6] = sequence >> 8;
  buf[offset + 7] = sequence & 0xff;
  buf.set(data, offset + ICMPV6_HEADER_LENGTH);
  return ICMPV6_HEADER_LENGTH + data.length;
}

/**
 * Writes an error message (Destination Unreachable, Packet Too Big, Time Exceeded or Parameter Problem)
 * quoting `original` (the invoking packet from its IPv6 header, already cut to fit), without its checksum,
 * and returns its length. `parameter` is the MTU (Packet Too Big), the pointer (Parameter Problem) or 0.
 */
export function writeIcmpv6Error(
  buf: Uint8Array,
  offset: number,
  type: number,
  code: number,
  parameter: number,
  original: Uint8Array,
): number {
  buf[offset] = type;
  buf[offset + 1] = code;
  buf[offset + 4] = parameter >>> 24;
  buf[offset + 5] = (parameter >>> 16) & 0xff;
  buf[offset + 6] = (parameter >>> 8) & 0xff;
  buf[offset + 7] = parameter & 0xff;
  buf.set(original, offset + ICMPV6_HEADER_LENGTH);
  return ICMPV6_HEADER_LENGTH + original.length;
}

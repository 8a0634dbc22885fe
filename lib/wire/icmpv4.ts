/**
 * ICMPv4 messages (RFC 792): a checked view and writers for echo replies and destination unreachable.
 *
 * @module
 */

import { internetChecksum } from "./checksum.ts";
import { ByteView } from "./view.ts";

/** Length of the fixed ICMP header (type, code, checksum, rest-of-header). */
export const ICMPV4_HEADER_LENGTH = 8;

/** ICMPv4 message types netstack handles. */
export const Icmpv4Type = {
  ECHO_REPLY: 0,
  DESTINATION_UNREACHABLE: 3,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
} as const;

/** Codes of destination unreachable (RFC 792, RFC 1122 §3.2.2.1). */
export const UnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAGMENTATION_NEEDED: 4,
} as const;

/** Why a received ICMP message is malformed. */
export type Icmpv4Error = "truncated" | "bad-checksum";

/** A reusable view over an ICMPv4 message (the IP payload). */
export class Icmpv4Message extends ByteView {
  /** Validates length and checksum (the checksum covers the whole message, RFC 792). */
  check(): Icmpv4Error | null {
    if (this.bytes.length < ICMPV4_HEADER_LENGTH) return "truncated";
    if (internetChecksum(this.bytes) !== 0) return "bad-checksum";
    return null;
  }

  /** Message type, see {@link Icmpv4Type}. */
  get type(): number {
    return this.bytes[0];
  }
  /** Message code. */
  get code(): number {
    return this.bytes[1];
  }
  /** Checksum as received. */
  get checksum(): number {
    return (this.bytes[2] << 8) | this.bytes[3];
  }
  /** Echo identifier (echo request/reply only). */
  get identifier(): number {
    return (this.bytes[4] << 8) | this.bytes[5];
  }
  /** Echo sequence number (echo request/reply only). */
  get sequence(): number {
    return (this.bytes[6] << 8) | this.bytes[7];
  }
  /** Data after the 8-byte header (a new subarray). */
  data(): Uint8Array {
    return this.bytes.subarray(ICMPV4_HEADER_LENGTH);
  }
}

/** Fills in the checksum of the ICMP message at `buf[offset..end)`. */
export function finishIcmpv4Checksum(buf: Uint8Array, offset: number, end: number): void {
  buf[offset + 2] = 0;
  buf[offset + 3] = 0;
  const checksum = internetChecksum(buf, offset, end);
  buf[offset + 2] = checksum >> 8;
  buf[offset + 3] = checksum & 0xff;
}

/**
 * Writes an echo message (request or reply) with `data` at `buf[offset..]` and returns its length.
 * RFC 792: the reply carries the request's identifier, sequence number and data unchanged.
 */
export function writeIcmpv4Echo(
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
  buf.set(data, offset + ICMPV4_HEADER_LENGTH);
  const end = offset + ICMPV4_HEADER_LENGTH + data.length;
  finishIcmpv4Checksum(buf, offset, end);
  return end - offset;
}

/**
 * Writes destination unreachable with `code`, quoting `original` (the offending IP header and the start of
 * its payload), and returns its length. RFC 792 asks for the IP header plus 64 bits of data; RFC 1812
 * §4.3.2.3 allows up to 576 bytes in all, so callers may quote more.
 */
export function writeIcmpv4Unreachable(
  buf: Uint8Array,
  offset: number,
  code: number,
  original: Uint8Array,
  nextHopMtu = 0,
): number {
  buf[offset] = Icmpv4Type.DESTINATION_UNREACHABLE;
  buf[offset + 1] = code;
  buf[offset + 4] = 0;
  buf[offset + 5] = 0;
  buf[offset + 6] = nextHopMtu >> 8; // RFC 1191: MTU of the next hop, for fragmentation needed
  buf[offset + 7] = nextHopMtu & 0xff;
  buf.set(original, offset + ICMPV4_HEADER_LENGTH);
  const end = offset + ICMPV4_HEADER_LENGTH + original.length;
  finishIcmpv4Checksum(buf, offset, end);
  return end - offset;
}

/**
 * Multicast Listener Discovery version 2 (RFC 3810): the Version 2 Multicast Listener Report a node sends
 * for the groups it listens to, and the fields of a received query.
 *
 * @module
 */

import { Icmpv6Type } from "./icmpv6.ts";
import type { Ipv6Address } from "./ipv6_address.ts";

/** Multicast address record types (RFC 3810 §5.2.12). */
export const MldRecordType = {
  MODE_IS_INCLUDE: 1,
  MODE_IS_EXCLUDE: 2,
  CHANGE_TO_INCLUDE: 3,
  CHANGE_TO_EXCLUDE: 4,
} as const;

/** Bytes of one record without sources. */
const RECORD_LENGTH = 20;

/**
 * Writes a Version 2 Multicast Listener Report with one record of `recordType` and no sources per group
 * at `buf[offset..]` (without checksum) and returns its length. Joining a group is CHANGE_TO_EXCLUDE with no
 * sources ("all sources"), answering a query MODE_IS_EXCLUDE (RFC 3810 §6.1, §7.1).
 */
export function writeMldv2Report(
  buf: Uint8Array,
  offset: number,
  groups: readonly Ipv6Address[],
  recordType: number,
): number {
  buf[offset] = Icmpv6Type.MLDV2_REPORT;
  buf[offset + 1] = 0;
  buf[offset + 4] = 0;
  buf[offset + 5] = 0;
  buf[offset + 6] = groups.length >> 8;
  buf[offset + 7] = groups.length & 0xff;
  let i = offset + 8;
  for (const group of groups) {
    buf[i] = recordType;
    buf[i + 1] = 0;
    buf[i + 2] = 0;
    buf[i + 3] = 0;
    buf.set(group.subarray(0, 16), i + 4);
    i += RECORD_LENGTH;
  }
  return i - offset;
}

/** The multicast address a query asks about (`::` for a general query), at offset 8 of the message. */
export const MLD_QUERY_ADDRESS_OFFSET = 8;

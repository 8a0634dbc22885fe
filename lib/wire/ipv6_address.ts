/**
 * IPv6 addresses (RFC 4291) as 16 bytes: parsing, the RFC 5952 text form, prefixes, the well-known
 * multicast groups, solicited-node groups and their Ethernet MACs, and EUI-64 interface identifiers.
 *
 * An address is a `Uint8Array` of 16 bytes. Hot paths compare addresses in place inside packets with
 * {@link ipv6EqualsAt}; the helpers that return a new array are for the edges (configuration, tests).
 *
 * @module
 */

import { parseIpv4 } from "./ipv4_address.ts";
import type { MacAddress } from "./ethernet.ts";

/** An IPv6 address: 16 bytes in network order. */
export type Ipv6Address = Uint8Array;

/** An IPv6 address with a prefix length, as written `fd00::2/64`. */
export interface Ipv6Cidr {
  /** The address itself (not masked). */
  address: Ipv6Address;
  /** Prefix length, 0..128. */
  prefixLength: number;
}

/** Length of an IPv6 address in bytes. */
export const IPV6_ADDRESS_LENGTH = 16;

/** `::`, the unspecified address (RFC 4291 §2.5.2). */
export const UNSPECIFIED_IPV6: Ipv6Address = new Uint8Array(16);
/** `ff02::1`, all nodes on the link (RFC 4291 §2.7.1). */
export const ALL_NODES: Ipv6Address = fromGroups([0xff02, 0, 0, 0, 0, 0, 0, 1]);
/** `ff02::2`, all routers on the link. */
export const ALL_ROUTERS: Ipv6Address = fromGroups([0xff02, 0, 0, 0, 0, 0, 0, 2]);
/** `ff02::16`, all MLDv2-capable routers (RFC 3810 §5.2.14), where MLDv2 reports go. */
export const ALL_MLDV2_ROUTERS: Ipv6Address = fromGroups([0xff02, 0, 0, 0, 0, 0, 0, 0x16]);

function fromGroups(groups: number[]): Ipv6Address {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[i * 2] = groups[i] >> 8;
    bytes[i * 2 + 1] = groups[i] & 0xff;
  }
  return bytes;
}

/** Parses an IPv6 address (full, `::`-compressed, or with an embedded IPv4 tail); `null` when malformed. */
export function parseIpv6(text: string): Ipv6Address | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === null) return null;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 2 ? head.length + tail.length > 7 : head.length !== 8) return null;
  return fromGroups([...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail]);
}

/** Parses `addr/len`; returns `null` when malformed. */
export function parseIpv6Cidr(text: string): Ipv6Cidr | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const address = parseIpv6(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === null || !/^\d{1,3}$/.test(prefixText)) return null;
  const prefixLength = Number(prefixText);
  if (prefixLength > 128) return null;
  return { address, prefixLength };
}

/** Formats 16 bytes at `offset` in RFC 5952 form: lower case, the longest run (≥ 2) of zero groups as `::`. */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[offset + i * 2] << 8) | bytes[offset + i * 2 + 1]);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** Formats an address with its prefix length. */
export function formatIpv6Cidr(cidr: Ipv6Cidr): string {
  return `${formatIpv6(cidr.address)}/${cidr.prefixLength}`;
}

/** A copy of the 16 bytes at `bytes[offset..]`. */
export function readIpv6(bytes: Uint8Array, offset: number): Ipv6Address {
  return bytes.slice(offset, offset + 16);
}

/** Whether the 16 bytes at `bytes[offset..]` equal `address` (no allocation). */
export function ipv6EqualsAt(bytes: Uint8Array, offset: number, address: Ipv6Address): boolean {
  for (let i = 0; i < 16; i++) if (bytes[offset + i] !== address[i]) return false;
  return true;
}

/** Whether two addresses are equal. */
export function ipv6Equals(a: Ipv6Address, b: Ipv6Address): boolean {
  return ipv6EqualsAt(a, 0, b);
}

/** Whether the address at `bytes[offset..]` lies in `prefix/prefixLength`. */
export function inPrefixAt(
  bytes: Uint8Array,
  offset: number,
  prefix: Ipv6Address,
  prefixLength: number,
): boolean {
  const whole = prefixLength >> 3;
  for (let i = 0; i < whole; i++) if (bytes[offset + i] !== prefix[i]) return false;
  const bits = prefixLength & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (bytes[offset + whole] & mask) === (prefix[whole] & mask);
}

/** Whether `address` lies in the prefix of `cidr`. */
export function inIpv6Prefix(address: Ipv6Address, cidr: Ipv6Cidr): boolean {
  return inPrefixAt(address, 0, cidr.address, cidr.prefixLength);
}

/** Whether the address at `bytes[offset..]` is multicast (ff00::/8, RFC 4291 §2.7). */
export function isMulticastAt(bytes: Uint8Array, offset: number): boolean {
  return bytes[offset] === 0xff;
}

/** Whether the address at `bytes[offset..]` is `::`. */
export function isUnspecifiedAt(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 16; i++) if (bytes[offset + i] !== 0) return false;
  return true;
}

/** Whether the address at `bytes[offset..]` is link-local unicast (fe80::/10). */
export function isLinkLocalAt(bytes: Uint8Array, offset: number): boolean {
  return bytes[offset] === 0xfe && (bytes[offset + 1] & 0xc0) === 0x80;
}

/** Whether the address at `bytes[offset..]` is `::1`. */
export function isLoopbackAt(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 15; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 15] === 1;
}

/** Whether the address is an IPv4-mapped address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2). */
export function isIpv4MappedAt(bytes: Uint8Array, offset: number): boolean {
  for (let i = 0; i < 10; i++) if (bytes[offset + i] !== 0) return false;
  return bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff;
}

/** The solicited-node multicast group of `address`: ff02::1:ffXX:XXXX with its low 24 bits (RFC 4291 §2.7.1). */
export function solicitedNodeGroup(address: Ipv6Address): Ipv6Address {
  const group = fromGroups([0xff02, 0, 0, 0, 0, 1, 0xff00, 0]);
  group[13] = address[13];
  group[14] = address[14];
  group[15] = address[15];
  return group;
}

/** The Ethernet MAC of an IPv6 multicast group: 33:33 and the group's low 32 bits (RFC 2464 §7). */
export function ipv6MulticastMacAt(bytes: Uint8Array, offset: number): MacAddress {
  const low = ((bytes[offset + 12] << 24) | (bytes[offset + 13] << 16) | (bytes[offset + 14] << 8) |
    bytes[offset + 15]) >>> 0;
  return 0x3333 * 0x1_0000_0000 + low;
}

/**
 * The modified EUI-64 interface identifier of a MAC (RFC 4291 Appendix A, RFC 2464 §4): ff:fe inserted in
 * the middle and the universal/local bit inverted.
 */
export function eui64InterfaceId(mac: MacAddress): Uint8Array {
  const high = Math.floor(mac / 0x1_0000_0000);
  const low = mac % 0x1_0000_0000;
  const id = new Uint8Array(8);
  id[0] = (high >>> 8) ^ 0x02;
  id[1] = high & 0xff;
  id[2] = low >>> 24;
  id[3] = 0xff;
  id[4] = 0xfe;
  id[5] = (low >>> 16) & 0xff;
  id[6] = (low >>> 8) & 0xff;
  id[7] = low & 0xff;
  return id;
}

/** The address made of the first 64 bits of `prefix` and the interface identifier `id` (RFC 4862 §5.5.3). */
export function withInterfaceId(prefix: Ipv6Address, id: Uint8Array): Ipv6Address {
  const address = new Uint8Array(16);
  address.set(prefix.subarray(0, 8), 0);
  address.set(id.subarray(0, 8), 8);
  return address;
}

/** The link-local address fe80::/64 with the modified EUI-64 identifier of `mac` (RFC 4862 §5.3). */
export function linkLocalFromMac(mac: MacAddress): Ipv6Address {
  const address = withInterfaceId(new Uint8Array(16), eui64InterfaceId(mac));
  address[0] = 0xfe;
  address[1] = 0x80;
  return address;
}

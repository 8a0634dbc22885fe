/**
 * Neighbor Discovery messages and options (RFC 4861 §4): Router Solicitation and Advertisement, Neighbor
 * Solicitation and Advertisement (Redirect is recognised and ignored by the stack), and the options
 * source/target link-layer address (RFC 4861 §4.6.1, Ethernet per RFC 2464 §8), prefix information
 * (§4.6.2) and MTU (§4.6.4). Messages are ICMPv6 messages: the checksum is `icmpv6.ts`'s.
 *
 * @module
 */

import type { MacAddress } from "./ethernet.ts";
import { readMac, writeMac } from "./ethernet.ts";
import { Icmpv6Type } from "./icmpv6.ts";
import type { Ipv6Address } from "./ipv6_address.ts";

/** NDP option types (RFC 4861 §4.6). */
export const NdpOptionType = {
  SOURCE_LINK_LAYER_ADDRESS: 1,
  TARGET_LINK_LAYER_ADDRESS: 2,
  PREFIX_INFORMATION: 3,
  REDIRECTED_HEADER: 4,
  MTU: 5,
} as const;

/** Where a message's options start (the fixed part's length), by type; 0 for types that are not NDP. */
export function ndpOptionsOffset(type: number): number {
  switch (type) {
    case Icmpv6Type.ROUTER_SOLICITATION:
      return 8;
    case Icmpv6Type.ROUTER_ADVERTISEMENT:
      return 16;
    case Icmpv6Type.NEIGHBOR_SOLICITATION:
    case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
      return 24;
    case Icmpv6Type.REDIRECT:
      return 40;
    default:
      return 0;
  }
}

/** Flags of a Neighbor Advertisement (RFC 4861 §4.4). */
export const NaFlag = {
  ROUTER: 0x80,
  SOLICITED: 0x40,
  OVERRIDE: 0x20,
} as const;

/** One Prefix Information option (RFC 4861 §4.6.2). */
export interface PrefixInformation {
  /** The prefix (16 bytes; bits past `prefixLength` are to be ignored). */
  prefix: Ipv6Address;
  /** Prefix length in bits. */
  prefixLength: number;
  /** L flag: the prefix is on-link. */
  onLink: boolean;
  /** A flag: the prefix may be used for SLAAC (RFC 4862). */
  autonomous: boolean;
  /** Valid lifetime in seconds (0xffffffff: infinity). */
  validLifetime: number;
  /** Preferred lifetime in seconds. */
  preferredLifetime: number;
}

/** Why an NDP option list is malformed (RFC 4861 §6.1, §7.1.1: the message is then discarded). */
export type NdpOptionsError = "zero-length-option" | "truncated-option" | "bad-option";

/** At most this many Prefix Information options are taken from one RA; more are counted and ignored. */
export const MAX_PREFIXES_PER_RA = 8;

/**
 * The options of one NDP message, parsed into a reused object. Options the stack does not use are
 * skipped (RFC 4861 §4.6: receivers must ignore options they do not recognise).
 */
export class NdpOptions {
  /** Source link-layer address, or -1. */
  sourceMac: MacAddress = -1;
  /** Target link-layer address, or -1. */
  targetMac: MacAddress = -1;
  /** MTU option value, or -1. */
  mtu = -1;
  /** Prefix Information options (the array is reused; its objects are fresh per parse, RAs are rare). */
  readonly prefixes: PrefixInformation[] = [];
  /** Prefix Information options beyond {@link MAX_PREFIXES_PER_RA}. */
  prefixesIgnored = 0;

  /**
   * Parses the options in `bytes[start..end)`. Returns `null` when well-formed. Every option must have a
   * non-zero length and fit the message (RFC 4861 §4.6); a link-layer option must be 8 bytes for Ethernet.
   */
  parse(bytes: Uint8Array, start: number, end: number): NdpOptionsError | null {
    this.sourceMac = -1;
    this.targetMac = -1;
    this.mtu = -1;
    this.prefixes.length = 0;
    this.prefixesIgnored = 0;
    let i = start;
    while (i < end) {
      if (i + 2 > end) return "truncated-option";
      const type = bytes[i];
      const length = bytes[i + 1] * 8;
      if (length === 0) return "zero-length-option";
      if (i + length > end) return "truncated-option";
      switch (type) {
        case NdpOptionType.SOURCE_LINK_LAYER_ADDRESS:
        case NdpOptionType.TARGET_LINK_LAYER_ADDRESS: {
          if (length !== 8) return "bad-option";
          const mac = readMac(bytes, i + 2);
          if (type === NdpOptionType.SOURCE_LINK_LAYER_ADDRESS) this.sourceMac = mac;
          else this.targetMac = mac;
          break;
        }
        case NdpOptionType.PREFIX_INFORMATION: {
          if (length !== 32) return "bad-option";
          if (this.prefixes.length >= MAX_PREFIXES_PER_RA) {
            this.prefixesIgnored++;
            break;
          }
          this.prefixes.push({
            prefixLength: bytes[i + 2],
            onLink: (bytes[i + 3] & 0x80) !== 0,
            autonomous: (bytes[i + 3] & 0x40) !== 0,
            validLifetime: readU32(bytes, i + 4),
            preferredLifetime: readU32(bytes, i + 8),
            prefix: bytes.slice(i + 16, i + 32),
          });
          break;
        }
        case NdpOptionType.MTU:
          if (length !== 8) return "bad-option";
          this.mtu = readU32(bytes, i + 4);
          break;
      }
      i += length;
    }
    return null;
  }
}

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

function writeU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value >>> 24;
  bytes[offset + 1] = (value >>> 16) & 0xff;
  bytes[offset + 2] = (value >>> 8) & 0xff;
  bytes[offset + 3] = value & 0xff;
}

/** Fields of a received Router Advertisement (RFC 4861 §4.2), read from the ICMPv6 message bytes. */
export const RouterAdvertisement = {
  /** Cur Hop Limit (0: unspecified). */
  curHopLimit: (m: Uint8Array): number => m[4],
  /** M flag: addresses from DHCPv6. */
  managed: (m: Uint8Array): boolean => (m[5] & 0x80) !== 0,
  /** O flag: other configuration from DHCPv6. */
  other: (m: Uint8Array): boolean => (m[5] & 0x40) !== 0,
  /** Router Lifetime in seconds (0: not a default router). */
  routerLifetime: (m: Uint8Array): number => (m[6] << 8) | m[7],
  /** Reachable Time in ms (0: unspecified). */
  reachableTime: (m: Uint8Array): number => readU32(m, 8),
  /** Retrans Timer in ms (0: unspecified). */
  retransTimer: (m: Uint8Array): number => readU32(m, 12),
};

/** Writes a link-layer address option at `buf[offset..offset+8)` and returns 8. */
export function writeLinkLayerOption(buf: Uint8Array, offset: number, type: number, mac: MacAddress): number {
  buf[offset] = type;
  buf[offset + 1] = 1;
  writeMac(buf, offset + 2, mac);
  return 8;
}

/**
 * Writes a Neighbor Solicitation for `target` at `buf[offset..]` (without checksum) and returns its length.
 * `sourceMac` -1 omits the source link-layer option, as DAD requires (RFC 4862 §5.4.2).
 */
export function writeNeighborSolicitation(
  buf: Uint8Array,
  offset: number,
  target: Ipv6Address,
  sourceMac: MacAddress,
): number {
  buf[offset] = Icmpv6Type.NEIGHBOR_SOLICITATION;
  buf[offset + 1] = 0;
  buf.fill(0, offset + 4, offset + 8);
  buf.set(target.subarray(0, 16), offset + 8);
  if (sourceMac < 0) return 24;
  return 24 + writeLinkLayerOption(buf, offset + 24, NdpOptionType.SOURCE_LINK_LAYER_ADDRESS, sourceMac);
}

/**
 * Writes a Neighbor Advertisement for `target` with `flags` ({@link NaFlag}) at `buf[offset..]` (without
 * checksum) and returns its length; `targetMac` -1 omits the target link-layer option.
 */
export function writeNeighborAdvertisement(
  buf: Uint8Array,
  offset: number,
  target: Ipv6Address,
  flags: number,
  targetMac: MacAddress,
): number {
  buf[offset] = Icmpv6Type.NEIGHBOR_ADVERTISEMENT;
  buf[offset + 1] = 0;
  buf[offset + 4] = flags;
  buf.fill(0, offset + 5, offset + 8);
  buf.set(target.subarray(0, 16), offset + 8);
  if (targetMac < 0) return 24;
  return 24 + writeLinkLayerOption(buf, offset + 24, NdpOptionType.TARGET_LINK_LAYER_ADDRESS, targetMac);
}

/** Writes a Router Solicitation at `buf[offset..]` (without checksum) and returns its length. */
export function writeRouterSolicitation(buf: Uint8Array, offset: number, sourceMac: MacAddress): number {
  buf[offset] = Icmpv6Type.ROUTER_SOLICITATION;
  buf[offset + 1] = 0;
  buf.fill(0, offset + 4, offset + 8);
  if (sourceMac < 0) return 8;
  return 8 + writeLinkLayerOption(buf, offset + 8, NdpOptionType.SOURCE_LINK_LAYER_ADDRESS, sourceMac);
}

/** Fields of a Router Advertisement to write (tests and simulated routers). */
export interface RouterAdvertisementFields {
  /** Cur Hop Limit; default 64. */
  curHopLimit?: number;
  /** Router Lifetime in seconds. */
  routerLifetime: number;
  /** Reachable Time in ms; default 0. */
  reachableTime?: number;
  /** Retrans Timer in ms; default 0. */
  retransTimer?: number;
  /** Source link-layer address; default none. */
  sourceMac?: MacAddress;
  /** MTU option; default none. */
  mtu?: number;
  /** Prefix Information options. */
  prefixes?: PrefixInformation[];
}

/** Writes a Router Advertisement at `buf[offset..]` (without checksum) and returns its length. */
export function writeRouterAdvertisement(
  buf: Uint8Array,
  offset: number,
  fields: RouterAdvertisementFields,
): number {
  buf[offset] = Icmpv6Type.ROUTER_ADVERTISEMENT;
  buf[offset + 1] = 0;
  buf[offset + 4] = fields.curHopLimit ?? 64;
  buf[offset + 5] = 0;
  buf[offset + 6] = fields.routerLifetime >> 8;
  buf[offset + 7] = fields.routerLifetime & 0xff;
  writeU32(buf, offset + 8, fields.reachableTime ?? 0);
  writeU32(buf, offset + 12, fields.retransTimer ?? 0);
  let i = offset + 16;
  if (fields.sourceMac !== undefined) {
    i += writeLinkLayerOption(buf, i, NdpOptionType.SOURCE_LINK_LAYER_ADDRESS, fields.sourceMac);
  }
  if (fields.mtu !== undefined) {
    buf[i] = NdpOptionType.MTU;
    buf[i + 1] = 1;
    buf[i + 2] = 0;
    buf[i + 3] = 0;
    writeU32(buf, i + 4, fields.mtu);
    i += 8;
  }
  for (const p of fields.prefixes ?? []) {
    buf[i] = NdpOptionType.PREFIX_INFORMATION;
    buf[i + 1] = 4;
    buf[i + 2] = p.prefixLength;
    buf[i + 3] = (p.onLink ? 0x80 : 0) | (p.autonomous ? 0x40 : 0);
    writeU32(buf, i + 4, p.validLifetime);
    writeU32(buf, i + 8, p.preferredLifetime);
    writeU32(buf, i + 12, 0);
    buf.set(p.prefix.subarray(0, 16), i + 16);
    i += 32;
  }
  return i - offset;
}

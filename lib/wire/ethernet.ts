/**
 * Ethernet II frames (IEEE 802.3 with an EtherType, RFC 894 for IPv4 over Ethernet): a checked view, a
 * header writer, and MAC address helpers.
 *
 * MAC addresses are held as plain numbers (48 bits fit exactly in a double), like IPv4 addresses in
 * `ipv4_address.ts`: comparing and storing them allocates nothing on the per-frame path.
 *
 * 802.1Q/802.1ad tagged frames are rejected (`vlan-tagged`), not skipped: the stack is configured on no
 * VLAN, so a tagged frame belongs to a VLAN it is not a member of (Linux likewise drops tagged frames on an
 * interface with no VLAN device on top). The FCS is never present: TAP and libpcap deliver frames without it.
 *
 * @module
 */

import { ByteView } from "./view.ts";

/** A MAC address as a 48-bit unsigned integer, e.g. `0x020000000001` for 02:00:00:00:00:01. */
export type MacAddress = number;

/** Length of an Ethernet II header: destination, source, EtherType. */
export const ETHERNET_HEADER_LENGTH = 14;

/**
 * Smallest frame on the wire without the FCS (IEEE 802.3 §3.2.8: 64 bytes with it). Real NICs pad short
 * frames themselves; TAP and veth do not, so the stack pads what it sends.
 */
export const ETHERNET_MIN_FRAME_LENGTH = 60;

/** The broadcast address ff:ff:ff:ff:ff:ff. */
export const BROADCAST_MAC: MacAddress = 0xffff_ffff_ffff;

/** EtherType values (IEEE registry) the stack recognizes. */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
} as const;

/** Why a received frame is not usable; each reason is a drop counter. */
export type EthernetError = "truncated" | "vlan-tagged" | "length-field";

const TWO_32 = 0x1_0000_0000;

/** Reads a MAC address stored at `bytes[offset..offset+6)`. */
export function readMac(bytes: Uint8Array, offset: number): MacAddress {
  const high = (bytes[offset] << 8) | bytes[offset + 1];
  const low = ((bytes[offset + 2] << 24) | (bytes[offset + 3] << 16) | (bytes[offset + 4] << 8) |
    bytes[offset + 5]) >>> 0;
  return high * TWO_32 + low;
}

/** Writes `mac` at `bytes[offset..offset+6)`. */
export function writeMac(bytes: Uint8Array, offset: number, mac: MacAddress): void {
  const high = Math.floor(mac / TWO_32);
  const low = mac % TWO_32;
  bytes[offset] = high >>> 8;
  bytes[offset + 1] = high & 0xff;
  bytes[offset + 2] = low >>> 24;
  bytes[offset + 3] = (low >>> 16) & 0xff;
  bytes[offset + 4] = (low >>> 8) & 0xff;
  bytes[offset + 5] = low & 0xff;
}

/** Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators); returns `null` when malformed. */
export function parseMac(text: string): MacAddress | null {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^[0-9a-fA-F]{2}$/.test(part)) return null;
    value = value * 256 + parseInt(part, 16);
  }
  return value;
}

/** Formats a MAC address as lower-case `aa:bb:cc:dd:ee:ff`. */
export function formatMac(mac: MacAddress): string {
  const bytes = new Uint8Array(6);
  writeMac(bytes, 0, mac);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Whether the group bit (I/G, least significant bit of the first octet) is set: multicast or broadcast. */
export function isMulticastMac(mac: MacAddress): boolean {
  return (Math.floor(mac / 0x100_0000_0000) & 0x01) !== 0;
}

/** Whether the locally administered bit (U/L, second bit of the first octet) is set. */
export function isLocallyAdministeredMac(mac: MacAddress): boolean {
  return (Math.floor(mac / 0x100_0000_0000) & 0x02) !== 0;
}

/**
 * A random locally administered unicast address (IEEE 802: U/L bit set, I/G bit clear), so it cannot
 * collide with a vendor-assigned address. `random` fills its argument with random bytes (injectable).
 */
export function randomLocalMac(
  random: (bytes: Uint8Array) => void = (bytes) => crypto.getRandomValues(bytes),
): MacAddress {
  const bytes = new Uint8Array(6);
  random(bytes);
  bytes[0] = (bytes[0] & 0xfc) | 0x02;
  return readMac(bytes, 0);
}

/** The multicast MAC of an IPv4 multicast group (RFC 1112 §6.4: 01:00:5e plus the low 23 bits). */
export function ipv4MulticastMac(group: number): MacAddress {
  return 0x01005e * 0x100_0000 + (group & 0x7f_ffff);
}

/**
 * A reusable view of an Ethernet II frame. {@link EthernetFrame.wrap} points it at new bytes without
 * allocating; {@link EthernetFrame.check} must pass before the other accessors are trusted.
 */
export class EthernetFrame extends ByteView {
  /**
   * Validates the frame: at least a header, no VLAN tag (see the module comment), and an EtherType rather
   * than an 802.3 length field (values ≤ 1500 mean 802.2 LLC frames, e.g. STP, which the stack does not
   * speak). Returns `null` when valid.
   */
  check(): EthernetError | null {
    const b = this.bytes;
    if (b.length < ETHERNET_HEADER_LENGTH) return "truncated";
    const type = (b[12] << 8) | b[13];
    if (type === EtherType.VLAN || type === EtherType.QINQ) return "vlan-tagged";
    if (type <= 1500) return "length-field";
    return null;
  }

  /** Destination MAC. */
  get dst(): MacAddress {
    return readMac(this.bytes, 0);
  }
  /** Source MAC. */
  get src(): MacAddress {
    return readMac(this.bytes, 6);
  }
  /** EtherType of the payload. */
  get etherType(): number {
    return (this.bytes[12] << 8) | this.bytes[13];
  }
  /** The payload (a new subarray; may include padding up to the 60-byte minimum). */
  payload(): Uint8Array {
    return this.bytes.subarray(ETHERNET_HEADER_LENGTH);
  }
}

/** Writes an Ethernet II header at `buf[offset..offset+14)`. */
export function writeEthernetHeader(
  buf: Uint8Array,
  offset: number,
  dst: MacAddress,
  src: MacAddress,
  etherType: number,
): void {
  writeMac(buf, offset, dst);
  writeMac(buf, offset + 6, src);
  buf[offset + 12] = etherType >> 8;
  buf[offset + 13] = etherType & 0xff;
}

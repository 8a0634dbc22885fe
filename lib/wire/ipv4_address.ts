/**
 * IPv4 addresses as unsigned 32-bit numbers (host order), with parsing and formatting.
 *
 * A number avoids an object per packet on the hot path; the helpers here convert at the edges.
 *
 * @module
 */

/** An IPv4 address held as an unsigned 32-bit integer, e.g. `0x0a000002` for 10.0.0.2. */
export type Ipv4Address = number;

/** An IPv4 address with a prefix length, as written `10.0.0.2/24`. */
export interface Ipv4Cidr {
  /** The address itself (not masked). */
  address: Ipv4Address;
  /** Prefix length, 0..32. */
  prefixLength: number;
}

/** Parses dotted-quad notation; returns `null` when the text is not an IPv4 address. */
export function parseIpv4(text: string): Ipv4Address | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

/** Parses `a.b.c.d/len`; returns `null` when malformed. */
export function parseIpv4Cidr(text: string): Ipv4Cidr | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const address = parseIpv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === null || !/^\d{1,2}$/.test(prefixText)) return null;
  const prefixLength = Number(prefixText);
  if (prefixLength > 32) return null;
  return { address, prefixLength };
}

/** Formats an address in dotted-quad notation. */
export function formatIpv4(address: Ipv4Address): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

/** Formats an address with its prefix length. */
export function formatIpv4Cidr(cidr: Ipv4Cidr): string {
  return `${formatIpv4(cidr.address)}/${cidr.prefixLength}`;
}

/** The netmask for a prefix length, e.g. 24 → 0xffffff00. */
export function prefixToMask(prefixLength: number): Ipv4Address {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** Whether `address` lies in the subnet of `cidr`. */
export function inSubnet(address: Ipv4Address, cidr: Ipv4Cidr): boolean {
  const mask = prefixToMask(cidr.prefixLength);
  return ((address & mask) >>> 0) === ((cidr.address & mask) >>> 0);
}

/** The directed broadcast address of a subnet. */
export function broadcastOf(cidr: Ipv4Cidr): Ipv4Address {
  return (cidr.address | ~prefixToMask(cidr.prefixLength)) >>> 0;
}

/** Reads an address stored big-endian at `offset`. */
export function readIpv4(bytes: Uint8Array, offset: number): Ipv4Address {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) |
    bytes[offset + 3]) >>> 0;
}

/** Writes an address big-endian at `offset`. */
export function writeIpv4(bytes: Uint8Array, offset: number, address: Ipv4Address): void {
  bytes[offset] = address >>> 24;
  bytes[offset + 1] = (address >>> 16) & 0xff;
  bytes[offset + 2] = (address >>> 8) & 0xff;
  bytes[offset + 3] = address & 0xff;
}

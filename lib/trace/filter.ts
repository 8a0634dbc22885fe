/**
 * The in-kernel filter of netstack trace: parsing `--proto`, `--host`, `--port`, `--snaplen` and encoding
 * them as `struct trace_config` (bpf/trace_record.h), the BPF object's `.rodata`, set before load.
 *
 * Layout (little-endian host fields, network-order addresses; offsets from lib/trace/layout.ts, which
 * the tests check against the object's BTF): snaplen u32, proto u8, host_family u8, port_set u8,
 * link_raw u8 (frames start at the IP header), port u16, expr u8
 * (run the spliced expression), host_addr[16], host_mask[16].
 *
 * @module
 */

import { parseIpv4 } from "../wire/ipv4_address.ts";
import { formatIpv6, parseIpv6 } from "./ipv6_text.ts";
import { TRACE_CONFIG_LAYOUT } from "./layout.ts";

/** `--proto` names and their TRACE_PROTO_* codes. */
export const TRACE_PROTOCOLS = {
  any: 0,
  tcp: 1,
  udp: 2,
  icmp: 3,
  icmp6: 4,
  arp: 5,
  ip: 6,
  ip6: 7,
  sctp: 8,
} as const;

/** A `--proto` name. */
export type TraceProtocol = keyof typeof TRACE_PROTOCOLS;

/** Largest `--snaplen` (TRACE_MAX_SNAPLEN). */
export const TRACE_MAX_SNAPLEN = 4096;

/** Size of struct trace_config. */
export const TRACE_CONFIG_BYTES = TRACE_CONFIG_LAYOUT.bytes;

/** A host filter: an address prefix of one family. */
export interface HostPrefix {
  family: 4 | 6;
  /** 4 or 16 bytes, network order, masked to the prefix. */
  address: Uint8Array;
  prefixLength: number;
}

/** A tcpdump expression for the kernel: its text and the eBPF body of `trace_expr`. */
export interface TraceExpression {
  /** The expression as given (words joined with spaces). */
  text: string;
  /**
   * lib/filter/to_ebpf.ts's translation of the expression compiled for frames that start at an Ethernet
   * header (`raw` false) or at the IP header (`raw` true), spliced into the programs before load. Throws
   * what compiling throws (FilterSyntaxError, UnsupportedFilterError).
   */
  ebpf(raw: boolean): Uint8Array<ArrayBuffer>;
}

/** Everything the kernel side filters on; the expression and the shorthands must all match. */
export interface TraceFilter {
  snaplen: number;
  proto: TraceProtocol;
  host?: HostPrefix;
  port?: number;
  expression?: TraceExpression;
}

/** Parses a `--proto` value (case-insensitive; `ipv4`/`ipv6`/`icmpv6` accepted); `null` when unknown. */
export function parseProtocol(text: string): TraceProtocol | null {
  const name = text.toLowerCase();
  const alias: Record<string, TraceProtocol> = { ipv4: "ip", ipv6: "ip6", icmpv6: "icmp6" };
  if (name in alias) return alias[name];
  return Object.hasOwn(TRACE_PROTOCOLS, name) ? name as TraceProtocol : null;
}

/** The mask of a prefix over `bytes` bytes. */
function prefixMask(prefixLength: number, bytes: number): Uint8Array {
  const mask = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const bits = Math.max(0, Math.min(8, prefixLength - i * 8));
    mask[i] = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return mask;
}

/** Parses `ADDR` or `ADDR/PREFIX` (IPv4 or IPv6); `null` when malformed. The address comes back masked. */
export function parseHostPrefix(text: string): HostPrefix | null {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  let address: Uint8Array;
  let family: 4 | 6;
  const v4 = parseIpv4(addressText);
  if (v4 !== null) {
    address = new Uint8Array([v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff]);
    family = 4;
  } else {
    const v6 = parseIpv6(addressText);
    if (v6 === null) return null;
    address = v6;
    family = 6;
  }
  const maxPrefix = family === 4 ? 32 : 128;
  let prefixLength = maxPrefix;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) return null;
    prefixLength = Number(prefixText);
  }
  const mask = prefixMask(prefixLength, address.length);
  for (let i = 0; i < address.length; i++) address[i] &= mask[i];
  return { family, address, prefixLength };
}

/**
 * Encodes a filter as struct trace_config. `linkRaw`: the object is for raw-IP devices
 * (frames start at the IP header, see lib/trace/link_type.ts).
 */
export function encodeFilter(filter: TraceFilter, linkRaw = false): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(filter.snaplen) || filter.snaplen < 1 || filter.snaplen > TRACE_MAX_SNAPLEN) {
    throw new RangeError(`snaplen must be 1..${TRACE_MAX_SNAPLEN}, got ${filter.snaplen}`);
  }
  const at = TRACE_CONFIG_LAYOUT.fields;
  const bytes = new Uint8Array(TRACE_CONFIG_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(at.snaplen.offset, filter.snaplen, true);
  bytes[at.proto.offset] = TRACE_PROTOCOLS[filter.proto];
  bytes[at.link_raw.offset] = linkRaw ? 1 : 0;
  bytes[at.expr.offset] = filter.expression !== undefined ? 1 : 0;
  if (filter.host !== undefined) {
    const { family, address, prefixLength } = filter.host;
    if (address.length !== (family === 4 ? 4 : 16)) {
      throw new RangeError("host address length does not match family");
    }
    bytes[at.host_family.offset] = family;
    const mask = prefixMask(prefixLength, address.length);
    for (let i = 0; i < address.length; i++) bytes[at.host_addr.offset + i] = address[i] & mask[i];
    bytes.set(mask, at.host_mask.offset);
  }
  if (filter.port !== undefined) {
    if (!Number.isInteger(filter.port) || filter.port < 0 || filter.port > 65535) {
      throw new RangeError(`port must be 0..65535, got ${filter.port}`);
    }
    bytes[at.port_set.offset] = 1;
    view.setUint16(at.port.offset, filter.port, true);
  }
  return bytes;
}

/** A short text of the filter for logs, e.g. `proto=udp host=10.0.0.0/24 port=53`. */
export function describeFilter(filter: TraceFilter): string {
  const parts = [`proto=${filter.proto}`];
  const host = filter.host;
  if (host) {
    const address = host.family === 4 ? host.address.join(".") : formatIpv6(host.address);
    parts.push(`host=${address}/${host.prefixLength}`);
  }
  if (filter.port !== undefined) parts.push(`port=${filter.port}`);
  if (filter.expression !== undefined) parts.push(`expression='${filter.expression.text}'`);
  parts.push(`snaplen=${filter.snaplen}`);
  return parts.join(" ");
}

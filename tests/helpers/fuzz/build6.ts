/**
 * Fuzzing: builders of valid IPv6 packets (the seeds IPv6 mutations start from): the fixed header, chains
 * of extension headers (Hop-by-Hop and Destination Options with their options, Routing, Fragment, AH),
 * TCP, UDP and ICMPv6 over them, and checksum repair that walks a (possibly lying) chain loosely to find
 * the upper layer. Raw bytes in, raw bytes out; nothing here validates, and nothing throws for any input.
 *
 * @module
 */

import { foldSum, ipv6PseudoHeaderSum, sumWords } from "../../../lib/wire/checksum.ts";
import { NextHeader } from "../../../lib/wire/ipv6.ts";
import { EtherType } from "../../../lib/wire/ethernet.ts";
import { ethernetFrame } from "./build.ts";

/** One extension header: its type (Next Header value naming it) and its bytes after the Next Header byte. */
export interface ExtensionHeader {
  /** The Next Header value that names this header (0, 43, 44, 51, 60, or anything). */
  type: number;
  /** The header's bytes from its second byte on (the first, its own Next Header, is filled in). */
  body: Uint8Array;
}

/** A Hop-by-Hop (0) or Destination Options (60) header with `options` (TLVs), padded to 8n with PadN. */
export function optionsHeader(type: number, options: number[]): ExtensionHeader {
  let total = 2 + options.length;
  const pad = (8 - (total % 8)) % 8;
  total += pad;
  const body = new Uint8Array(total - 1);
  body[0] = total / 8 - 1;
  body.set(options, 1);
  if (pad === 1) body[1 + options.length] = 0; // Pad1
  else if (pad > 1) body.set([1, pad - 2], 1 + options.length); // PadN
  return { type, body };
}

/** A Fragment header (44): offset in bytes (a multiple of 8), the M flag, the identification. */
export function fragmentHeader(offset: number, more: boolean, id: number): ExtensionHeader {
  const body = new Uint8Array(7);
  body[1] = (offset >> 8) & 0xff;
  body[2] = (offset & 0xf8) | (more ? 1 : 0);
  body[3] = id >>> 24;
  body[4] = (id >>> 16) & 0xff;
  body[5] = (id >>> 8) & 0xff;
  body[6] = id & 0xff;
  return { type: NextHeader.FRAGMENT, body };
}

/** A Routing header (43) of `routingType` with `segmentsLeft` and `addresses` 16-byte addresses. */
export function routingHeader(routingType: number, segmentsLeft: number, addresses: number): ExtensionHeader {
  const body = new Uint8Array(7 + 16 * addresses);
  body[0] = 2 * addresses;
  body[1] = routingType;
  body[2] = segmentsLeft;
  for (let i = 0; i < addresses; i++) {
    body.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9], 7 + 16 * i);
  }
  return { type: NextHeader.ROUTING, body };
}

/** An Authentication Header (51, RFC 4302): its length is in 4-byte units minus 2. */
export function authenticationHeader(): ExtensionHeader {
  const body = new Uint8Array(23);
  body[0] = 4; // (4 + 2) * 4 = 24 bytes
  body[8] = 1; // SPI and sequence number, anything
  return { type: 51, body };
}

/** Fields of a crafted IPv6 packet. */
export interface Ipv6Fields {
  /** Source address (16 bytes). */
  src: Uint8Array;
  /** Destination address (16 bytes). */
  dst: Uint8Array;
  /** The upper layer's protocol (after the extension headers). */
  protocol: number;
  /** The upper layer's bytes. */
  payload: Uint8Array;
  /** Extension headers, in order. */
  headers?: readonly ExtensionHeader[];
  /** Hop limit; default 64. */
  hopLimit?: number;
  /** Traffic class; default 0. */
  trafficClass?: number;
  /** Flow label; default 0. */
  flowLabel?: number;
}

/** An IPv6 packet; its upper-layer checksum is computed when the upper layer is TCP, UDP or ICMPv6. */
export function ipv6Packet(f: Ipv6Fields): Uint8Array {
  const headers = f.headers ?? [];
  let length = 40;
  for (const h of headers) length += 1 + h.body.length;
  const upperAt = length;
  length += f.payload.length;
  const p = new Uint8Array(length);
  const tc = f.trafficClass ?? 0, flow = f.flowLabel ?? 0;
  p[0] = 0x60 | (tc >> 4);
  p[1] = ((tc & 0x0f) << 4) | ((flow >> 16) & 0x0f);
  p[2] = (flow >> 8) & 0xff;
  p[3] = flow & 0xff;
  p[4] = ((length - 40) >> 8) & 0xff;
  p[5] = (length - 40) & 0xff;
  p[6] = headers.length > 0 ? headers[0].type : f.protocol;
  p[7] = f.hopLimit ?? 64;
  p.set(f.src.subarray(0, 16), 8);
  p.set(f.dst.subarray(0, 16), 24);
  let at = 40;
  for (let i = 0; i < headers.length; i++) {
    p[at] = i + 1 < headers.length ? headers[i + 1].type : f.protocol;
    p.set(headers[i].body, at + 1);
    at += 1 + headers[i].body.length;
  }
  p.set(f.payload, upperAt);
  fixIpv6Checksum(p);
  return p;
}

/** A UDP header and data (no checksum), for {@link ipv6Packet}. */
export function udpBytes(srcPort: number, dstPort: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([
    srcPort >> 8,
    srcPort & 0xff,
    dstPort >> 8,
    dstPort & 0xff,
    (u.length >> 8) & 0xff,
    u.length & 0xff,
  ]);
  u.set(data, 8);
  return u;
}

/** An ICMPv6 message: type, code, 4 bytes of rest-of-header, body (no checksum), for {@link ipv6Packet}. */
export function icmpv6Bytes(type: number, code: number, rest: number, body: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + body.length);
  m.set([type, code, 0, 0, rest >>> 24, (rest >>> 16) & 0xff, (rest >>> 8) & 0xff, rest & 0xff]);
  m.set(body, 8);
  return m;
}

/** An IPv6 packet in an Ethernet frame. */
export function ipv6Frame(dst: number, src: number, packet: Uint8Array): Uint8Array {
  return ethernetFrame(dst, src, EtherType.IPV6, packet);
}

/** The Ethernet multicast MAC of the IPv6 group at `p[24..40)` (RFC 2464 §7). */
export function multicastMac(p: Uint8Array): number {
  return 0x333300000000 + ((p[36] << 24) >>> 0) + (p[37] << 16) + (p[38] << 8) + p[39];
}

/**
 * Finds the upper layer of `p` by a loose walk of its chain (options headers, Routing, the first Fragment,
 * AH), within what the payload length claims and the bytes hold; returns `[protocol, offset, end]` or null.
 */
export function upperLayer(p: Uint8Array): [number, number, number] | null {
  if (p.length < 40 || p[0] >> 4 !== 6) return null;
  const end = Math.min(p.length, 40 + ((p[4] << 8) | p[5]));
  let next = p[6], at = 40;
  for (let hops = 0; hops < 12; hops++) {
    if (next === 0 || next === 60 || next === 43) {
      if (at + 2 > end) return null;
      const length = (p[at + 1] + 1) * 8;
      next = p[at];
      at += length;
    } else if (next === 44) {
      if (at + 8 > end) return null;
      if (((p[at + 2] << 8) | (p[at + 3] & 0xf8)) !== 0) return null; // a later fragment: no header
      next = p[at];
      at += 8;
    } else if (next === 51) {
      if (at + 2 > end) return null;
      const length = (p[at + 1] + 2) * 4;
      next = p[at];
      at += length;
    } else break;
  }
  return at <= end ? [next, at, end] : null;
}

/**
 * Recomputes the TCP, UDP or ICMPv6 checksum in place over what the (possibly lying) header says is the
 * packet, bounded by the bytes present; anything that does not fit is left alone. For a first fragment it
 * computes a checksum over the fragment only, which is wrong for the whole datagram (as a liar's would be).
 */
export function fixIpv6Checksum(p: Uint8Array): void {
  const upper = upperLayer(p);
  if (upper === null) return;
  const [protocol, at, end] = upper;
  let field: number;
  if (protocol === NextHeader.TCP) field = at + 16;
  else if (protocol === NextHeader.UDP) field = at + 6;
  else if (protocol === NextHeader.ICMPV6) field = at + 2;
  else return;
  if (field + 2 > end) return;
  let length = end - at;
  if (protocol === NextHeader.UDP) {
    const claimed = (p[at + 4] << 8) | p[at + 5];
    if (claimed >= 8 && at + claimed <= end) length = claimed;
  }
  p[field] = 0;
  p[field + 1] = 0;
  const sum = ~foldSum(sumWords(p, at, at + length, ipv6PseudoHeaderSum(p, 8, 24, protocol, length))) &
    0xffff;
  const value = protocol === NextHeader.UDP && sum === 0 ? 0xffff : sum;
  p[field] = value >> 8;
  p[field + 1] = value & 0xff;
}

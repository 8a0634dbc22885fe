/**
 * Fuzzing: structure-aware mutations. A valid frame or packet goes in; a copy comes out with a few of: bit
 * flips, a field set to an extreme value (0, 1, the maximum, the sign bit), truncation (often at a header
 * boundary), trailing garbage, lying lengths and offsets (IPv4 header and total length, TCP data offset, UDP
 * length), a TCP option list rewritten with malformed options (ending mid-option, zero or one length,
 * lengths past the header, too many SACK blocks, absurd values), and IP options; for IPv6 also lying
 * payload lengths, extension headers renamed, resized, inserted or cut, options and NDP options ending
 * mid-option, and extreme hop limits. Checksums are then repaired most of the time so that mutations
 * reach the code behind the checksum checks.
 *
 * @module
 */

import { IpProtocol } from "../../../lib/wire/ipv4.ts";
import { fixIpv4Checksum, fixTransportChecksum } from "./build.ts";
import { fixIpv6Checksum, upperLayer } from "./build6.ts";

/** Seeded decisions over a `() => number` in [0, 1). */
export class Dice {
  /** Wraps a seeded generator. */
  constructor(readonly random: () => number) {}
  /** A whole number in [0, n). */
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.random() < p;
  }
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** An unsigned 32-bit value. */
  u32(): number {
    return (this.int(0x10000) * 0x10000 + this.int(0x10000)) >>> 0;
  }
}

/** A field of a header: offset from the header's start and size in bytes (1, 2 or 4). */
type Field = readonly [offset: number, size: number];

const IPV4_FIELDS: readonly Field[] = [[0, 1], [1, 1], [2, 2], [4, 2], [6, 2], [8, 1], [9, 1], [12, 4], [
  16,
  4,
]];
const TCP_FIELDS: readonly Field[] = [[0, 2], [2, 2], [4, 4], [8, 4], [12, 1], [13, 1], [14, 2], [18, 2]];
const UDP_FIELDS: readonly Field[] = [[0, 2], [2, 2], [4, 2], [6, 2]];
const ICMP_FIELDS: readonly Field[] = [[0, 1], [1, 1], [4, 2], [6, 2]];
const ETHERNET_FIELDS: readonly Field[] = [[0, 2], [5, 1], [6, 2], [11, 1], [12, 2]];
const ARP_FIELDS: readonly Field[] = [[0, 2], [2, 2], [4, 1], [5, 1], [6, 2], [8, 4], [14, 4], [18, 4], [
  24,
  4,
]];

/** What a byte array holds, so that mutations know its fields. */
export type Shape = "ipv4" | "ethernet-ipv4" | "ethernet-arp" | "ipv6" | "ethernet-ipv6" | "raw";

function extreme(dice: Dice, size: number, current: number): number {
  const max = size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  const half = size === 4 ? 0x80000000 : 1 << (8 * size - 1);
  switch (dice.int(9)) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return max;
    case 3:
      return max - 1;
    case 4:
      return half;
    case 5:
      return half - 1;
    case 6:
      return (current + 1) % (max + 1);
    case 7:
      return (current + max) % (max + 1); // current - 1
    default:
      return size === 4 ? dice.u32() : dice.int(max + 1);
  }
}

function writeField(b: Uint8Array, at: number, size: number, value: number): void {
  for (let i = size - 1; i >= 0; i--) {
    if (at + i < b.length) b[at + i] = value & 0xff;
    value = Math.floor(value / 256);
  }
}

function readField(b: Uint8Array, at: number, size: number): number {
  let v = 0;
  for (let i = 0; i < size; i++) v = v * 256 + (b[at + i] ?? 0);
  return v;
}

/**
 * A TCP option list of exactly `room` bytes (a multiple of 4, at most 40) that is malformed or odd in some
 * way: unusual values, wrong fixed lengths, lengths of 0 or 1 or past the end, or cut mid-option.
 */
export function hostileTcpOptions(dice: Dice, room: number): Uint8Array {
  const out = new Uint8Array(room);
  let i = 0;
  const put = (...bytes: number[]) => {
    for (const b of bytes) if (i < room) out[i++] = b & 0xff;
  };
  while (i < room) {
    switch (dice.int(14)) {
      case 0: // MSS with an extreme value
        put(2, 4, ...u16(extreme(dice, 2, 536)));
        break;
      case 1: // MSS with a wrong length
        put(2, dice.pick([0, 1, 2, 3, 5, 40, 255]), 0x05, 0xb4);
        break;
      case 2: // window scale, any shift
        put(3, 3, dice.pick([0, 7, 14, 15, 255]));
        break;
      case 3: // SACK-permitted, possibly with a wrong length
        put(4, dice.pick([2, 2, 3, 0]));
        break;
      case 4: // timestamps, extreme values or a wrong length
        put(8, dice.pick([10, 10, 9, 11, 2]), ...u32(extreme(dice, 4, 0)), ...u32(extreme(dice, 4, 0)));
        break;
      case 5: { // SACK blocks, 1–5, or a length that is not 2 + 8n
        const n = dice.int(6);
        put(5, dice.chance(0.7) ? 2 + 8 * n : dice.int(256));
        for (let k = 0; k < 2 * n; k++) put(...u32(extreme(dice, 4, 0)));
        break;
      }
      case 6: // unknown kind
        put(dice.int(256), dice.int(room + 4));
        break;
      case 7: // length zero or one (would loop forever if read naively)
        put(dice.pick([2, 3, 5, 8, 30]), dice.pick([0, 1]));
        break;
      case 8: // a length running past the header
        put(dice.pick([2, 5, 8]), 255);
        break;
      case 9:
        put(1); // NOP
        break;
      case 10:
        put(0); // END, then anything
        break;
      case 11: // a run of NOPs
        for (let k = dice.int(8); k > 0; k--) put(1);
        break;
      default: // an option cut mid-way: kind and length at the very end
        if (room - i >= 2) i = room - dice.pick([1, 2]);
        put(dice.pick([2, 3, 5, 8]), dice.pick([4, 3, 10, 10]));
        break;
    }
  }
  return out;
}

function u16(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** Where the IPv4 packet starts in a buffer of `shape`, or -1. */
function ipStart(shape: Shape): number {
  return shape === "ipv4" ? 0 : shape === "ethernet-ipv4" ? 14 : -1;
}

/** The transport header's fields and start for the IPv4 packet at `ip`, when plausible. */
function transport(b: Uint8Array, ip: number): { start: number; fields: readonly Field[] } | null {
  if (ip < 0 || b.length < ip + 20) return null;
  const start = ip + (b[ip] & 0x0f) * 4;
  if (start <= ip || start >= b.length) return null;
  const protocol = b[ip + 9];
  const fields = protocol === IpProtocol.TCP
    ? TCP_FIELDS
    : protocol === IpProtocol.UDP
    ? UDP_FIELDS
    : protocol === IpProtocol.ICMP
    ? ICMP_FIELDS
    : null;
  return fields === null ? null : { start, fields };
}

const IPV6_FIELDS: readonly Field[] = [[0, 1], [1, 1], [2, 2], [4, 2], [6, 1], [7, 1], [8, 4], [20, 4], [
  24,
  4,
], [36, 4]];

/** One IPv6-specific mutation of the packet at `b[ip..]` (a fresh array when the length changes). */
function mutateIpv6(b: Uint8Array, ip: number, dice: Dice): Uint8Array {
  if (b.length < ip + 40) return mutateOnce(b, "raw", dice);
  const upper = upperLayer(b.subarray(ip));
  const r = dice.int(10);
  if (r >= 7 && upper !== null) {
    const [protocol, offset, end] = upper;
    const at = ip + offset;
    if (r === 7 || protocol !== IpProtocol.TCP || at + 20 > ip + end) { // a transport header field
      const fields = protocol === IpProtocol.TCP
        ? TCP_FIELDS
        : protocol === IpProtocol.UDP
        ? UDP_FIELDS
        : protocol === 58
        ? ICMP_FIELDS
        : null;
      if (fields === null) return mutateOnce(b, "raw", dice);
      const [field, size] = dice.pick(fields);
      writeField(b, at + field, size, extreme(dice, size, readField(b, at + field, size)));
      return b;
    }
    // TCP over IPv6: the option list rewritten with malformed options, the payload length following.
    const dataOffset = (b[at + 12] >> 4) * 4;
    const room = dataOffset > 20 && dice.chance(0.6) ? dataOffset - 20 : 4 * (1 + dice.int(10));
    const options = hostileTcpOptions(dice, room);
    const data = b.subarray(Math.min(b.length, at + Math.max(20, dataOffset)));
    const out = new Uint8Array(at + 20 + room + data.length);
    out.set(b.subarray(0, at + 20));
    out.set(options, at + 20);
    out.set(data, at + 20 + room);
    out[at + 12] = (((20 + room) >> 2) << 4) | (out[at + 12] & 0x0f);
    writeField(out, ip + 4, 2, out.length - ip - 40);
    return out;
  }
  switch (dice.int(7)) {
    case 0: { // an extreme value in a fixed header field
      const [offset, size] = dice.pick(IPV6_FIELDS);
      writeField(b, ip + offset, size, extreme(dice, size, readField(b, ip + offset, size)));
      return b;
    }
    case 1: // a payload length that lies: short, long, or zero (jumbo without the option)
      writeField(b, ip + 4, 2, dice.pick([0, 1, 8, b.length - ip - 40 - 1, b.length - ip - 40 + 8, 0xffff]));
      return b;
    case 2: { // a Next Header in the chain renamed
      const fields = [ip + 6];
      for (let at = ip + 40; at < b.length && fields.length < 6; at += 8) fields.push(at);
      b[dice.pick(fields)] = dice.pick([0, 6, 17, 43, 44, 50, 51, 58, 59, 60, 135, 139, 253, dice.int(256)]);
      return b;
    }
    case 3: // an extension header length byte changed (the chain's offsets move)
      if (b.length > ip + 41) {
        b[ip + 41 + 8 * dice.int(Math.max(1, (b.length - ip - 41) >> 3))] = dice.pick([
          0,
          1,
          2,
          255,
          dice.int(8),
        ]);
      }
      return b;
    case 4: { // an extension header inserted first: options cut mid-option, or a fragment header
      const header = new Uint8Array(8);
      header[0] = b[ip + 6];
      if (dice.chance(0.5)) {
        header.set([0, dice.pick([0, 1, 5, 0xc2, 0x80, 0xff]), dice.pick([2, 4, 6, 200])], 1);
      } else header.set([0, 0, dice.pick([0, 8, 0xff]), dice.pick([0, 1, 0xf9]), 0, 0, 1], 1);
      b[ip + 6] = dice.chance(0.5) ? dice.pick([0, 60]) : 44;
      const out = new Uint8Array(b.length + 8);
      out.set(b.subarray(0, ip + 40));
      out.set(header, ip + 40);
      out.set(b.subarray(ip + 40), ip + 48);
      writeField(out, ip + 4, 2, out.length - ip - 40);
      return out;
    }
    case 5: { // NDP or ICMPv6 body: an option length of zero, one too long, or the message cut mid-option
      if (upper === null || upper[0] !== 58) return mutateOnce(b, "raw", dice);
      const at = ip + upper[1];
      const end = ip + upper[2];
      const room = end - at;
      if (room <= 8) return b;
      const option = at + 8 + 8 * dice.int(Math.max(1, (room - 8) >> 3)) + (dice.chance(0.5) ? 16 : 0);
      if (option + 1 < end) b[option + 1] = dice.pick([0, 1, 2, 4, 255]);
      if (dice.chance(0.5)) {
        const cut = Math.min(b.length, option + dice.int(3));
        writeField(b, ip + 4, 2, cut - ip - 40);
        return b.slice(0, cut);
      }
      return b;
    }
    default: { // truncated at a boundary of the fixed header or the chain
      const marks = [0, 1, 8, 39, 40, 41, 42, 47, 48, 49, 55, 56, 63, 64];
      if (upper !== null) marks.push(upper[1], upper[1] + 1, upper[1] + 4, upper[1] + 8, upper[1] + 19);
      return b.slice(0, Math.min(b.length, ip + dice.pick(marks)));
    }
  }
}

/** One mutation of `b` (a fresh array is returned when the length changes). */
function mutateOnce(b: Uint8Array, shape: Shape, dice: Dice): Uint8Array {
  if (shape === "ipv6" || shape === "ethernet-ipv6") {
    if (dice.chance(0.6)) return mutateIpv6(b, shape === "ipv6" ? 0 : 14, dice);
    if (shape === "ethernet-ipv6" && dice.chance(0.2)) {
      const [offset, size] = dice.pick(ETHERNET_FIELDS);
      writeField(b, offset, size, extreme(dice, size, readField(b, offset, size)));
      return b;
    }
    return mutateOnce(b, "raw", dice);
  }
  const ip = ipStart(shape);
  const t = transport(b, ip);
  switch (dice.int(10)) {
    case 0: { // bit flips
      for (let k = 1 + dice.int(4); k > 0 && b.length > 0; k--) b[dice.int(b.length)] ^= 1 << dice.int(8);
      return b;
    }
    case 1: { // an extreme byte anywhere
      if (b.length > 0) b[dice.int(b.length)] = dice.pick([0, 1, 0x7f, 0x80, 0xfe, 0xff]);
      return b;
    }
    case 2:
    case 3: { // an extreme value in a header field
      const headers: [number, readonly Field[]][] = [];
      if (ip >= 0) headers.push([ip, IPV4_FIELDS]);
      if (t !== null) headers.push([t.start, t.fields], [t.start, t.fields]);
      if (shape === "ethernet-ipv4" || shape === "ethernet-arp") headers.push([0, ETHERNET_FIELDS]);
      if (shape === "ethernet-arp") headers.push([14, ARP_FIELDS], [14, ARP_FIELDS]);
      if (headers.length === 0) return mutateOnce(b, "raw", dice);
      const [base, fields] = dice.pick(headers);
      const [offset, size] = dice.pick(fields);
      writeField(b, base + offset, size, extreme(dice, size, readField(b, base + offset, size)));
      return b;
    }
    case 4: { // truncation, often just inside or past a header boundary
      const marks = [0, 1, 13, 14, 19, 20, 27, 28, 33, 34, 39, 40, 41, 53, 54, 59, 60];
      const cut = dice.chance(0.5) ? dice.pick(marks) + (ip > 0 ? ip : 0) : dice.int(b.length + 1);
      return b.slice(0, Math.min(cut, b.length));
    }
    case 5: { // trailing garbage
      const grown = new Uint8Array(b.length + 1 + dice.int(64));
      grown.set(b);
      grown.set(dice.bytes(grown.length - b.length), b.length);
      return grown;
    }
    case 6: { // lying lengths and offsets
      if (ip < 0 || b.length < ip + 20) return mutateOnce(b, "raw", dice);
      const which = dice.int(4);
      if (which === 0) b[ip] = (b[ip] & 0xf0) | dice.int(16); // IHL
      else if (which === 1) writeField(b, ip + 2, 2, Math.max(0, b.length - ip + dice.int(41) - 20)); // total
      else if (t !== null && b[ip + 9] === IpProtocol.TCP && t.start + 12 < b.length) {
        b[t.start + 12] = (dice.int(16) << 4) | (b[t.start + 12] & 0x0f); // data offset
      } else if (t !== null && b[ip + 9] === IpProtocol.UDP && t.start + 5 < b.length) {
        writeField(b, t.start + 4, 2, Math.max(0, b.length - t.start + dice.int(17) - 8)); // UDP length
      } else writeField(b, ip + 6, 2, dice.int(0x10000)); // fragment word
      return b;
    }
    case 7:
    case 8: { // TCP options rewritten
      if (t === null || b[ip + 9] !== IpProtocol.TCP || t.start + 20 > b.length) {
        return mutateOnce(b, shape, dice);
      }
      const dataOffset = (b[t.start + 12] >> 4) * 4;
      const room = dataOffset > 20 && dice.chance(0.6) ? dataOffset - 20 : 4 * (1 + dice.int(10));
      const options = hostileTcpOptions(dice, room);
      const data = b.subarray(Math.min(b.length, t.start + Math.max(20, dataOffset)));
      const out = new Uint8Array(t.start + 20 + room + data.length);
      out.set(b.subarray(0, t.start + 20));
      out.set(options, t.start + 20);
      out.set(data, t.start + 20 + room);
      out[t.start + 12] = (((20 + room) >> 2) << 4) | (out[t.start + 12] & 0x0f);
      writeField(out, ip + 2, 2, out.length - ip);
      return out;
    }
    default: { // IP options inserted (the transport header moves)
      if (ip < 0 || b.length < ip + 20 || (b[ip] & 0x0f) !== 5) return mutateOnce(b, "raw", dice);
      const room = 4 * (1 + dice.int(10));
      const options = dice.chance(0.5) ? dice.bytes(room) : new Uint8Array(room).fill(1); // noise or NOPs
      if (dice.chance(0.3)) options[room - 1] = dice.pick([0x44, 0x07, 0x83, 0x89]); // a kind cut at the end
      const out = new Uint8Array(b.length + room);
      out.set(b.subarray(0, ip + 20));
      out.set(options, ip + 20);
      out.set(b.subarray(ip + 20), ip + 20 + room);
      out[ip] = 0x40 | ((20 + room) >> 2);
      writeField(out, ip + 2, 2, out.length - ip);
      return out;
    }
  }
}

/**
 * Returns a mutated copy of `input` (1–3 mutations); most of the time the IPv4 and transport checksums
 * are recomputed afterwards so the mutation is not merely a bad checksum.
 */
export function mutate(input: Uint8Array, shape: Shape, dice: Dice): Uint8Array {
  let b: Uint8Array = input.slice();
  for (let k = 1 + dice.int(3); k > 0; k--) b = mutateOnce(b, shape, dice);
  if ((shape === "ipv6" || shape === "ethernet-ipv6") && dice.chance(0.8)) {
    fixIpv6Checksum(b.subarray(shape === "ipv6" ? 0 : 14));
    return b;
  }
  const ip = ipStart(shape);
  if (ip >= 0 && b.length > ip && dice.chance(0.8)) {
    const packet = b.subarray(ip);
    fixIpv4Checksum(packet);
    fixTransportChecksum(packet);
  }
  return b;
}

/**
 * Fuzzing: builders of valid packets (the seeds that mutations start from) and checksum repair (so that a
 * mutated packet still gets past the checksum checks and reaches the code behind them). Raw bytes in,
 * raw bytes out; nothing here validates, and nothing throws for any input.
 *
 * @module
 */

import { foldSum, internetChecksum, ipv4PseudoHeaderSum, sumWords } from "../../../lib/wire/checksum.ts";
import { IpProtocol } from "../../../lib/wire/ipv4.ts";
import { readIpv4, writeIpv4 } from "../../../lib/wire/ipv4_address.ts";
import { ETHERNET_HEADER_LENGTH, EtherType, writeEthernetHeader } from "../../../lib/wire/ethernet.ts";

/** Fields of a crafted IPv4 packet; the payload is copied after the header (and its options). */
export interface Ipv4Fields {
  /** Source address. */
  src: number;
  /** Destination address. */
  dst: number;
  /** Protocol number. */
  protocol: number;
  /** Transport header and data. */
  payload: Uint8Array;
  /** IP options (padded to a multiple of 4 here). */
  options?: Uint8Array;
  /** Identification. */
  id?: number;
  /** Flags and fragment offset word (DF 0x4000, MF 0x2000, offset in 8-byte units). */
  fragment?: number;
  /** Time to live; default 64. */
  ttl?: number;
}

/** An IPv4 packet with a correct header checksum (the transport checksum is the caller's). */
export function ipv4Packet(f: Ipv4Fields): Uint8Array {
  const optionsLength = f.options ? (f.options.length + 3) & ~3 : 0;
  const headerLength = 20 + optionsLength;
  const p = new Uint8Array(headerLength + f.payload.length);
  p[0] = 0x40 | (headerLength >> 2);
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[4] = (f.id ?? 0) >> 8;
  p[5] = (f.id ?? 0) & 0xff;
  p[6] = (f.fragment ?? 0) >> 8;
  p[7] = (f.fragment ?? 0) & 0xff;
  p[8] = f.ttl ?? 64;
  p[9] = f.protocol;
  writeIpv4(p, 12, f.src);
  writeIpv4(p, 16, f.dst);
  if (f.options) p.set(f.options, 20);
  p.set(f.payload, headerLength);
  fixIpv4Checksum(p);
  return p;
}

/** Fields of a crafted TCP segment. */
export interface TcpFields {
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Sequence number. */
  seq: number;
  /** Acknowledgment number. */
  ack: number;
  /** Control bits. */
  flags: number;
  /** Window field. */
  window: number;
  /** Raw option bytes (padded with NOPs... no: with zeros, to a multiple of 4). */
  options?: Uint8Array;
  /** Data. */
  data?: Uint8Array;
  /** Urgent pointer. */
  urgent?: number;
}

/** The TCP header and data of `f`, checksum left zero (the IP builder of either family fills it). */
export function tcpBytes(f: TcpFields): Uint8Array {
  const optionsLength = f.options ? Math.min(40, (f.options.length + 3) & ~3) : 0;
  const data = f.data ?? new Uint8Array(0);
  const t = new Uint8Array(20 + optionsLength + data.length);
  t[0] = f.srcPort >> 8;
  t[1] = f.srcPort & 0xff;
  t[2] = f.dstPort >> 8;
  t[3] = f.dstPort & 0xff;
  writeIpv4(t, 4, f.seq >>> 0);
  writeIpv4(t, 8, f.ack >>> 0);
  t[12] = ((20 + optionsLength) >> 2) << 4;
  t[13] = f.flags & 0xff;
  t[14] = (f.window >> 8) & 0xff;
  t[15] = f.window & 0xff;
  t[18] = ((f.urgent ?? 0) >> 8) & 0xff;
  t[19] = (f.urgent ?? 0) & 0xff;
  if (f.options) t.set(f.options.subarray(0, optionsLength), 20);
  t.set(data, 20 + optionsLength);
  return t;
}

/** A TCP segment inside an IPv4 packet from `src` to `dst`, both checksums correct. */
export function tcpPacket(src: number, dst: number, f: TcpFields): Uint8Array {
  const p = ipv4Packet({ src, dst, protocol: IpProtocol.TCP, payload: tcpBytes(f) });
  fixTransportChecksum(p);
  return p;
}

/** A UDP datagram inside an IPv4 packet, checksums correct. */
export function udpPacket(src: number, srcPort: number, dst: number, dstPort: number, data: Uint8Array) {
  const u = new Uint8Array(8 + data.length);
  u[0] = srcPort >> 8;
  u[1] = srcPort & 0xff;
  u[2] = dstPort >> 8;
  u[3] = dstPort & 0xff;
  u[4] = u.length >> 8;
  u[5] = u.length & 0xff;
  u.set(data, 8);
  const p = ipv4Packet({ src, dst, protocol: IpProtocol.UDP, payload: u });
  fixTransportChecksum(p);
  return p;
}

/** An ICMP message (type, code, 4 bytes of rest-of-header, data) inside an IPv4 packet. */
export function icmpPacket(
  src: number,
  dst: number,
  type: number,
  code: number,
  rest: number,
  data: Uint8Array,
) {
  const m = new Uint8Array(8 + data.length);
  m[0] = type;
  m[1] = code;
  writeIpv4(m, 4, rest >>> 0);
  m.set(data, 8);
  const p = ipv4Packet({ src, dst, protocol: IpProtocol.ICMP, payload: m });
  fixTransportChecksum(p);
  return p;
}

/** An Ethernet II frame around `payload`. */
export function ethernetFrame(dst: number, src: number, etherType: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + payload.length);
  writeEthernetHeader(frame, 0, dst, src, etherType);
  frame.set(payload, ETHERNET_HEADER_LENGTH);
  return frame;
}

/** An IPv4 packet in an Ethernet frame. */
export function ipv4Frame(dst: number, src: number, packet: Uint8Array): Uint8Array {
  return ethernetFrame(dst, src, EtherType.IPV4, packet);
}

/** Recomputes the IPv4 header checksum in place, when the header is there at all. */
export function fixIpv4Checksum(p: Uint8Array): void {
  if (p.length < 20) return;
  const headerLength = (p[0] & 0x0f) * 4;
  if (headerLength < 20 || headerLength > p.length) return;
  p[10] = 0;
  p[11] = 0;
  const sum = internetChecksum(p, 0, headerLength);
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
}

/**
 * Recomputes the TCP, UDP or ICMP checksum in place over what the (possibly lying) header says is the
 * packet, bounded by the bytes present; anything that does not fit is left alone.
 */
export function fixTransportChecksum(p: Uint8Array): void {
  if (p.length < 20) return;
  const headerLength = (p[0] & 0x0f) * 4;
  const total = Math.min(p.length, (p[2] << 8) | p[3]);
  if (headerLength < 20 || headerLength >= total) return;
  const protocol = p[9];
  const src = readIpv4(p, 12), dst = readIpv4(p, 16);
  if (protocol === IpProtocol.TCP) {
    if (headerLength + 18 > total) return;
    p[headerLength + 16] = 0;
    p[headerLength + 17] = 0;
    const pseudo = ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, total - headerLength);
    const sum = ~foldSum(sumWords(p, headerLength, total, pseudo)) & 0xffff;
    p[headerLength + 16] = sum >> 8;
    p[headerLength + 17] = sum & 0xff;
  } else if (protocol === IpProtocol.UDP) {
    if (headerLength + 8 > total) return;
    const claimed = (p[headerLength + 4] << 8) | p[headerLength + 5];
    const length = claimed >= 8 && headerLength + claimed <= total ? claimed : total - headerLength;
    p[headerLength + 6] = 0;
    p[headerLength + 7] = 0;
    const pseudo = ipv4PseudoHeaderSum(src, dst, IpProtocol.UDP, length);
    const sum = ~foldSum(sumWords(p, headerLength, headerLength + length, pseudo)) & 0xffff;
    const value = sum === 0 ? 0xffff : sum;
    p[headerLength + 6] = value >> 8;
    p[headerLength + 7] = value & 0xff;
  } else if (protocol === IpProtocol.ICMP) {
    if (headerLength + 4 > total) return;
    p[headerLength + 2] = 0;
    p[headerLength + 3] = 0;
    const sum = internetChecksum(p, headerLength, total);
    p[headerLength + 2] = sum >> 8;
    p[headerLength + 3] = sum & 0xff;
  }
}

/** Splits a valid IPv4 packet (20-byte header) into fragments at `cuts` (payload offsets, multiples of 8). */
export function fragments(packet: Uint8Array, cuts: number[], id: number): Uint8Array[] {
  const headerLength = (packet[0] & 0x0f) * 4;
  const payload = packet.subarray(headerLength);
  const points = [
    0,
    ...cuts.filter((c) => c > 0 && c < payload.length).sort((a, b) => a - b),
    payload.length,
  ];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    if (points[i] === points[i + 1]) continue;
    const more = i + 2 < points.length;
    out.push(ipv4Packet({
      src: readIpv4(packet, 12),
      dst: readIpv4(packet, 16),
      protocol: packet[9],
      payload: payload.subarray(points[i], points[i + 1]),
      id,
      fragment: (more ? 0x2000 : 0) | ((points[i] >> 3) & 0x1fff),
    }));
  }
  return out;
}

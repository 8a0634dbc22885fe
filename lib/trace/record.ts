/**
 * Decoding of netstack trace's ring-buffer records (struct trace_record in bpf/trace_record.h) and of
 * the captured frame inside them, for the text and JSON output.
 *
 * Record header (struct trace_record, 24 bytes, little-endian; offsets from lib/trace/layout.ts, which
 * the tests check against the object's BTF): timestamp_ns u64 (CLOCK_MONOTONIC), ifindex u32, wire_len
 * u32, cap_len u16, direction u8 (0 ingress, 1 egress), version u8, reserved u32; then cap_len bytes of
 * the frame from its Ethernet header (its IP header on raw-IP devices).
 *
 * The frame decoder never throws: it decodes as far as the captured bytes go and sets `truncated` when
 * a header was cut short. The record decoder throws {@link RecordError} for a record that cannot be a
 * trace record (short, wrong version, lengths that disagree).
 *
 * @module
 */

import { formatIpv4, readIpv4 } from "../wire/ipv4_address.ts";
import { EtherType, formatMac, readMac } from "../wire/ethernet.ts";
import { formatIpv6 } from "./ipv6_text.ts";
import { TRACE_RECORD_LAYOUT } from "./layout.ts";

/** Size of struct trace_record. */
export const RECORD_HEADER_BYTES = TRACE_RECORD_LAYOUT.bytes;

/** Byte offsets of struct trace_record's members (see lib/trace/layout.ts). */
export const RECORD_OFFSETS = {
  timestamp: TRACE_RECORD_LAYOUT.fields.timestamp_ns.offset,
  ifindex: TRACE_RECORD_LAYOUT.fields.ifindex.offset,
  wireLength: TRACE_RECORD_LAYOUT.fields.wire_len.offset,
  capturedLength: TRACE_RECORD_LAYOUT.fields.cap_len.offset,
  direction: TRACE_RECORD_LAYOUT.fields.direction.offset,
  version: TRACE_RECORD_LAYOUT.fields.version.offset,
} as const;
const AT = RECORD_OFFSETS;
/** TRACE_RECORD_VERSION. */
export const RECORD_VERSION = 1;

/** Where the packet was seen. */
export type Direction = "ingress" | "egress";

/** One decoded record header plus its captured bytes. */
export interface TraceRecord {
  /** CLOCK_MONOTONIC in nanoseconds (a double: exact to the nanosecond for about 104 days of uptime). */
  timestampNs: number;
  ifindex: number;
  direction: Direction;
  wireLength: number;
  capturedLength: number;
  /** The captured bytes (a view into the buffer the record was decoded from). */
  data: Uint8Array;
}

/** A record that is not a well-formed trace record. */
export class RecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecordError";
  }
}

/**
 * Reads record headers in place, without allocating per record (the `-q -w` hot path): after
 * {@link RecordHeaderReader.read} the fields describe the record, whose frame is
 * `bytes[dataOffset .. dataOffset + capturedLength)`. Reuse one reader for many records.
 */
export class RecordHeaderReader {
  timestampNs = 0;
  ifindex = 0;
  direction: Direction = "ingress";
  wireLength = 0;
  capturedLength = 0;
  dataOffset = 0;
  #bytes: Uint8Array | undefined;
  #view: DataView | undefined;

  /** Reads the header of the `length`-byte record at `offset`; throws {@link RecordError} when malformed. */
  read(bytes: Uint8Array, offset: number, length: number): void {
    if (length < RECORD_HEADER_BYTES || offset < 0 || offset + length > bytes.length) {
      throw new RecordError(
        `record of ${length} bytes is shorter than its ${RECORD_HEADER_BYTES}-byte header`,
      );
    }
    if (bytes !== this.#bytes) {
      this.#bytes = bytes;
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const view = this.#view!;
    const version = bytes[offset + AT.version];
    if (version !== RECORD_VERSION) {
      throw new RecordError(`record version ${version}, expected ${RECORD_VERSION}`);
    }
    const direction = bytes[offset + AT.direction];
    if (direction > 1) throw new RecordError(`record direction ${direction} is neither ingress nor egress`);
    const capturedLength = view.getUint16(offset + AT.capturedLength, true);
    const wireLength = view.getUint32(offset + AT.wireLength, true);
    if (capturedLength > length - RECORD_HEADER_BYTES) {
      throw new RecordError(
        `record claims ${capturedLength} captured bytes but holds ${length - RECORD_HEADER_BYTES}`,
      );
    }
    if (capturedLength > wireLength) {
      throw new RecordError(`record captured ${capturedLength} bytes of a ${wireLength}-byte packet`);
    }
    const timestamp = offset + AT.timestamp;
    this.timestampNs = view.getUint32(timestamp + 4, true) * 4294967296 + view.getUint32(timestamp, true);
    this.ifindex = view.getUint32(offset + AT.ifindex, true);
    this.direction = direction === 0 ? "ingress" : "egress";
    this.wireLength = wireLength;
    this.capturedLength = capturedLength;
    this.dataOffset = offset + RECORD_HEADER_BYTES;
  }
}

/** Decodes the record of `length` bytes at `offset` of `bytes` (the ring buffer's sample, without its header). */
export function decodeRecord(bytes: Uint8Array, offset = 0, length = bytes.length - offset): TraceRecord {
  const header = new RecordHeaderReader();
  header.read(bytes, offset, length);
  return {
    timestampNs: header.timestampNs,
    ifindex: header.ifindex,
    direction: header.direction,
    wireLength: header.wireLength,
    capturedLength: header.capturedLength,
    data: bytes.subarray(header.dataOffset, header.dataOffset + header.capturedLength),
  };
}

/** Encodes a record (the inverse of {@link decodeRecord}), for tests and tools. */
export function encodeRecord(record: Omit<TraceRecord, "capturedLength">): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(RECORD_HEADER_BYTES + record.data.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(AT.timestamp, record.timestampNs % 4294967296, true);
  view.setUint32(AT.timestamp + 4, Math.floor(record.timestampNs / 4294967296), true);
  view.setUint32(AT.ifindex, record.ifindex, true);
  view.setUint32(AT.wireLength, record.wireLength, true);
  view.setUint16(AT.capturedLength, record.data.length, true);
  view.setUint8(AT.direction, record.direction === "ingress" ? 0 : 1);
  view.setUint8(AT.version, RECORD_VERSION);
  bytes.set(record.data, RECORD_HEADER_BYTES);
  return bytes;
}

/** What the output shows of one frame. Fields are absent where they do not apply. */
export interface DecodedPacket {
  /** Protocol label: `TCP`, `UDP`, `ICMP`, `ICMP6`, `ARP`, `SCTP`, `IP`, `IP6` or `ether`. */
  proto: string;
  /** The EtherType after VLAN tags (0 when the Ethernet header is cut short). */
  etherType: number;
  /** VLAN ids of 802.1Q/802.1ad tags, outermost first. */
  vlans: number[];
  srcMac?: string;
  dstMac?: string;
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  /** IP protocol number (IPv4 protocol / IPv6 last next-header). */
  ipProtocol?: number;
  /** tcpdump-style flags: `S`, `S.`, `P.`, `F.`, `R`, `.`. */
  tcpFlags?: string;
  seq?: number;
  ack?: number;
  window?: number;
  icmpType?: number;
  icmpCode?: number;
  /** A short description of ICMP/ICMPv6/ARP messages, e.g. `echo request, id 7, seq 1`. */
  info?: string;
  /** A non-first IP fragment: no transport header. */
  fragment?: boolean;
  /**
   * tcpdump's `length`: the TCP/UDP payload, the ICMP message, the IP payload for other IP protocols,
   * 28 for ARP, the frame after the Ethernet header otherwise. Taken from the headers, so it is right even
   * when the capture is cut at the snaplen.
   */
  length: number;
  /** A header was cut short by the snaplen (or the frame is malformed). */
  truncated: boolean;
}

function mac(bytes: Uint8Array, offset: number): string {
  return formatMac(readMac(bytes, offset));
}

const TCP_FLAG_LETTERS: [number, string][] = [
  [0x01, "F"],
  [0x02, "S"],
  [0x04, "R"],
  [0x08, "P"],
  [0x10, "."],
  [0x20, "U"],
  [0x40, "E"],
  [0x80, "W"],
];

/** tcpdump's rendering of the TCP flags byte, e.g. 0x12 → `S.`; no flag at all → `none`. */
export function tcpFlagsText(flags: number): string {
  let text = "";
  for (const [bit, letter] of TCP_FLAG_LETTERS) if (flags & bit) text += letter;
  return text === "" ? "none" : text;
}

const ICMP4_NAMES: Record<number, string> = {
  0: "echo reply",
  3: "destination unreachable",
  5: "redirect",
  8: "echo request",
  11: "time exceeded",
  12: "parameter problem",
};

const ICMP6_NAMES: Record<number, string> = {
  1: "destination unreachable",
  2: "packet too big",
  3: "time exceeded",
  4: "parameter problem",
  128: "echo request",
  129: "echo reply",
  133: "router solicitation",
  134: "router advertisement",
  135: "neighbor solicitation",
  136: "neighbor advertisement",
  143: "multicast listener report v2",
};

const IPV6_EXTENSIONS = new Set([0, 43, 44, 51, 60]);

/**
 * Decodes as much of a frame as was captured. `wireLength` is the frame's full length; `raw`: the frame
 * starts at the IP header (a raw-IP device such as TUN), not at an Ethernet header.
 */
export function decodePacket(data: Uint8Array, wireLength = data.length, raw = false): DecodedPacket {
  if (raw) return decodeRawIp(data, wireLength);
  const packet: DecodedPacket = {
    proto: "ether",
    etherType: 0,
    vlans: [],
    length: Math.max(0, wireLength - 14),
    truncated: false,
  };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 14) {
    packet.truncated = true;
    return packet;
  }
  packet.dstMac = mac(data, 0);
  packet.srcMac = mac(data, 6);
  let etherType = view.getUint16(12);
  let at = 14;
  while (etherType === EtherType.VLAN || etherType === EtherType.QINQ) {
    if (data.length < at + 4 || packet.vlans.length >= 2) {
      packet.truncated = data.length < at + 4;
      packet.etherType = etherType;
      return packet;
    }
    packet.vlans.push(view.getUint16(at) & 0x0fff);
    etherType = view.getUint16(at + 2);
    at += 4;
  }
  packet.etherType = etherType;
  packet.length = Math.max(0, wireLength - at);
  if (etherType === EtherType.ARP) decodeArp(data, view, at, packet);
  else if (etherType === EtherType.IPV4) decodeIpv4(data, view, at, packet);
  else if (etherType === EtherType.IPV6) decodeIpv6(data, view, at, packet);
  return packet;
}

function decodeRawIp(data: Uint8Array, wireLength: number): DecodedPacket {
  const packet: DecodedPacket = {
    proto: "IP",
    etherType: 0,
    vlans: [],
    length: wireLength,
    truncated: false,
  };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = data.length > 0 ? data[0] >> 4 : 0;
  if (version === 4) {
    packet.etherType = EtherType.IPV4;
    decodeIpv4(data, view, 0, packet);
  } else if (version === 6) {
    packet.etherType = EtherType.IPV6;
    decodeIpv6(data, view, 0, packet);
  } else {
    packet.truncated = true;
  }
  return packet;
}

function decodeArp(data: Uint8Array, view: DataView, at: number, packet: DecodedPacket): void {
  packet.proto = "ARP";
  packet.length = 28;
  if (data.length < at + 28) {
    packet.truncated = true;
    return;
  }
  if (
    view.getUint16(at) !== 1 || view.getUint16(at + 2) !== 0x0800 || data[at + 4] !== 6 || data[at + 5] !== 4
  ) {
    packet.info = "non-Ethernet/IPv4 ARP";
    return;
  }
  const op = view.getUint16(at + 6);
  const sender = formatIpv4(readIpv4(data, at + 14));
  const target = formatIpv4(readIpv4(data, at + 24));
  packet.src = sender;
  packet.dst = target;
  packet.info = op === 1
    ? `request who-has ${target} tell ${sender}`
    : op === 2
    ? `reply ${sender} is-at ${mac(data, at + 8)}`
    : `op ${op}`;
}

function decodeIpv4(data: Uint8Array, view: DataView, at: number, packet: DecodedPacket): void {
  packet.proto = "IP";
  if (data.length < at + 20) {
    packet.truncated = true;
    return;
  }
  const headerLength = (data[at] & 0x0f) * 4;
  const totalLength = view.getUint16(at + 2);
  packet.src = formatIpv4(readIpv4(data, at + 12));
  packet.dst = formatIpv4(readIpv4(data, at + 16));
  const protocol = data[at + 9];
  packet.ipProtocol = protocol;
  if ((data[at] >> 4) !== 4 || headerLength < 20 || totalLength < headerLength) {
    packet.truncated = true;
    packet.length = 0;
    return;
  }
  packet.length = totalLength - headerLength;
  if (view.getUint16(at + 6) & 0x1fff) {
    packet.fragment = true;
    packet.proto = protocolLabel(protocol, 4);
    return;
  }
  decodeTransport(data, view, at + headerLength, protocol, totalLength - headerLength, 4, packet);
}

function decodeIpv6(data: Uint8Array, view: DataView, at: number, packet: DecodedPacket): void {
  packet.proto = "IP6";
  if (data.length < at + 40) {
    packet.truncated = true;
    return;
  }
  packet.src = formatIpv6(data, at + 8);
  packet.dst = formatIpv6(data, at + 24);
  let remaining = view.getUint16(at + 4);
  let next = data[at + 6];
  let cursor = at + 40;
  for (let i = 0; i < 8 && IPV6_EXTENSIONS.has(next); i++) {
    if (data.length < cursor + 8) {
      packet.ipProtocol = next;
      packet.length = Math.max(0, remaining);
      packet.truncated = true;
      return;
    }
    let size: number;
    if (next === 44) {
      size = 8;
      if (view.getUint16(cursor + 2) & 0xfff8) packet.fragment = true;
    } else if (next === 51) {
      size = (data[cursor + 1] + 2) * 4;
    } else {
      size = (data[cursor + 1] + 1) * 8;
    }
    next = data[cursor];
    cursor += size;
    remaining -= size;
  }
  packet.ipProtocol = next;
  packet.length = Math.max(0, remaining);
  if (packet.fragment) {
    packet.proto = protocolLabel(next, 6);
    return;
  }
  decodeTransport(data, view, cursor, next, Math.max(0, remaining), 6, packet);
}

function protocolLabel(protocol: number, family: 4 | 6): string {
  switch (protocol) {
    case 6:
      return "TCP";
    case 17:
      return "UDP";
    case 132:
      return "SCTP";
    case 1:
      return family === 4 ? "ICMP" : "IP6";
    case 58:
      return family === 6 ? "ICMP6" : "IP";
    default:
      return family === 4 ? "IP" : "IP6";
  }
}

function decodeTransport(
  data: Uint8Array,
  view: DataView,
  at: number,
  protocol: number,
  payloadLength: number,
  family: 4 | 6,
  packet: DecodedPacket,
): void {
  packet.proto = protocolLabel(protocol, family);
  packet.length = payloadLength;
  switch (packet.proto) {
    case "TCP": {
      if (data.length < at + 4) break;
      packet.sport = view.getUint16(at);
      packet.dport = view.getUint16(at + 2);
      if (data.length < at + 16) break;
      packet.seq = view.getUint32(at + 4);
      const flags = data[at + 13];
      if (flags & 0x10) packet.ack = view.getUint32(at + 8);
      packet.tcpFlags = tcpFlagsText(flags);
      packet.window = view.getUint16(at + 14);
      packet.length = Math.max(0, payloadLength - (data[at + 12] >> 4) * 4);
      return;
    }
    case "UDP": {
      if (data.length < at + 8) break;
      packet.sport = view.getUint16(at);
      packet.dport = view.getUint16(at + 2);
      packet.length = Math.max(0, Math.min(view.getUint16(at + 4), payloadLength) - 8);
      return;
    }
    case "SCTP": {
      if (data.length < at + 4) break;
      packet.sport = view.getUint16(at);
      packet.dport = view.getUint16(at + 2);
      return;
    }
    case "ICMP":
    case "ICMP6": {
      if (data.length < at + 4) break;
      const type = data[at];
      const code = data[at + 1];
      packet.icmpType = type;
      packet.icmpCode = code;
      const names = packet.proto === "ICMP" ? ICMP4_NAMES : ICMP6_NAMES;
      let info = names[type] ?? `type ${type}, code ${code}`;
      const echo = packet.proto === "ICMP" ? type === 0 || type === 8 : type === 128 || type === 129;
      if (echo) {
        if (data.length < at + 8) break;
        info += `, id ${view.getUint16(at + 4)}, seq ${view.getUint16(at + 6)}`;
      } else if (packet.proto === "ICMP6" && (type === 135 || type === 136)) {
        if (data.length < at + 24) break;
        info += ` ${type === 135 ? "who has" : "tgt is"} ${formatIpv6(data, at + 8)}`;
      }
      packet.info = info;
      return;
    }
    default:
      return;
  }
  packet.truncated = true;
}

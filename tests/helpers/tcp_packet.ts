/**
 * Packetdrill-style helpers: craft TCP segments as IPv4 packets, parse what a layer emits into plain
 * objects, and a rig that drives one {@link TcpLayer} with a virtual clock, capturing its output with
 * timestamps.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Ipv4Datagram, Ipv4Sink } from "../../lib/iface/protocol.ts";
import type { TcpLayerOptions } from "../../lib/tcp/config.ts";
import { TcpLayer } from "../../lib/tcp/layer.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, Ipv4Packet, writeIpv4Header } from "../../lib/wire/ipv4.ts";
import { completeTxChecksum, GsoType, type TxOffload } from "../../lib/wire/offload.ts";
import {
  fillTcpChecksum,
  parseTcpOptions,
  TCP_HEADER_LENGTH,
  TcpFlags,
  TcpOptions,
  TcpSegment,
  writeMssOption,
  writeSackOption,
  writeSackPermittedOption,
  writeTcpHeader,
  writeTimestampsOption,
  writeWindowScaleOption,
} from "../../lib/wire/tcp.ts";
import { Prng } from "../../lib/prng.ts";

/** Options of a crafted segment. */
export interface OptionSpec {
  /** MSS option. */
  mss?: number;
  /** Window scale shift. */
  wscale?: number;
  /** SACK-permitted. */
  sackOk?: boolean;
  /** Timestamps [TSval, TSecr]. */
  ts?: [number, number];
  /** SACK blocks [[left, right], …]. */
  sack?: [number, number][];
}

/** A segment to craft; flags in packetdrill notation: letters F S R P then "." for ACK, e.g. "S.", "P.". */
export interface SegmentSpec {
  /** Source address. */
  src: number;
  /** Destination address. */
  dst: number;
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Flags, e.g. "S", "S.", ".", "P.", "F.", "R", "R.". */
  flags: string;
  /** Sequence number. */
  seq: number;
  /** Acknowledgment number. */
  ack?: number;
  /** Window field (unscaled as sent). */
  window?: number;
  /** Options. */
  options?: OptionSpec;
  /** Payload bytes, or a length of zero-filled... patterned bytes. */
  payload?: Uint8Array | number;
}

/** Parses packetdrill-style flags into bits. */
export function parseFlags(text: string): number {
  let f = 0;
  for (const ch of text) {
    if (ch === "F") f |= TcpFlags.FIN;
    else if (ch === "S") f |= TcpFlags.SYN;
    else if (ch === "R") f |= TcpFlags.RST;
    else if (ch === "P") f |= TcpFlags.PSH;
    else if (ch === ".") f |= TcpFlags.ACK;
    else if (ch === "U") f |= TcpFlags.URG;
    else throw new Error(`bad flag ${ch}`);
  }
  return f;
}

/** Formats flag bits in the notation of {@link parseFlags} (order F S R P U .). */
export function formatFlags(flags: number): string {
  let s = "";
  if (flags & TcpFlags.FIN) s += "F";
  if (flags & TcpFlags.SYN) s += "S";
  if (flags & TcpFlags.RST) s += "R";
  if (flags & TcpFlags.PSH) s += "P";
  if (flags & TcpFlags.URG) s += "U";
  if (flags & TcpFlags.ACK) s += ".";
  return s;
}

/** Crafts an IPv4 packet holding the described segment, with correct checksums. */
export function buildSegment(spec: SegmentSpec): Uint8Array {
  const payload = typeof spec.payload === "number"
    ? Uint8Array.from({ length: spec.payload }, (_, i) => (i * 7 + 3) & 0xff)
    : spec.payload ?? new Uint8Array(0);
  const buf = new Uint8Array(IPV4_HEADER_LENGTH + 60 + payload.length);
  const t = IPV4_HEADER_LENGTH;
  let o = t + TCP_HEADER_LENGTH;
  const opt = spec.options ?? {};
  if (opt.mss !== undefined) o = writeMssOption(buf, o, opt.mss);
  if (opt.sackOk) o = writeSackPermittedOption(buf, o);
  if (opt.ts) o = writeTimestampsOption(buf, o, opt.ts[0] >>> 0, opt.ts[1] >>> 0);
  if (opt.wscale !== undefined) o = writeWindowScaleOption(buf, o, opt.wscale);
  if (opt.sack) {
    const blocks = new Uint32Array(opt.sack.flat().map((x) => x >>> 0));
    o = writeSackOption(buf, o, blocks, opt.sack.length);
  }
  const optionsLength = o - t - TCP_HEADER_LENGTH;
  writeTcpHeader(
    buf,
    t,
    spec.srcPort,
    spec.dstPort,
    spec.seq >>> 0,
    (spec.ack ?? 0) >>> 0,
    parseFlags(spec.flags),
    spec.window ?? 65535,
    optionsLength,
  );
  buf.set(payload, o);
  const tcpLength = o - t + payload.length;
  fillTcpChecksum(buf, t, tcpLength, spec.src, spec.dst);
  writeIpv4Header(buf, 0, spec.src, spec.dst, IpProtocol.TCP, tcpLength);
  return buf.subarray(0, t + tcpLength);
}

/** An emitted segment as plain data. */
export interface ParsedSegment {
  /** When it was emitted (virtual ms). */
  time: number;
  /** Source address. */
  src: number;
  /** Destination address. */
  dst: number;
  /** Source port. */
  srcPort: number;
  /** Destination port. */
  dstPort: number;
  /** Flags in packetdrill notation. */
  flags: string;
  /** Sequence number. */
  seq: number;
  /** Acknowledgment number (0 without ACK). */
  ack: number;
  /** Window field as sent. */
  window: number;
  /** Payload. */
  payload: Uint8Array;
  /** MSS option or -1. */
  mss: number;
  /** Window scale or -1. */
  wscale: number;
  /** SACK-permitted. */
  sackOk: boolean;
  /** Timestamps or null. */
  ts: [number, number] | null;
  /** SACK blocks. */
  sack: [number, number][];
}

/** Parses an emitted IPv4+TCP packet, asserting both checksums. */
export function parseSegment(bytes: Uint8Array, time = 0): ParsedSegment {
  const ip = new Ipv4Packet(bytes);
  assert.equal(ip.check(), null, "emitted IPv4 header invalid");
  assert.equal(ip.protocol, IpProtocol.TCP);
  const seg = new TcpSegment().wrap(bytes, ip.headerLength, ip.totalLength);
  assert.equal(seg.check(ip.src, ip.dst), null, "emitted TCP segment invalid");
  const o = parseTcpOptions(seg.bytes, seg.optionsOffset, seg.payloadOffset, new TcpOptions());
  assert.equal(o.malformed, false, "emitted options malformed");
  const sack: [number, number][] = [];
  for (let k = 0; k < o.sackBlockCount; k++) sack.push([o.sackBlocks[2 * k], o.sackBlocks[2 * k + 1]]);
  return {
    time,
    src: ip.src,
    dst: ip.dst,
    srcPort: seg.srcPort,
    dstPort: seg.dstPort,
    flags: formatFlags(seg.flags),
    seq: seg.seq,
    ack: seg.ack,
    window: seg.window,
    payload: bytes.slice(seg.payloadOffset, seg.end),
    mss: o.mss,
    wscale: o.windowScale,
    sackOk: o.sackPermitted,
    ts: o.hasTimestamps ? [o.tsVal, o.tsEcr] : null,
    sack,
  };
}

/** Fields to assert on an emitted segment; `len` is the payload length. */
export type SegmentExpectation = Partial<Omit<ParsedSegment, "payload">> & { len?: number };

/** Asserts the given fields of `actual`. */
export function assertSegment(
  actual: ParsedSegment | undefined,
  expected: SegmentExpectation,
  what = "",
): void {
  assert.ok(actual !== undefined, `${what}: expected a segment, got none`);
  const view: Record<string, unknown> = { ...actual, len: actual.payload.length };
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(
      view[key],
      value,
      `${what}: field ${key} of ${JSON.stringify({ ...view, payload: undefined })}`,
    );
  }
}

/** The local (our stack) and remote (scripted peer) addresses of a {@link TcpRig}. */
export const RIG_LOCAL = 0x0a000001;
/** The scripted peer's address. */
export const RIG_REMOTE = 0x0a000002;

/** Drives one layer against a scripted peer with a virtual clock. */
export class TcpRig {
  /** Virtual time (ms). */
  now = 0;
  /** The layer under test. */
  readonly layer: TcpLayer;
  /** Segments emitted and not yet taken. */
  readonly output: ParsedSegment[] = [];
  #deadline: number | null = null;
  readonly #sink: Ipv4Sink;
  readonly #datagram: Ipv4Datagram = {
    src: 0,
    dst: 0,
    protocol: 6,
    ttl: 64,
    bytes: new Uint8Array(0),
    payloadOffset: 20,
    payloadEnd: 0,
  };

  /** Super-segments sent with a GSO size (only with `offloads`), as [payload length, gsoSize]. */
  readonly superSegments: [number, number][] = [];

  /**
   * Creates a rig with a fixed secret (deterministic ISNs). With `offloads`, the sink advertises
   * checksum and segmentation offload and {@link emulateOffload} turns what the layer sends into wire
   * segments before they are captured.
   */
  constructor(options: TcpLayerOptions = {}, offloads = false) {
    const prng = new Prng(12345);
    this.layer = new TcpLayer({
      secret: new Uint8Array(16).fill(7),
      random: () => prng.nextU32(),
      ...options,
    });
    this.#sink = offloads
      ? {
        offloads: true,
        sendIpv4: (p, offload = null) => {
          if (offload !== null && offload.gsoSize > 0) {
            this.superSegments.push([p.length - offload.headerLength, offload.gsoSize]);
          }
          for (const piece of emulateOffload(p, offload)) {
            this.output.push(
              parseSegment(piece, this.now),
            );
          }
        },
      }
      : { sendIpv4: (p) => this.output.push(parseSegment(p.slice(), this.now)) };
  }

  /** Delivers a crafted segment (defaults: remote → local) and polls. */
  inject(spec: Partial<SegmentSpec> & { flags: string; seq: number }): void {
    this.injectRaw(buildSegment({ src: RIG_REMOTE, dst: RIG_LOCAL, srcPort: 40000, dstPort: 80, ...spec }));
  }

  /** Delivers raw IPv4 bytes and polls. */
  injectRaw(bytes: Uint8Array): void {
    const ip = new Ipv4Packet(bytes);
    const d = this.#datagram;
    d.src = ip.src;
    d.dst = ip.dst;
    d.bytes = bytes;
    d.payloadOffset = ip.headerLength;
    d.payloadEnd = Math.min(ip.totalLength, bytes.length);
    this.layer.ingress(d, this.now, this.#sink);
    this.poll();
  }

  /** Polls now. */
  poll(): void {
    this.#deadline = this.layer.poll(this.now, this.#sink);
  }

  /** Advances time by `ms`, firing every deadline on the way at its exact time. */
  advance(ms: number): void {
    const target = this.now + ms;
    this.poll();
    while (this.#deadline !== null && this.#deadline <= target) {
      this.now = Math.max(this.now, this.#deadline);
      this.poll();
    }
    this.now = target;
    this.poll();
  }

  /** The next deadline the layer reported. */
  get deadline(): number | null {
    return this.#deadline;
  }

  /** Removes and returns all captured segments. */
  take(): ParsedSegment[] {
    return this.output.splice(0);
  }

  /** Asserts exactly one segment was emitted, checks it and returns it. */
  expectOne(expected: SegmentExpectation, what = ""): ParsedSegment {
    const got = this.take();
    assert.equal(
      got.length,
      1,
      `${what}: expected 1 segment, got ${got.length}: ${JSON.stringify(got.map(brief))}`,
    );
    assertSegment(got[0], expected, what);
    return got[0];
  }

  /** Asserts nothing was emitted. */
  expectNone(what = ""): void {
    const got = this.take();
    assert.equal(got.length, 0, `${what}: expected silence, got ${JSON.stringify(got.map(brief))}`);
  }
}

/** A one-line summary of a segment for messages. */
export function brief(s: ParsedSegment): string {
  return `${s.time}ms ${s.flags} seq=${s.seq} ack=${s.ack} win=${s.window} len=${s.payload.length}` +
    (s.sack.length ? ` sack=${JSON.stringify(s.sack)}` : "");
}

/**
 * Emulates what a segmentation-offloading device (or the kernel behind a TUN with virtio_net_hdr) does
 * with a packet sent with `offload`: completes a partial checksum and cuts a super-segment into segments
 * of `gsoSize` payload bytes (FIN and PSH only on the last), all from the descriptor's offsets. Returns
 * the wire packets.
 */
export function emulateOffload(packet: Uint8Array, offload: TxOffload | null): Uint8Array[] {
  if (offload === null) return [packet.slice()];
  const ipLength = offload.checksumStart;
  const headers = offload.headerLength;
  const tcpHeaderLength = headers - ipLength;
  const payload = packet.length - headers;
  const gsoSize = offload.gsoType === GsoType.TCPV4 ? offload.gsoSize : 0;
  const src = (packet[12] << 24 | packet[13] << 16 | packet[14] << 8 | packet[15]) >>> 0;
  const dst = (packet[16] << 24 | packet[17] << 16 | packet[18] << 8 | packet[19]) >>> 0;
  if (gsoSize <= 0 || payload <= gsoSize) {
    const copy = packet.slice();
    completeTxChecksum(copy, offload);
    return [copy];
  }
  const seq0 = (packet[ipLength + 4] << 24 | packet[ipLength + 5] << 16 | packet[ipLength + 6] << 8 |
    packet[ipLength + 7]) >>> 0;
  const flags = packet[ipLength + 13];
  const pieces: Uint8Array[] = [];
  for (let offset = 0; offset < payload; offset += gsoSize) {
    const n = Math.min(gsoSize, payload - offset);
    const last = offset + n === payload;
    const piece = new Uint8Array(headers + n);
    piece.set(packet.subarray(0, headers), 0);
    piece.set(packet.subarray(headers + offset, headers + offset + n), headers);
    const seq = (seq0 + offset) >>> 0;
    piece[ipLength + 4] = seq >>> 24;
    piece[ipLength + 5] = (seq >>> 16) & 0xff;
    piece[ipLength + 6] = (seq >>> 8) & 0xff;
    piece[ipLength + 7] = seq & 0xff;
    piece[ipLength + 13] = last ? flags : flags & ~(TcpFlags.FIN | TcpFlags.PSH);
    fillTcpChecksum(piece, ipLength, tcpHeaderLength + n, src, dst);
    writeIpv4Header(piece, 0, src, dst, IpProtocol.TCP, tcpHeaderLength + n);
    pieces.push(piece);
  }
  return pieces;
}

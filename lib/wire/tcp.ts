/**
 * TCP headers (RFC 9293 §3.1) and options (RFC 9293 §3.2, RFC 7323, RFC 2018): a reusable checked view
 * over received bytes, an options parser that never throws, and writers for outgoing headers.
 *
 * @module
 */

import { foldSum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum, sumWords } from "./checksum.ts";
import { IPV6_DST_OFFSET, IPV6_SRC_OFFSET, NextHeader } from "./ipv6.ts";
import { IpProtocol } from "./ipv4.ts";

/** Length of a header without options. */
export const TCP_HEADER_LENGTH = 20;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let wordsBuffer: ArrayBufferLike | null = null;
let wordsView: Uint32Array = new Uint32Array(0);

/** A cached 32-bit view of `buffer` (segments of one packet buffer reuse it, so this rarely allocates). */
function wordsOf(buffer: ArrayBufferLike): Uint32Array {
  if (buffer !== wordsBuffer) {
    wordsBuffer = buffer;
    wordsView = new Uint32Array(buffer, 0, buffer.byteLength >>> 2);
  }
  return wordsView;
}

/**
 * The same unfolded-equivalent sum as {@link sumWords} (big-endian 16-bit words of `data[start..end)`
 * plus `initial`), computed four bytes per load: ones' complement addition is byte-order independent
 * (RFC 1071 §2(B)), so little-endian 32-bit words are summed, folded and byte-swapped. Falls back to
 * {@link sumWords} for short or oddly aligned ranges. The result folds to the same 16 bits.
 */
export function sumWordsWide(data: Uint8Array, start: number, end: number, initial = 0): number {
  const absolute = data.byteOffset + start;
  if (!LITTLE_ENDIAN || (absolute & 1) !== 0 || end - start < 64) return sumWords(data, start, end, initial);
  let sum = initial;
  let i = start;
  if ((absolute & 2) !== 0) {
    sum += (data[i] << 8) | data[i + 1];
    i += 2;
  }
  const words = wordsOf(data.buffer);
  let k = (data.byteOffset + i) >>> 2;
  const wordsEnd = k + ((end - i) >>> 2);
  let le = 0;
  for (; k + 4 <= wordsEnd; k += 4) le += words[k] + words[k + 1] + words[k + 2] + words[k + 3];
  for (; k < wordsEnd; k++) le += words[k];
  i = (wordsEnd << 2) - data.byteOffset;
  le = foldSum(le);
  sum += ((le & 0xff) << 8) | (le >>> 8);
  if (i < end) sum = sumWords(data, i, end, sum);
  return sum;
}
/** Largest header: data offset 15 words. */
export const TCP_MAX_HEADER_LENGTH = 60;

/** Control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR). */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** Why received bytes are not a well-formed TCP segment; each reason is a drop counter. */
export type TcpWireError = "truncated" | "bad-offset" | "bad-checksum";

/**
 * A reusable view of a TCP segment inside a larger buffer (normally an IPv4 packet).
 * {@link TcpSegment.wrap} re-points it without allocating; {@link TcpSegment.check} must pass before
 * the other accessors are trusted.
 */
export class TcpSegment {
  /** The underlying bytes. */
  bytes: Uint8Array = new Uint8Array(0);
  /** Offset of the TCP header in {@link bytes}. */
  offset = 0;
  /** End of the segment (header + payload) in {@link bytes}. */
  end = 0;

  /** Points the view at `bytes[offset..end)` and returns it. */
  wrap(bytes: Uint8Array, offset = 0, end: number = bytes.length): this {
    this.bytes = bytes;
    this.offset = offset;
    this.end = end;
    return this;
  }

  /**
   * Validates length, data offset and (when `verifyChecksum`) the checksum over the IPv4 pseudo-header
   * (RFC 9293 §3.1). Returns `null` when valid.
   */
  check(src: number, dst: number, verifyChecksum = true): TcpWireError | null {
    const length = this.end - this.offset;
    if (length < TCP_HEADER_LENGTH || this.end > this.bytes.length) return "truncated";
    const headerLength = (this.bytes[this.offset + 12] >> 4) * 4;
    if (headerLength < TCP_HEADER_LENGTH) return "bad-offset";
    if (headerLength > length) return "bad-offset";
    if (verifyChecksum) {
      const pseudo = ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, length);
      if ((~foldSum(sumWordsWide(this.bytes, this.offset, this.end, pseudo)) & 0xffff) !== 0) {
        return "bad-checksum";
      }
    }
    return null;
  }

  /**
   * Validates like {@link TcpSegment.check} for a segment carried by IPv6: `packet` holds the IPv6 header
   * whose addresses enter the pseudo-header (RFC 8200 §8.1).
   */
  checkIpv6(packet: Uint8Array, verifyChecksum = true): TcpWireError | null {
    const length = this.end - this.offset;
    if (length < TCP_HEADER_LENGTH || this.end > this.bytes.length) return "truncated";
    const headerLength = (this.bytes[this.offset + 12] >> 4) * 4;
    if (headerLength < TCP_HEADER_LENGTH || headerLength > length) return "bad-offset";
    if (verifyChecksum) {
      const pseudo = ipv6PseudoHeaderSum(packet, IPV6_SRC_OFFSET, IPV6_DST_OFFSET, NextHeader.TCP, length);
      if ((~foldSum(sumWordsWide(this.bytes, this.offset, this.end, pseudo)) & 0xffff) !== 0) {
        return "bad-checksum";
      }
    }
    return null;
  }

  /** Source port. */
  get srcPort(): number {
    return (this.bytes[this.offset] << 8) | this.bytes[this.offset + 1];
  }
  /** Destination port. */
  get dstPort(): number {
    return (this.bytes[this.offset + 2] << 8) | this.bytes[this.offset + 3];
  }
  /** Sequence number (unsigned). */
  get seq(): number {
    const b = this.bytes, o = this.offset + 4;
    return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }
  /** Acknowledgment number (unsigned; meaningful only with ACK). */
  get ack(): number {
    const b = this.bytes, o = this.offset + 8;
    return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  }
  /** Header length in bytes, options included. */
  get headerLength(): number {
    return (this.bytes[this.offset + 12] >> 4) * 4;
  }
  /** The control bits, see {@link TcpFlags}. */
  get flags(): number {
    return this.bytes[this.offset + 13];
  }
  /** Window field as received (not scaled). */
  get window(): number {
    return (this.bytes[this.offset + 14] << 8) | this.bytes[this.offset + 15];
  }
  /** Checksum field as received. */
  get checksum(): number {
    return (this.bytes[this.offset + 16] << 8) | this.bytes[this.offset + 17];
  }
  /** Urgent pointer field. */
  get urgentPointer(): number {
    return (this.bytes[this.offset + 18] << 8) | this.bytes[this.offset + 19];
  }
  /** Offset of the options in {@link bytes}. */
  get optionsOffset(): number {
    return this.offset + TCP_HEADER_LENGTH;
  }
  /** Offset of the payload in {@link bytes}. */
  get payloadOffset(): number {
    return this.offset + this.headerLength;
  }
  /** Payload length in bytes. */
  get payloadLength(): number {
    return this.end - this.offset - this.headerLength;
  }
  /** Sequence space the segment occupies: payload plus one each for SYN and FIN (RFC 9293 §3.4). */
  get sequenceLength(): number {
    const f = this.flags;
    return this.payloadLength + (f & TcpFlags.SYN ? 1 : 0) + (f & TcpFlags.FIN ? 1 : 0);
  }
}

/** Most SACK blocks an option can carry (40 option bytes: 2 + 4 × 8). */
export const MAX_SACK_BLOCKS = 4;

/**
 * Options of one received segment, filled by {@link parseTcpOptions}. Reused per packet; absent options
 * are `-1`/`false`.
 */
export class TcpOptions {
  /** Maximum segment size (RFC 9293 §3.7.1), or -1. */
  mss: number = -1;
  /** Window scale shift (RFC 7323 §2), clamped to 14, or -1. */
  windowScale: number = -1;
  /** SACK-permitted seen (RFC 2018 §2). */
  sackPermitted = false;
  /** Timestamps option seen (RFC 7323 §3). */
  hasTimestamps = false;
  /** TSval when {@link hasTimestamps}. */
  tsVal = 0;
  /** TSecr when {@link hasTimestamps}. */
  tsEcr = 0;
  /** Number of SACK blocks in {@link sackBlocks}. */
  sackBlockCount = 0;
  /** SACK blocks as [left0, right0, left1, right1, …] (RFC 2018 §3). */
  readonly sackBlocks: Uint32Array = new Uint32Array(MAX_SACK_BLOCKS * 2);
  /** Whether the option list was malformed (parsing stopped there; earlier options are kept). */
  malformed = false;

  /** Clears all fields. */
  reset(): void {
    this.mss = -1;
    this.windowScale = -1;
    this.sackPermitted = false;
    this.hasTimestamps = false;
    this.tsVal = 0;
    this.tsEcr = 0;
    this.sackBlockCount = 0;
    this.malformed = false;
  }
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Parses the options in `bytes[start..end)` into `into` (reset first). Never throws: a malformed option
 * (length < 2 or running past the end) stops parsing and sets `malformed`; options with a wrong fixed
 * length are ignored (RFC 9293 §3.2: a TCP implementation must be prepared to handle illegal lengths).
 */
export function parseTcpOptions(bytes: Uint8Array, start: number, end: number, into: TcpOptions): TcpOptions {
  into.reset();
  let i = start;
  while (i < end) {
    const kind = bytes[i];
    if (kind === TcpOptionKind.END) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) {
      into.malformed = true;
      break;
    }
    const length = bytes[i + 1];
    if (length < 2 || i + length > end) {
      into.malformed = true;
      break;
    }
    switch (kind) {
      case TcpOptionKind.MSS:
        if (length === 4) into.mss = (bytes[i + 2] << 8) | bytes[i + 3];
        break;
      case TcpOptionKind.WINDOW_SCALE:
        // RFC 7323 §2.3: a shift above 14 is treated as 14.
        if (length === 3) into.windowScale = Math.min(bytes[i + 2], 14);
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (length === 2) into.sackPermitted = true;
        break;
      case TcpOptionKind.SACK: {
        const n = (length - 2) >> 3;
        if ((length - 2) % 8 === 0 && n >= 1 && n <= MAX_SACK_BLOCKS) {
          for (let k = 0; k < n; k++) {
            into.sackBlocks[2 * k] = readU32(bytes, i + 2 + 8 * k);
            into.sackBlocks[2 * k + 1] = readU32(bytes, i + 6 + 8 * k);
          }
          into.sackBlockCount = n;
        }
        break;
      }
      case TcpOptionKind.TIMESTAMPS:
        if (length === 10) {
          into.hasTimestamps = true;
          into.tsVal = readU32(bytes, i + 2);
          into.tsEcr = readU32(bytes, i + 6);
        }
        break;
    }
    i += length;
  }
  return into;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * Writes the fixed 20-byte header at `buf[offset..]` with the data offset covering `optionsLength`
 * bytes of options (a multiple of 4, written separately) and a zero checksum.
 */
export function writeTcpHeader(
  buf: Uint8Array,
  offset: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number,
  optionsLength = 0,
): void {
  buf[offset] = srcPort >> 8;
  buf[offset + 1] = srcPort & 0xff;
  buf[offset + 2] = dstPort >> 8;
  buf[offset + 3] = dstPort & 0xff;
  writeU32(buf, offset + 4, seq);
  writeU32(buf, offset + 8, ack);
  buf[offset + 12] = ((TCP_HEADER_LENGTH + optionsLength) >> 2) << 4;
  buf[offset + 13] = flags;
  buf[offset + 14] = (window >> 8) & 0xff;
  buf[offset + 15] = window & 0xff;
  buf[offset + 16] = 0;
  buf[offset + 17] = 0;
  buf[offset + 18] = 0;
  buf[offset + 19] = 0;
}

/** Writes an MSS option (4 bytes) and returns the offset after it. */
export function writeMssOption(buf: Uint8Array, offset: number, mss: number): number {
  buf[offset] = TcpOptionKind.MSS;
  buf[offset + 1] = 4;
  buf[offset + 2] = mss >> 8;
  buf[offset + 3] = mss & 0xff;
  return offset + 4;
}

/** Writes NOP + window scale (4 bytes) and returns the offset after it. */
export function writeWindowScaleOption(buf: Uint8Array, offset: number, shift: number): number {
  buf[offset] = TcpOptionKind.NOP;
  buf[offset + 1] = TcpOptionKind.WINDOW_SCALE;
  buf[offset + 2] = 3;
  buf[offset + 3] = shift;
  return offset + 4;
}

/** Writes NOP NOP SACK-permitted (4 bytes) and returns the offset after it. */
export function writeSackPermittedOption(buf: Uint8Array, offset: number): number {
  buf[offset] = TcpOptionKind.NOP;
  buf[offset + 1] = TcpOptionKind.NOP;
  buf[offset + 2] = TcpOptionKind.SACK_PERMITTED;
  buf[offset + 3] = 2;
  return offset + 4;
}

/** Writes NOP NOP timestamps (12 bytes, RFC 7323 Appendix A layout) and returns the offset after it. */
export function writeTimestampsOption(buf: Uint8Array, offset: number, tsVal: number, tsEcr: number): number {
  buf[offset] = TcpOptionKind.NOP;
  buf[offset + 1] = TcpOptionKind.NOP;
  buf[offset + 2] = TcpOptionKind.TIMESTAMPS;
  buf[offset + 3] = 10;
  writeU32(buf, offset + 4, tsVal);
  writeU32(buf, offset + 8, tsEcr);
  return offset + 12;
}

/**
 * Writes NOP NOP SACK with `count` blocks from `blocks` ([left, right, …]) and returns the offset after
 * it (4 + 8 × count bytes).
 */
export function writeSackOption(buf: Uint8Array, offset: number, blocks: Uint32Array, count: number): number {
  buf[offset] = TcpOptionKind.NOP;
  buf[offset + 1] = TcpOptionKind.NOP;
  buf[offset + 2] = TcpOptionKind.SACK;
  buf[offset + 3] = 2 + 8 * count;
  for (let k = 0; k < count; k++) {
    writeU32(buf, offset + 4 + 8 * k, blocks[2 * k]);
    writeU32(buf, offset + 8 + 8 * k, blocks[2 * k + 1]);
  }
  return offset + 4 + 8 * count;
}

/**
 * Computes and stores the checksum of the segment at `buf[offset..offset+length)` (header with a zero
 * checksum field, then payload) for the IPv4 pseudo-header of `src`→`dst`.
 */
export function fillTcpChecksum(
  buf: Uint8Array,
  offset: number,
  length: number,
  src: number,
  dst: number,
): void {
  buf[offset + 16] = 0;
  buf[offset + 17] = 0;
  const pseudo = ipv4PseudoHeaderSum(src, dst, IpProtocol.TCP, length);
  const checksum = ~foldSum(sumWordsWide(buf, offset, offset + length, pseudo)) & 0xffff;
  buf[offset + 16] = checksum >> 8;
  buf[offset + 17] = checksum & 0xff;
}

/**
 * Computes and stores the checksum of the segment at `buf[offset..offset+length)` inside an IPv6 packet
 * whose header (addresses written) starts at `ipOffset` (RFC 8200 §8.1 pseudo-header).
 */
export function fillTcpChecksumIpv6(buf: Uint8Array, offset: number, length: number, ipOffset: number): void {
  buf[offset + 16] = 0;
  buf[offset + 17] = 0;
  const pseudo = tcpIpv6PseudoSum(buf, ipOffset, length);
  const checksum = ~foldSum(sumWordsWide(buf, offset, offset + length, pseudo)) & 0xffff;
  buf[offset + 16] = checksum >> 8;
  buf[offset + 17] = checksum & 0xff;
}

/** The unfolded IPv6 pseudo-header sum of a TCP segment of `length` bytes in the packet at `ipOffset`. */
export function tcpIpv6PseudoSum(buf: Uint8Array, ipOffset: number, length: number): number {
  return ipv6PseudoHeaderSum(
    buf,
    ipOffset + IPV6_SRC_OFFSET,
    ipOffset + IPV6_DST_OFFSET,
    NextHeader.TCP,
    length,
  );
}

/** The unfolded sum of a segment's bytes, for callers combining partial sums (e.g. checksum offload). */
export function tcpSegmentSum(buf: Uint8Array, offset: number, length: number): number {
  return sumWords(buf, offset, offset + length);
}

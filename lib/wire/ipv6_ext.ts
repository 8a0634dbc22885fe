/**
 * The IPv6 extension-header chain (RFC 8200 §4): a bounded walk from the fixed header to the upper-layer
 * header, processing Hop-by-Hop and Destination options, refusing routing, and finding the Fragment header.
 *
 * Decisions, with their sources:
 * - Hop-by-Hop Options only right after the fixed header (RFC 8200 §4.1); elsewhere it is an unrecognised
 *   Next Header (Parameter Problem code 1), as Linux answers too.
 * - Options are TLVs processed in order; an unrecognised option is handled by its two high-order bits
 *   (RFC 8200 §4.2): 00 skip, 01 discard, 10 discard and send Parameter Problem code 2, 11 the same unless
 *   the destination was multicast. An option running past its header is a malformed header (code 0).
 * - Bounds (RFC 8504 §5.3 lets a node limit what it processes, and Linux does): at most
 *   {@link MAX_EXTENSION_HEADERS} headers, {@link MAX_OPTIONS_PER_HEADER} non-padding options per header,
 *   and no more than 7 bytes of padding in a row. The walk always advances, so a chain cannot loop; a second
 *   Fragment header is refused rather than reassembled again.
 * - A Routing header with Segments Left 0 is skipped; with segments left it would have to be forwarded,
 *   which a host does not do for any type it knows (type 0 is deprecated by RFC 5095), so it is answered as
 *   an unrecognised routing type (code 0, pointer at the type, RFC 8200 §4.4).
 * - A first fragment must hold the whole chain up to the upper-layer header (RFC 7112 §5, code 3). Headers
 *   after a Fragment header belong to the fragmentable part: they are walked only for that check, and their
 *   options are processed after reassembly.
 * - ESP and AH are returned as upper-layer protocols (the stack implements neither, so they are refused
 *   with code 1 like any unknown protocol).
 *
 * @module
 */

import { IPV6_DST_OFFSET, IPV6_HEADER_LENGTH, NextHeader } from "./ipv6.ts";

/** At most this many extension headers are walked before the packet is dropped. */
export const MAX_EXTENSION_HEADERS = 8;
/** At most this many non-padding options in one Hop-by-Hop or Destination Options header. */
export const MAX_OPTIONS_PER_HEADER = 8;
/** Padding bytes allowed in a row inside an options header (Linux's limit; RFC 8200 pads to 8 at most). */
export const MAX_PADDING_RUN = 7;

/** Codes of ICMPv6 Parameter Problem (RFC 4443 §3.4, RFC 7112 §5). */
export const ParameterProblemCode = {
  ERRONEOUS_HEADER_FIELD: 0,
  UNRECOGNIZED_NEXT_HEADER: 1,
  UNRECOGNIZED_OPTION: 2,
  INCOMPLETE_HEADER_CHAIN: 3,
} as const;

/** Option types netstack recognises (RFC 8200 §4.2, RFC 2711). */
export const Ipv6Option = {
  PAD1: 0,
  PADN: 1,
  ROUTER_ALERT: 5,
} as const;

/** Why a chain is refused; each reason is a drop counter. */
export type Ipv6ChainError =
  | "truncated-extension-header"
  | "hop-by-hop-not-first"
  | "too-many-extension-headers"
  | "bad-option-length"
  | "too-many-options"
  | "excessive-padding"
  | "unrecognized-option"
  | "routing-header"
  | "nested-fragment"
  | "incomplete-header-chain";

/**
 * The result of walking one packet's chain; reused for every packet (no allocation per walk).
 * After a successful {@link Ipv6HeaderChain.walk}, `upperProtocol`/`upperOffset` name the upper layer; for a
 * fragment with a non-zero offset they name the fragment's Next Header and the start of its data.
 */
export class Ipv6HeaderChain {
  /** Why the walk failed, or `null`. */
  error: Ipv6ChainError | null = null;
  /** Parameter Problem code to send for the failure, or -1 for a silent drop. */
  icmpCode = -1;
  /** Parameter Problem pointer: offset of the offending byte from the start of the IPv6 header. */
  icmpPointer = 0;
  /** Upper-layer protocol (TCP, UDP, ICMPv6, 59 for none, or anything unknown). */
  upperProtocol = 0;
  /** Offset of the upper-layer header in the packet. */
  upperOffset = 0;
  /** Offset of the byte holding the Next Header value that named the upper layer. */
  upperNextHeaderField = 6;
  /** Offset of the Fragment header, or -1 when the packet is no fragment. */
  fragmentHeader = -1;
  /** Offset of the byte holding the Next Header value that named the Fragment header. */
  fragmentNextHeaderField = 6;
  /** Fragment offset in bytes (valid when `fragmentHeader >= 0`). */
  fragmentOffset = 0;
  /** The M flag of the Fragment header. */
  moreFragments = false;
  /** Fragment identification. */
  identification = 0;
  /** The Router Alert value in the Hop-by-Hop header (RFC 2711; 0 = MLD), or -1 when absent. */
  routerAlert = -1;
  /** Extension headers walked. */
  headerCount = 0;

  /** Whether the packet is an atomic fragment (a Fragment header with offset 0 and M clear, RFC 6946). */
  get atomicFragment(): boolean {
    return this.fragmentHeader >= 0 && this.fragmentOffset === 0 && !this.moreFragments;
  }

  /**
   * Walks the chain of the checked IPv6 packet `bytes[0..end)`. Returns true when the upper layer was
   * reached; on false, `error` (and `icmpCode`/`icmpPointer` when an error message is due) say why.
   */
  walk(bytes: Uint8Array, end: number): boolean {
    this.error = null;
    this.icmpCode = -1;
    this.fragmentHeader = -1;
    this.fragmentNextHeaderField = 6;
    this.fragmentOffset = 0;
    this.moreFragments = false;
    this.routerAlert = -1;
    this.headerCount = 0;
    const multicastDst = bytes[IPV6_DST_OFFSET] === 0xff;
    let next = bytes[6];
    let field = 6;
    let offset = IPV6_HEADER_LENGTH;
    // Inside the fragmentable part of a first fragment: walk for the RFC 7112 check only.
    let structural = false;
    while (true) {
      let length: number;
      switch (next) {
        case NextHeader.HOP_BY_HOP:
        case NextHeader.DESTINATION_OPTIONS: {
          if (next === NextHeader.HOP_BY_HOP && offset !== IPV6_HEADER_LENGTH) {
            return this.#fail("hop-by-hop-not-first", ParameterProblemCode.UNRECOGNIZED_NEXT_HEADER, field);
          }
          if (offset + 2 > end) return this.#truncated(structural);
          length = (bytes[offset + 1] + 1) * 8;
          if (offset + length > end) return this.#truncated(structural);
          if (!structural) {
            const hbh = next === NextHeader.HOP_BY_HOP;
            if (!this.#options(bytes, offset + 2, offset + length, hbh, multicastDst)) return false;
          }
          break;
        }
        case NextHeader.ROUTING: {
          if (offset + 4 > end) return this.#truncated(structural);
          length = (bytes[offset + 1] + 1) * 8;
          if (offset + length > end) return this.#truncated(structural);
          if (!structural && bytes[offset + 3] !== 0) {
            return this.#fail("routing-header", ParameterProblemCode.ERRONEOUS_HEADER_FIELD, offset + 2);
          }
          break;
        }
        case NextHeader.FRAGMENT: {
          if (offset + 8 > end) return this.#truncated(structural);
          if (this.fragmentHeader >= 0) return this.#fail("nested-fragment", -1, 0);
          length = 8;
          this.fragmentHeader = offset;
          this.fragmentNextHeaderField = field;
          this.fragmentOffset = (bytes[offset + 2] << 8) | (bytes[offset + 3] & 0xf8);
          this.moreFragments = (bytes[offset + 3] & 1) !== 0;
          this.identification = ((bytes[offset + 4] << 24) | (bytes[offset + 5] << 16) |
            (bytes[offset + 6] << 8) | bytes[offset + 7]) >>> 0;
          if (this.fragmentOffset !== 0) {
            // A later fragment: its data is opaque until reassembly.
            this.upperProtocol = bytes[offset];
            this.upperOffset = offset + 8;
            this.upperNextHeaderField = offset;
            return true;
          }
          if (this.moreFragments) structural = true;
          break;
        }
        default:
          if (structural && next !== NextHeader.NO_NEXT_HEADER && offset + upperHeaderMinimum(next) > end) {
            return this.#truncated(true);
          }
          this.upperProtocol = next;
          this.upperOffset = offset;
          this.upperNextHeaderField = field;
          return true;
      }
      this.headerCount++;
      if (this.headerCount > MAX_EXTENSION_HEADERS) return this.#fail("too-many-extension-headers", -1, 0);
      field = offset;
      next = bytes[offset];
      offset += length;
    }
  }

  #truncated(inFirstFragment: boolean): boolean {
    // RFC 7112 §5: a first fragment without the whole chain is answered with code 3 (pointer 0).
    return inFirstFragment
      ? this.#fail("incomplete-header-chain", ParameterProblemCode.INCOMPLETE_HEADER_CHAIN, 0)
      : this.#fail("truncated-extension-header", -1, 0);
  }

  #fail(error: Ipv6ChainError, code: number, pointer: number): boolean {
    this.error = error;
    this.icmpCode = code;
    this.icmpPointer = pointer;
    return false;
  }

  /** Processes the TLV options in `bytes[start..stop)` (RFC 8200 §4.2). */
  #options(bytes: Uint8Array, start: number, stop: number, hbh: boolean, multicastDst: boolean): boolean {
    let options = 0;
    let padding = 0;
    let i = start;
    while (i < stop) {
      const type = bytes[i];
      if (type === Ipv6Option.PAD1) {
        if (++padding > MAX_PADDING_RUN) return this.#fail("excessive-padding", -1, 0);
        i++;
        continue;
      }
      if (i + 2 > stop) {
        return this.#fail("bad-option-length", ParameterProblemCode.ERRONEOUS_HEADER_FIELD, i);
      }
      const length = bytes[i + 1];
      if (i + 2 + length > stop) {
        return this.#fail("bad-option-length", ParameterProblemCode.ERRONEOUS_HEADER_FIELD, i + 1);
      }
      if (type === Ipv6Option.PADN) {
        padding += 2 + length;
        if (padding > MAX_PADDING_RUN) return this.#fail("excessive-padding", -1, 0);
        i += 2 + length;
        continue;
      }
      padding = 0;
      if (++options > MAX_OPTIONS_PER_HEADER) return this.#fail("too-many-options", -1, 0);
      if (hbh && type === Ipv6Option.ROUTER_ALERT && length === 2) {
        this.routerAlert = (bytes[i + 2] << 8) | bytes[i + 3];
      } else {
        switch (type >> 6) {
          case 0: // skip over this option and continue processing the header
            break;
          case 1: // discard the packet
            return this.#fail("unrecognized-option", -1, 0);
          case 2: // discard and send Parameter Problem code 2, even to a multicast destination
            return this.#fail("unrecognized-option", ParameterProblemCode.UNRECOGNIZED_OPTION, i);
          default: // discard and send Parameter Problem only if the destination was not multicast
            return this.#fail(
              "unrecognized-option",
              multicastDst ? -1 : ParameterProblemCode.UNRECOGNIZED_OPTION,
              i,
            );
        }
      }
      i += 2 + length;
    }
    return true;
  }
}

/** The fixed part of an upper-layer header a first fragment must hold (RFC 7112 §5). */
function upperHeaderMinimum(protocol: number): number {
  return protocol === NextHeader.TCP
    ? 20
    : protocol === NextHeader.UDP
    ? 8
    : protocol === NextHeader.ICMPV6
    ? 4
    : 1;
}

/**
 * Writes a Fragment header (RFC 8200 §4.5) at `buf[offset..offset+8)`: `fragmentOffset` in bytes (a
 * multiple of 8), the M flag, and the identification.
 */
export function writeFragmentHeader(
  buf: Uint8Array,
  offset: number,
  nextHeader: number,
  fragmentOffset: number,
  moreFragments: boolean,
  identification: number,
): void {
  buf[offset] = nextHeader;
  buf[offset + 1] = 0;
  buf[offset + 2] = fragmentOffset >> 8;
  buf[offset + 3] = (fragmentOffset & 0xf8) | (moreFragments ? 1 : 0);
  buf[offset + 4] = identification >>> 24;
  buf[offset + 5] = (identification >>> 16) & 0xff;
  buf[offset + 6] = (identification >>> 8) & 0xff;
  buf[offset + 7] = identification & 0xff;
}

/**
 * Writes a Hop-by-Hop Options header holding a Router Alert option (RFC 2711) with `value` (0: MLD, as
 * RFC 3810 §5 requires on every MLDv2 message) and returns its length (8).
 */
export function writeRouterAlertHeader(
  buf: Uint8Array,
  offset: number,
  nextHeader: number,
  value = 0,
): number {
  buf[offset] = nextHeader;
  buf[offset + 1] = 0; // 8 bytes in all
  buf[offset + 2] = Ipv6Option.ROUTER_ALERT;
  buf[offset + 3] = 2;
  buf[offset + 4] = value >> 8;
  buf[offset + 5] = value & 0xff;
  buf[offset + 6] = Ipv6Option.PADN;
  buf[offset + 7] = 0;
  return 8;
}

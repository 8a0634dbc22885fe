/**
 * IPv6 fragment reassembly (RFC 8200 §4.5) and fragmentation on send, sans-I/O and bounded like IPv4's
 * (`ipv4_reassembly.ts`): at most `maxDatagrams` in progress and `maxBytes` buffered; a datagram not
 * complete `timeoutMs` (RFC 8200: 60 s) after its first fragment arrived is dropped, and when its first
 * fragment was among those received, Time Exceeded (code 1) is due. Overlapping fragments drop the whole
 * datagram (RFC 5722 §4). Atomic fragments (offset 0, M clear) never get here: they are processed in
 * isolation (RFC 6946 §4).
 *
 * @module
 */

import { IPV6_HEADER_LENGTH } from "../wire/ipv6.ts";
import { type Ipv6HeaderChain, ParameterProblemCode, writeFragmentHeader } from "../wire/ipv6_ext.ts";
import type { DropCounters } from "./stats.ts";
import type { ReassemblyOptions } from "./ipv4_reassembly.ts";

interface PartialDatagram {
  /** Fragmentable-part bytes by offset; grows as fragments arrive. */
  payload: Uint8Array;
  /** Received [start, end) ranges, sorted and disjoint. */
  ranges: number[];
  /** Fragmentable-part length, known once the last fragment (M clear) arrived; -1 before. */
  total: number;
  /** The first fragment (offset 0) as received, or null until it arrives: its unfragmentable part is kept. */
  first: Uint8Array | null;
  /** Offset of the Fragment header in `first`, and of the Next Header byte naming it. */
  fragmentHeader: number;
  nextHeaderField: number;
  /** The fragments' Next Header (the fragmentable part's first header). */
  nextHeader: number;
  /** When the datagram is given up. */
  deadline: number;
}

/** Reassembles fragmented IPv6 packets; see the module comment for the rules. */
export class Ipv6Reassembler {
  /**
   * After {@link Ipv6Reassembler.add} returned `null`: a Parameter Problem to send (RFC 8200 §4.5), as
   * `[code, pointer]`, or `null` for none.
   */
  problem: [number, number] | null = null;
  readonly #partial = new Map<string, PartialDatagram>();
  readonly #maxDatagrams: number;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #drops: DropCounters;
  #bytes = 0;

  /** Creates a reassembler counting its drops in `drops`; the timeout defaults to 60 s (RFC 8200 §4.5). */
  constructor(drops: DropCounters, options: ReassemblyOptions = {}) {
    this.#drops = drops;
    this.#maxDatagrams = options.maxDatagrams ?? 64;
    this.#maxBytes = options.maxBytes ?? 4 << 20;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** Datagrams in progress. */
  get pending(): number {
    return this.#partial.size;
  }

  /** Bytes buffered. */
  get bufferedBytes(): number {
    return this.#bytes;
  }

  /**
   * Adds the fragment `packet[0..end)` whose chain `chain` walked (a Fragment header with a non-zero offset
   * or the M flag). Returns the reassembled packet (fresh bytes: the first fragment's unfragmentable part,
   * its Fragment header removed, payload length updated) once complete, else `null`.
   */
  add(packet: Uint8Array, end: number, chain: Ipv6HeaderChain, now: number): Uint8Array | null {
    this.problem = null;
    const fragmentHeader = chain.fragmentHeader;
    const dataStart = fragmentHeader + 8;
    const offset = chain.fragmentOffset;
    const length = end - dataStart;
    const fragmentEnd = offset + length;
    const last = !chain.moreFragments;
    if (!last && (length & 7) !== 0) {
      // RFC 8200 §4.5: not a multiple of 8 with M set → Parameter Problem code 0 at the Payload Length.
      this.problem = [ParameterProblemCode.ERRONEOUS_HEADER_FIELD, 4];
      this.#drops.count("bad-fragment");
      return null;
    }
    if (fragmentHeader - IPV6_HEADER_LENGTH + fragmentEnd > 65535) {
      // RFC 8200 §4.5: the reassembled packet would exceed 65535 bytes → pointer at the Fragment Offset.
      this.problem = [ParameterProblemCode.ERRONEOUS_HEADER_FIELD, fragmentHeader + 2];
      this.#drops.count("bad-fragment");
      return null;
    }
    if (length === 0) {
      this.#drops.count("bad-fragment");
      return null;
    }
    const key = fragmentKey(packet, chain.identification);
    let partial = this.#partial.get(key);
    if (partial === undefined) {
      if (this.#partial.size >= this.#maxDatagrams) this.#evictOldest();
      partial = {
        payload: new Uint8Array(0),
        ranges: [],
        total: -1,
        first: null,
        fragmentHeader: 0,
        nextHeaderField: 0,
        nextHeader: packet[fragmentHeader],
        deadline: now + this.#timeoutMs,
      };
      this.#partial.set(key, partial);
    }
    if (
      (last && partial.total !== -1 && partial.total !== fragmentEnd) ||
      (partial.total !== -1 && fragmentEnd > partial.total) || (last && fragmentEnd < maxEnd(partial.ranges))
    ) {
      this.#discard(key, partial, "bad-fragment");
      return null;
    }
    if (overlaps(partial.ranges, offset, fragmentEnd)) {
      // RFC 5722 §4: silently discard the whole datagram, and the fragments still to come are dropped too
      // (they start a new reassembly that times out).
      this.#discard(key, partial, "fragment-overlap");
      return null;
    }
    if (fragmentEnd > partial.payload.length) {
      const grown = new Uint8Array(Math.max(fragmentEnd, Math.min(65535, partial.payload.length * 2)));
      const added = grown.length - partial.payload.length;
      if (this.#bytes + added > this.#maxBytes) {
        this.#discard(key, partial, "reassembly-memory");
        return null;
      }
      grown.set(partial.payload);
      partial.payload = grown;
      this.#bytes += added;
    }
    partial.payload.set(packet.subarray(dataStart, end), offset);
    insertRange(partial.ranges, offset, fragmentEnd);
    if (last) partial.total = fragmentEnd;
    if (offset === 0) {
      partial.first = packet.slice(0, end);
      partial.fragmentHeader = fragmentHeader;
      partial.nextHeaderField = chain.fragmentNextHeaderField;
    }
    if (partial.total === -1 || partial.first === null) return null;
    if (partial.ranges.length !== 2 || partial.ranges[0] !== 0 || partial.ranges[1] !== partial.total) {
      return null;
    }
    this.#forget(key, partial);
    const unfragmentable = partial.fragmentHeader;
    const whole = new Uint8Array(unfragmentable + partial.total);
    whole.set(partial.first.subarray(0, unfragmentable));
    whole.set(partial.payload.subarray(0, partial.total), unfragmentable);
    whole[partial.nextHeaderField] = partial.nextHeader;
    const payloadLength = whole.length - IPV6_HEADER_LENGTH;
    whole[4] = payloadLength >> 8;
    whole[5] = payloadLength & 0xff;
    return whole;
  }

  /**
   * Drops datagrams whose time ran out, calling `onTimeout` with the first fragment of each that had one
   * (Time Exceeded code 1 is due for those, RFC 8200 §4.5); returns the next deadline or `null`.
   */
  poll(now: number, onTimeout?: (firstFragment: Uint8Array) => void): number | null {
    let next: number | null = null;
    for (const [key, partial] of this.#partial) {
      if (partial.deadline <= now) {
        this.#discard(key, partial, "reassembly-timeout");
        if (partial.first !== null) onTimeout?.(partial.first);
      } else if (next === null || partial.deadline < next) next = partial.deadline;
    }
    return next;
  }

  #evictOldest(): void {
    const [key, partial] = this.#partial.entries().next().value!;
    this.#discard(key, partial, "reassembly-overflow");
  }

  #discard(key: string, partial: PartialDatagram, reason: string): void {
    this.#forget(key, partial);
    this.#drops.count(reason);
  }

  #forget(key: string, partial: PartialDatagram): void {
    this.#partial.delete(key);
    this.#bytes -= partial.payload.length;
  }
}

/** RFC 8200 §4.5: fragments belong together by source, destination and identification. */
function fragmentKey(packet: Uint8Array, identification: number): string {
  let key = `${identification}`;
  for (let i = 8; i < 40; i += 2) key += `:${(packet[i] << 8) | packet[i + 1]}`;
  return key;
}

function maxEnd(ranges: number[]): number {
  return ranges.length === 0 ? 0 : ranges[ranges.length - 1];
}

function overlaps(ranges: number[], start: number, end: number): boolean {
  for (let i = 0; i < ranges.length; i += 2) {
    if (start < ranges[i + 1] && ranges[i] < end) return true;
  }
  return false;
}

/** Inserts [start, end) into the sorted disjoint list, merging touching neighbours. */
function insertRange(ranges: number[], start: number, end: number): void {
  let i = 0;
  while (i < ranges.length && ranges[i] < start) i += 2;
  ranges.splice(i, 0, start, end);
  for (let j = 0; j + 2 < ranges.length;) {
    if (ranges[j + 1] === ranges[j + 2]) ranges.splice(j + 1, 2);
    else j += 2;
  }
}

/**
 * Splits the IPv6 packet `packet` (no extension headers of its own: the stack sends none but Hop-by-Hop
 * on MLD, which is never this large) into fragments of at most `mtu` bytes with a Fragment header
 * (RFC 8200 §4.5), calling `emit` with each; the buffer passed to `emit` is reused, so it must be consumed
 * at once. Returns the number of fragments.
 */
export function fragmentIpv6(
  packet: Uint8Array,
  mtu: number,
  identification: number,
  scratch: Uint8Array,
  emit: (fragment: Uint8Array) => void,
): number {
  const nextHeader = packet[6];
  const payload = packet.length - IPV6_HEADER_LENGTH;
  const chunk = Math.floor((mtu - IPV6_HEADER_LENGTH - 8) / 8) * 8;
  let count = 0;
  for (let offset = 0; offset < payload; offset += chunk) {
    const size = Math.min(chunk, payload - offset);
    const more = offset + size < payload;
    scratch.set(packet.subarray(0, IPV6_HEADER_LENGTH), 0);
    scratch[6] = 44;
    const fragmentPayload = 8 + size;
    scratch[4] = fragmentPayload >> 8;
    scratch[5] = fragmentPayload & 0xff;
    writeFragmentHeader(scratch, IPV6_HEADER_LENGTH, nextHeader, offset, more, identification);
    scratch.set(packet.subarray(IPV6_HEADER_LENGTH + offset, IPV6_HEADER_LENGTH + offset + size), 48);
    emit(scratch.subarray(0, 48 + size));
    count++;
  }
  return count;
}

/**
 * IPv4 fragment reassembly (RFC 791 §3.2, with RFC 815's hole bookkeeping), sans-I/O and bounded: at most
 * `maxDatagrams` in progress and `maxBytes` buffered; a datagram not complete `timeoutMs` after its first
 * fragment is dropped (Linux's ipfrag_time is 30 s). Overlapping fragments drop the whole datagram, as
 * Linux does since 4.19 (they serve no honest sender and enable evasion attacks, cf. RFC 5722 for IPv6).
 *
 * @module
 */

import { internetChecksum } from "../wire/checksum.ts";
import type { Ipv4Packet } from "../wire/ipv4.ts";
import type { DropCounters } from "./stats.ts";

/** Options of {@link Ipv4Reassembler}. */
export interface ReassemblyOptions {
  /** Datagrams being reassembled at once; default 64. */
  maxDatagrams?: number;
  /** Bytes buffered over all datagrams; default 4 MiB. */
  maxBytes?: number;
  /** Time allowed from the first fragment to the last, ms; default 30 000. */
  timeoutMs?: number;
}

interface PartialDatagram {
  /** Payload bytes by offset; grows as fragments arrive. */
  payload: Uint8Array;
  /** Received [start, end) payload ranges, sorted and disjoint. */
  ranges: number[];
  /** Payload length, known once the last fragment (MF clear) arrived; -1 before. */
  total: number;
  /** The header of the first fragment (offset 0), or null until it arrives. */
  header: Uint8Array | null;
  /** When the datagram is given up. */
  deadline: number;
}

/**
 * The drop reasons the reassembler counts (in the IPv4 layer's drops). They count datagrams given up, or
 * fragments refused, all of which were counted once already as `fragmentsIn`.
 */
export const REASSEMBLY_DROP_REASONS: readonly string[] = [
  "bad-fragment",
  "fragment-overlap",
  "reassembly-memory",
  "reassembly-timeout",
  "reassembly-overflow",
];

/** Reassembles fragmented datagrams; see the module comment for the rules. */
export class Ipv4Reassembler {
  readonly #partial = new Map<string, PartialDatagram>();
  readonly #maxDatagrams: number;
  readonly #maxBytes: number;
  readonly #timeoutMs: number;
  readonly #drops: DropCounters;
  #bytes = 0;

  /** Creates a reassembler counting its drops in `drops`. */
  constructor(drops: DropCounters, options: ReassemblyOptions = {}) {
    this.#drops = drops;
    this.#maxDatagrams = options.maxDatagrams ?? 64;
    this.#maxBytes = options.maxBytes ?? 4 << 20;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Datagrams in progress. */
  get pending(): number {
    return this.#partial.size;
  }

  /**
   * Adds a checked fragment received at `now`. Returns the whole datagram (a fresh IPv4 packet with its
   * header rewritten: no MF, offset 0, total length and checksum updated) once complete, else `null`.
   */
  add(ip: Ipv4Packet, now: number): Uint8Array | null {
    const headerLength = ip.headerLength;
    const offset = ip.fragmentOffset;
    const length = ip.totalLength - headerLength;
    const end = offset + length;
    const last = !ip.moreFragments;
    // RFC 791: every fragment but the last carries a multiple of 8 bytes; a datagram is at most 65535 bytes.
    if ((!last && (length & 7) !== 0) || length === 0 || end + headerLength > 65535) {
      this.#drops.count("bad-fragment");
      return null;
    }
    const key = `${ip.src}:${ip.dst}:${ip.protocol}:${ip.identification}`;
    let partial = this.#partial.get(key);
    if (partial === undefined) {
      if (this.#partial.size >= this.#maxDatagrams) this.#evictOldest();
      partial = {
        payload: new Uint8Array(0),
        ranges: [],
        total: -1,
        header: null,
        deadline: now + this.#timeoutMs,
      };
      this.#partial.set(key, partial);
    }
    if (
      (last && partial.total !== -1 && partial.total !== end) || (partial.total !== -1 && end > partial.total)
    ) {
      this.#discard(key, partial, "bad-fragment");
      return null;
    }
    if (this.#overlaps(partial.ranges, offset, end)) {
      this.#discard(key, partial, "fragment-overlap");
      return null;
    }
    if (end > partial.payload.length) {
      const grown = new Uint8Array(Math.max(end, Math.min(65535, partial.payload.length * 2)));
      const added = grown.length - partial.payload.length;
      if (this.#bytes + added > this.#maxBytes) {
        this.#discard(key, partial, "reassembly-memory");
        return null;
      }
      grown.set(partial.payload);
      partial.payload = grown;
      this.#bytes += added;
    }
    partial.payload.set(ip.bytes.subarray(headerLength, ip.totalLength), offset);
    this.#insertRange(partial.ranges, offset, end);
    if (last) partial.total = end;
    if (offset === 0) partial.header = ip.bytes.slice(0, headerLength);
    if (partial.total === -1 || partial.header === null) return null;
    if (partial.ranges.length !== 2 || partial.ranges[0] !== 0 || partial.ranges[1] !== partial.total) {
      return null;
    }
    // Complete: one header (the first fragment's, RFC 791) and the payload.
    this.#forget(key, partial);
    const header = partial.header;
    const whole = new Uint8Array(header.length + partial.total);
    whole.set(header);
    whole.set(partial.payload.subarray(0, partial.total), header.length);
    const totalLength = whole.length;
    whole[2] = totalLength >> 8;
    whole[3] = totalLength & 0xff;
    whole[6] &= 0x40; // keep DF, clear MF and the offset
    whole[7] = 0;
    whole[10] = 0;
    whole[11] = 0;
    const checksum = internetChecksum(whole, 0, header.length);
    whole[10] = checksum >> 8;
    whole[11] = checksum & 0xff;
    return whole;
  }

  /** Drops datagrams whose time ran out; returns the next deadline or `null`. */
  poll(now: number): number | null {
    let next: number | null = null;
    for (const [key, partial] of this.#partial) {
      if (partial.deadline <= now) this.#discard(key, partial, "reassembly-timeout");
      else if (next === null || partial.deadline < next) next = partial.deadline;
    }
    return next;
  }

  #overlaps(ranges: number[], start: number, end: number): boolean {
    for (let i = 0; i < ranges.length; i += 2) {
      if (start < ranges[i + 1] && ranges[i] < end) return true;
    }
    return false;
  }

  /** Inserts [start, end) into the sorted disjoint list, merging touching neighbours. */
  #insertRange(ranges: number[], start: number, end: number): void {
    let i = 0;
    while (i < ranges.length && ranges[i] < start) i += 2;
    ranges.splice(i, 0, start, end);
    for (let j = 0; j + 2 < ranges.length;) {
      if (ranges[j + 1] === ranges[j + 2]) ranges.splice(j + 1, 2);
      else j += 2;
    }
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

/**
 * Splits an IPv4 packet larger than `mtu` into fragments (RFC 791 §3.2) with the given `identification`,
 * calling `emit` with each; the buffer passed to `emit` is reused, so it must be consumed at once. DF is
 * cleared; options are copied into the first fragment only (none of ours are marked "copied").
 * Returns the number of fragments.
 */
export function fragmentIpv4(
  packet: Uint8Array,
  mtu: number,
  identification: number,
  scratch: Uint8Array,
  emit: (fragment: Uint8Array) => void,
): number {
  const headerLength = (packet[0] & 0x0f) * 4;
  const total = (packet[2] << 8) | packet[3];
  const chunk = Math.floor((mtu - 20) / 8) * 8; // later fragments carry a 20-byte header
  let count = 0;
  for (let offset = 0; offset < total - headerLength;) {
    const first = offset === 0;
    const fragmentHeader = first ? headerLength : 20;
    const room = Math.floor((mtu - fragmentHeader) / 8) * 8;
    const size = Math.min(first ? room : chunk, total - headerLength - offset);
    const more = offset + size < total - headerLength;
    scratch.set(packet.subarray(0, 20), 0);
    if (first && headerLength > 20) scratch.set(packet.subarray(20, headerLength), 20);
    scratch[0] = 0x40 | (fragmentHeader / 4);
    const length = fragmentHeader + size;
    scratch[2] = length >> 8;
    scratch[3] = length & 0xff;
    scratch[4] = identification >> 8;
    scratch[5] = identification & 0xff;
    const units = offset / 8;
    scratch[6] = (more ? 0x20 : 0) | ((units >> 8) & 0x1f);
    scratch[7] = units & 0xff;
    scratch[10] = 0;
    scratch[11] = 0;
    scratch.set(packet.subarray(headerLength + offset, headerLength + offset + size), fragmentHeader);
    const checksum = internetChecksum(scratch, 0, fragmentHeader);
    scratch[10] = checksum >> 8;
    scratch[11] = checksum & 0xff;
    emit(scratch.subarray(0, length));
    offset += size;
    count++;
  }
  return count;
}

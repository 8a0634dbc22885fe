/**
 * The out-of-order queue of the receiver (RFC 9293 §3.10.7.4 step 7): which sequence ranges beyond
 * RCV.NXT have arrived. The bytes themselves sit in the {@link RecvBuffer} at their final position; this
 * keeps only a bounded, sorted list of disjoint ranges, and produces SACK blocks from it (RFC 2018 §4:
 * the first block holds the most recently received segment, then the most recently changed others).
 *
 * @module
 */

import { seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from "./seq.ts";

const NO_RANGES = new Uint32Array(0);
const NO_STAMPS = new Float64Array(0);

/** A bounded set of disjoint, non-adjacent sequence ranges ordered by sequence number. */
export class ReassemblyQueue {
  /** Most ranges held; a segment that would need one more is refused. */
  readonly maxRanges: number;
  // Allocated at the first out-of-order segment: in-order connections never need them.
  #starts: Uint32Array = NO_RANGES;
  #ends: Uint32Array = NO_RANGES;
  #stamps: Float64Array = NO_STAMPS;
  #count = 0;
  #clock = 0;

  /** Creates an empty queue holding at most `maxRanges` ranges. */
  constructor(maxRanges: number) {
    this.maxRanges = Math.max(1, maxRanges);
  }

  /** Allocates the range arrays on first use. */
  #ensure(): void {
    if (this.#starts !== NO_RANGES) return;
    this.#starts = new Uint32Array(this.maxRanges);
    this.#ends = new Uint32Array(this.maxRanges);
    this.#stamps = new Float64Array(this.maxRanges);
  }

  /** Number of disjoint ranges held. */
  get rangeCount(): number {
    return this.#count;
  }

  /** Start of range `i` (sorted order). */
  rangeStart(i: number): number {
    return this.#starts[i];
  }

  /** End (exclusive) of range `i` (sorted order). */
  rangeEnd(i: number): number {
    return this.#ends[i];
  }

  /** Total bytes held. */
  get bytes(): number {
    let total = 0;
    for (let i = 0; i < this.#count; i++) total += (this.#ends[i] - this.#starts[i]) >>> 0;
    return total;
  }

  /**
   * Records `[seq, seq+length)`, merging with overlapping or adjacent ranges. Returns false (recording
   * nothing) when it would need a new range and the queue is full.
   */
  add(seq: number, length: number): boolean {
    if (length <= 0) return true;
    this.#ensure();
    let start = seq >>> 0;
    let end = (seq + length) >>> 0;
    const starts = this.#starts, ends = this.#ends;
    let i = 0;
    while (i < this.#count && seqLt(ends[i], start)) i++;
    let j = i;
    while (j < this.#count && seqLe(starts[j], end)) {
      start = seqMin(start, starts[j]);
      end = seqMax(end, ends[j]);
      j++;
    }
    const merged = j - i;
    if (merged === 0) {
      if (this.#count === this.maxRanges) return false;
      for (let k = this.#count; k > i; k--) {
        starts[k] = starts[k - 1];
        ends[k] = ends[k - 1];
        this.#stamps[k] = this.#stamps[k - 1];
      }
      this.#count++;
    } else if (merged > 1) {
      const shift = merged - 1;
      for (let k = i + 1; k + shift < this.#count; k++) {
        starts[k] = starts[k + shift];
        ends[k] = ends[k + shift];
        this.#stamps[k] = this.#stamps[k + shift];
      }
      this.#count -= shift;
    }
    starts[i] = start;
    ends[i] = end;
    this.#stamps[i] = ++this.#clock;
    return true;
  }

  /**
   * Removes the ranges that start at or before `rcvNxt` and returns the new RCV.NXT: the end of the
   * contiguous data now available (at least `rcvNxt`).
   */
  advance(rcvNxt: number): number {
    let next = rcvNxt >>> 0;
    let removed = 0;
    while (removed < this.#count && seqLe(this.#starts[removed], next)) {
      next = seqMax(next, this.#ends[removed]);
      removed++;
    }
    if (removed > 0) {
      for (let k = removed; k < this.#count; k++) {
        this.#starts[k - removed] = this.#starts[k];
        this.#ends[k - removed] = this.#ends[k];
        this.#stamps[k - removed] = this.#stamps[k];
      }
      this.#count -= removed;
    }
    return next;
  }

  /** Whether `[seq, seq+length)` is entirely held. */
  contains(seq: number, length: number): boolean {
    const end = (seq + length) >>> 0;
    for (let i = 0; i < this.#count; i++) {
      if (seqLe(this.#starts[i], seq) && seqGe(this.#ends[i], end)) return true;
    }
    return false;
  }

  /**
   * Writes up to `max` SACK blocks, most recently updated first (RFC 2018 §4), into `into` as
   * [left, right, …] and returns how many.
   */
  sackBlocks(into: Uint32Array, max: number): number {
    const n = Math.min(max, this.#count, into.length >> 1);
    let lastStamp = Infinity;
    for (let k = 0; k < n; k++) {
      let best = -1;
      for (let i = 0; i < this.#count; i++) {
        const s = this.#stamps[i];
        if (s < lastStamp && (best < 0 || s > this.#stamps[best])) best = i;
      }
      into[2 * k] = this.#starts[best];
      into[2 * k + 1] = this.#ends[best];
      lastStamp = this.#stamps[best];
    }
    return n;
  }

  /** The highest end of all ranges, or `fallback` when empty. */
  highestEnd(fallback: number): number {
    return this.#count === 0 ? fallback : this.#ends[this.#count - 1];
  }

  /** Whether any range lies beyond `seq`. */
  hasDataAfter(seq: number): boolean {
    return this.#count > 0 && seqGt(this.#ends[this.#count - 1], seq);
  }

  /** Removes everything. */
  clear(): void {
    this.#count = 0;
  }
}

/**
 * The queue of every receiver that has not received an out-of-order segment yet: shared and never added
 * to (`advance` and `clear` leave an empty queue as it is), so that in-order connections own none.
 */
export const NO_OUT_OF_ORDER: ReassemblyQueue = new ReassemblyQueue(1);

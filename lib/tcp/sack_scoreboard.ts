/**
 * The sender's SACK scoreboard (RFC 6675 §3): which sequence ranges above SND.UNA the peer reported
 * holding, with the queries loss recovery needs (IsLost, the pipe estimate, NextSeg's hole search).
 *
 * @module
 */

import { seqGe, seqGt, seqLe, seqLt, seqMax, seqMin } from "./seq.ts";

/** RFC 6675 §2 DupThresh. */
export const DUP_THRESH = 3;

const NO_RANGES = new Uint32Array(0);

/** A bounded, sorted set of disjoint SACKed ranges inside (SND.UNA, SND.NXT]. */
export class SackScoreboard {
  /** Most ranges kept; further disjoint blocks are ignored (less information, never wrong). */
  readonly maxRanges: number;
  // Allocated at the first SACK block: connections without loss never need them.
  #starts: Uint32Array = NO_RANGES;
  #ends: Uint32Array = NO_RANGES;
  #count = 0;
  #sackedBytes = 0;

  /** Creates an empty scoreboard. */
  constructor(maxRanges = 64) {
    this.maxRanges = maxRanges;
  }

  /** Number of disjoint SACKed ranges. */
  get rangeCount(): number {
    return this.#count;
  }

  /** Bytes currently marked SACKed. */
  get sackedBytes(): number {
    return this.#sackedBytes;
  }

  /** Start of range `i`. */
  rangeStart(i: number): number {
    return this.#starts[i];
  }

  /** End of range `i` (exclusive). */
  rangeEnd(i: number): number {
    return this.#ends[i];
  }

  /**
   * Merges the peer's SACK blocks ([left, right, …], `count` of them). Blocks that are empty, reach
   * beyond `sndNxt`, or lie wholly below `sndUna` (D-SACK, RFC 2883) are ignored; a block straddling
   * `sndUna` is clipped. Returns the number of newly SACKed bytes.
   */
  update(blocks: Uint32Array, count: number, sndUna: number, sndNxt: number): number {
    if (count > 0 && this.#starts === NO_RANGES) {
      this.#starts = new Uint32Array(this.maxRanges);
      this.#ends = new Uint32Array(this.maxRanges);
    }
    const before = this.#sackedBytes;
    for (let k = 0; k < count; k++) {
      let left = blocks[2 * k];
      const right = blocks[2 * k + 1];
      if (!seqLt(left, right) || seqGt(right, sndNxt) || seqLe(right, sndUna)) continue;
      if (seqLt(left, sndUna)) left = sndUna;
      this.#insert(left, right);
    }
    return this.#sackedBytes - before;
  }

  #insert(left: number, right: number): void {
    const starts = this.#starts, ends = this.#ends;
    let i = 0;
    while (i < this.#count && seqLt(ends[i], left)) i++;
    let j = i;
    let start = left, end = right;
    let removedBytes = 0;
    while (j < this.#count && seqLe(starts[j], end)) {
      start = seqMin(start, starts[j]);
      end = seqMax(end, ends[j]);
      removedBytes += (ends[j] - starts[j]) >>> 0;
      j++;
    }
    const merged = j - i;
    if (merged === 0) {
      if (this.#count === this.maxRanges) return;
      for (let k = this.#count; k > i; k--) {
        starts[k] = starts[k - 1];
        ends[k] = ends[k - 1];
      }
      this.#count++;
    } else if (merged > 1) {
      const shift = merged - 1;
      for (let k = i + 1; k + shift < this.#count; k++) {
        starts[k] = starts[k + shift];
        ends[k] = ends[k + shift];
      }
      this.#count -= shift;
    }
    starts[i] = start;
    ends[i] = end;
    this.#sackedBytes += ((end - start) >>> 0) - removedBytes;
  }

  /** Forgets everything at or below the new cumulative ACK `sndUna`. */
  advance(sndUna: number): void {
    let removed = 0;
    while (removed < this.#count && seqLe(this.#ends[removed], sndUna)) {
      this.#sackedBytes -= (this.#ends[removed] - this.#starts[removed]) >>> 0;
      removed++;
    }
    if (removed > 0) {
      for (let k = removed; k < this.#count; k++) {
        this.#starts[k - removed] = this.#starts[k];
        this.#ends[k - removed] = this.#ends[k];
      }
      this.#count -= removed;
    }
    if (this.#count > 0 && seqLt(this.#starts[0], sndUna)) {
      this.#sackedBytes -= (sndUna - this.#starts[0]) >>> 0;
      this.#starts[0] = sndUna;
    }
  }

  /** Clears the scoreboard (RFC 2018 §8: after an RTO the sender may ignore earlier SACK information). */
  clear(): void {
    this.#count = 0;
    this.#sackedBytes = 0;
  }

  /** The highest SACKed sequence (exclusive end), or `fallback` when nothing is SACKed. */
  highestSacked(fallback: number): number {
    return this.#count === 0 ? fallback : this.#ends[this.#count - 1];
  }

  /** Whether the byte at `seq` is SACKed. */
  isSacked(seq: number): boolean {
    for (let i = 0; i < this.#count; i++) {
      if (seqLt(seq, this.#starts[i])) return false;
      if (seqLt(seq, this.#ends[i])) return true;
    }
    return false;
  }

  /** The first sequence at or after `seq` that is not SACKed. */
  nextUnsacked(seq: number): number {
    for (let i = 0; i < this.#count; i++) {
      if (seqLt(seq, this.#starts[i])) return seq;
      if (seqLt(seq, this.#ends[i])) return this.#ends[i];
    }
    return seq;
  }

  /** The start of the first SACKed range beginning after `seq`, or `fallback`. */
  nextSackedStart(seq: number, fallback: number): number {
    for (let i = 0; i < this.#count; i++) {
      if (seqGt(this.#starts[i], seq)) return this.#starts[i];
    }
    return fallback;
  }

  /**
   * The RFC 6675 §4 IsLost boundary: every un-SACKed byte below the returned sequence is deemed lost,
   * because more than (DupThresh − 1) × `mss` bytes, or DupThresh discontiguous ranges, are SACKed above
   * it. Returns `sndUna` when nothing is deemed lost.
   */
  lossBoundary(sndUna: number, mss: number): number {
    let above = 0;
    for (let k = this.#count - 1; k >= 0; k--) {
      above += (this.#ends[k] - this.#starts[k]) >>> 0;
      if (above > (DUP_THRESH - 1) * mss || this.#count - k >= DUP_THRESH) return this.#starts[k];
    }
    return sndUna;
  }

  /** Un-SACKed bytes in `[from, to)`. */
  unsackedBytes(from: number, to: number): number {
    if (!seqLt(from, to)) return 0;
    let total = (to - from) >>> 0;
    for (let i = 0; i < this.#count; i++) {
      const s = seqMax(this.#starts[i], from), e = seqMin(this.#ends[i], to);
      if (seqLt(s, e)) total -= (e - s) >>> 0;
      if (seqGe(this.#starts[i], to)) break;
    }
    return total;
  }
}

/**
 * The scoreboard of every connection that has not received a SACK block yet: shared and never updated
 * (`advance` and `clear` leave an empty scoreboard as it is), so that most connections own none.
 */
export const NO_SACKS: SackScoreboard = new SackScoreboard(0);

/**
 * The ring both TCP buffers are built on: a bounded circular byte store that starts empty and doubles
 * up to its capacity (so idle connections stay cheap), with wrap-around copies in and out at an offset
 * from the front. The send and receive buffers add their own rules on top.
 *
 * @module
 */

import { type MemoryBudget, UNBOUNDED_BUDGET } from "./memory_budget.ts";

const EMPTY = new Uint8Array(0);

/** Smallest backing store allocated once data arrives. */
const INITIAL_STORE = 16 * 1024;

/** A bounded, growable byte ring; `length` bytes are held from the front. */
export class ByteRing {
  /** Capacity in bytes (the bound; the backing store grows up to it). */
  readonly capacity: number;
  /** The backing store. */
  protected data: Uint8Array = EMPTY;
  /** Index of the front byte in {@link ByteRing.data}. */
  protected head = 0;
  /** Bytes held from the front. */
  protected held = 0;

  /** The budget the store's bytes are taken from. */
  protected readonly budget: MemoryBudget;

  /** Creates an empty ring bounded by `capacity` bytes, its store charged to `budget`. */
  constructor(capacity: number, budget: MemoryBudget = UNBOUNDED_BUDGET) {
    this.capacity = capacity;
    this.budget = budget;
  }

  /** Bytes held from the front. */
  get length(): number {
    return this.held;
  }

  /** Room after the bytes held. */
  get free(): number {
    return this.capacity - this.held;
  }

  /** Bytes currently allocated for the ring. */
  get allocated(): number {
    return this.data.length;
  }

  /**
   * Makes the store hold at least `needed` bytes from the front, keeping the first `keep` of them;
   * a new store is linearised from index 0. Returns false, leaving the store as it is, when the budget
   * has no room for the growth.
   */
  protected grow(needed: number, keep: number): boolean {
    const size = this.data.length;
    if (needed <= size) return true;
    let next = Math.max(size * 2, INITIAL_STORE);
    while (next < needed) next *= 2;
    next = Math.min(next, this.capacity);
    // Only the growth is charged: the old store's bytes are already counted.
    if (!this.budget.reserve(next - size)) return false;
    // The first store usually comes from the budget's spares (a drained connection's).
    const data = size === 0 && next === INITIAL_STORE ? this.budget.takeStore(next) : new Uint8Array(next);
    if (keep > 0) this.copyFrom(0, data, 0, keep);
    this.data = data;
    this.head = 0;
    return true;
  }

  /** Copies `n` bytes starting `offset` bytes after the front into `dst[dstOffset..]`. */
  protected copyFrom(offset: number, dst: Uint8Array, dstOffset: number, n: number): void {
    if (n === 0) return;
    const size = this.data.length;
    let start = this.head + offset;
    if (start >= size) start -= size;
    const first = Math.min(n, size - start);
    dst.set(this.data.subarray(start, start + first), dstOffset);
    if (first < n) dst.set(this.data.subarray(0, n - first), dstOffset + first);
  }

  /** Writes `src[srcStart..srcStart+n)` at `offset` bytes after the front (the store must hold it). */
  protected copyInto(offset: number, src: Uint8Array, srcStart: number, n: number): void {
    if (n === 0) return;
    const size = this.data.length;
    let pos = this.head + offset;
    if (pos >= size) pos -= size;
    const first = Math.min(n, size - pos);
    this.data.set(
      srcStart === 0 && first === src.length ? src : src.subarray(srcStart, srcStart + first),
      pos,
    );
    if (first < n) this.data.set(src.subarray(srcStart + first, srcStart + n), 0);
  }

  /** Drops `n` bytes from the front. */
  protected advance(n: number): void {
    this.head += n;
    if (this.head >= this.data.length) this.head -= this.data.length;
    this.held -= n;
  }

  /** Empties the ring and frees its backing store (its bytes go back to the budget). */
  release(): void {
    this.budget.release(this.data.length);
    if (this.data.length === INITIAL_STORE) this.budget.keepStore(this.data);
    this.head = 0;
    this.held = 0;
    this.data = EMPTY;
  }
}

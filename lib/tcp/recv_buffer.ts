/**
 * The receive buffer: a bounded ring holding in-order bytes the application has not read yet, followed
 * by room where out-of-order segments are written at their final position (the reassembly queue only
 * tracks which ranges are present). When a hole fills, {@link RecvBuffer.commit} makes the bytes
 * readable without copying them again. The backing store starts small and doubles up to the capacity.
 *
 * @module
 */

/** Smallest backing store allocated once data arrives. */
const INITIAL_STORE = 16 * 1024;

/** A bounded byte ring with random-access writes past the readable region. */
export class RecvBuffer {
  /** Capacity in bytes (the bound; the backing store grows up to it). */
  readonly capacity: number;
  #data: Uint8Array = new Uint8Array(0);
  #head = 0;
  #length = 0;
  /** Bytes past the readable region that may hold out-of-order data (kept across growth). */
  #extent = 0;

  /** Creates an empty buffer bounded by `capacity` bytes. */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Readable (in-order, committed) bytes. */
  get length(): number {
    return this.#length;
  }

  /** Room after the readable bytes, where new data (in order or not) can be written. */
  get free(): number {
    return this.capacity - this.#length;
  }

  /** Bytes currently allocated for the ring. */
  get allocated(): number {
    return this.#data.length;
  }

  #ensure(needed: number): void {
    const size = this.#data.length;
    if (needed <= size) return;
    let next = Math.max(size * 2, INITIAL_STORE);
    while (next < needed) next *= 2;
    next = Math.min(next, this.capacity);
    const data = new Uint8Array(next);
    // Keep readable bytes and any out-of-order bytes written beyond them, linearised from 0.
    const keep = this.#length + this.#extent;
    if (keep > 0) {
      const first = Math.min(keep, size - this.#head);
      data.set(this.#data.subarray(this.#head, this.#head + first), 0);
      if (first < keep) data.set(this.#data.subarray(0, keep - first), first);
    }
    this.#data = data;
    this.#head = 0;
  }

  /**
   * Writes `src[srcStart..srcStart+n)` at `offset` bytes after the end of the readable region.
   * Requires `offset + n <= free`.
   */
  writeAt(offset: number, src: Uint8Array, srcStart: number, n: number): void {
    if (offset < 0 || n < 0 || offset + n > this.capacity - this.#length) {
      throw new RangeError("recv buffer: write out of range");
    }
    if (n === 0) return;
    this.#ensure(this.#length + offset + n);
    if (offset + n > this.#extent) this.#extent = offset + n;
    const size = this.#data.length;
    let pos = this.#head + this.#length + offset;
    while (pos >= size) pos -= size;
    const first = Math.min(n, size - pos);
    this.#data.set(src.subarray(srcStart, srcStart + first), pos);
    if (first < n) this.#data.set(src.subarray(srcStart + first, srcStart + n), 0);
  }

  /** Makes the next `n` written bytes readable. */
  commit(n: number): void {
    if (n < 0 || n > this.capacity - this.#length) throw new RangeError("recv buffer: commit out of range");
    this.#length += n;
    this.#extent = Math.max(0, this.#extent - n);
  }

  /** Copies up to `into.length` readable bytes into `into`, removes them, and returns the count. */
  read(into: Uint8Array): number {
    const n = Math.min(into.length, this.#length);
    if (n === 0) return 0;
    const size = this.#data.length;
    const first = Math.min(n, size - this.#head);
    into.set(this.#data.subarray(this.#head, this.#head + first), 0);
    if (first < n) into.set(this.#data.subarray(0, n - first), first);
    this.#advance(n);
    return n;
  }

  /** Drops `n` readable bytes without copying them (data arriving after the application closed). */
  discard(n: number): void {
    this.#advance(Math.min(n, this.#length));
  }

  #advance(n: number): void {
    this.#head += n;
    if (this.#head >= this.#data.length) this.#head -= this.#data.length;
    this.#length -= n;
  }

  /** Empties the buffer and frees its backing store. */
  release(): void {
    this.#head = 0;
    this.#length = 0;
    this.#extent = 0;
    this.#data = new Uint8Array(0);
  }
}

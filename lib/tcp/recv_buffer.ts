/**
 * The receive buffer: a bounded ring holding in-order bytes the application has not read yet, followed
 * by room where out-of-order segments are written at their final position (the reassembly queue only
 * tracks which ranges are present). When a hole fills, {@link RecvBuffer.commit} makes the bytes
 * readable without copying them again.
 *
 * @module
 */

/** A bounded byte ring with random-access writes past the readable region. */
export class RecvBuffer {
  /** Capacity in bytes. */
  readonly capacity: number;
  readonly #data: Uint8Array;
  #head = 0;
  #length = 0;

  /** Creates an empty buffer of `capacity` bytes. */
  constructor(capacity: number) {
    this.capacity = capacity;
    this.#data = new Uint8Array(capacity);
  }

  /** Readable (in-order, committed) bytes. */
  get length(): number {
    return this.#length;
  }

  /** Room after the readable bytes, where new data (in order or not) can be written. */
  get free(): number {
    return this.capacity - this.#length;
  }

  /**
   * Writes `src[srcStart..srcStart+n)` at `offset` bytes after the end of the readable region.
   * Requires `offset + n <= free`.
   */
  writeAt(offset: number, src: Uint8Array, srcStart: number, n: number): void {
    if (offset < 0 || n < 0 || offset + n > this.capacity - this.#length) {
      throw new RangeError("recv buffer: write out of range");
    }
    let pos = this.#head + this.#length + offset;
    if (pos >= this.capacity) pos -= this.capacity;
    if (pos >= this.capacity) pos -= this.capacity;
    const first = Math.min(n, this.capacity - pos);
    this.#data.set(src.subarray(srcStart, srcStart + first), pos);
    if (first < n) this.#data.set(src.subarray(srcStart + first, srcStart + n), 0);
  }

  /** Makes the next `n` written bytes readable. */
  commit(n: number): void {
    if (n < 0 || n > this.capacity - this.#length) throw new RangeError("recv buffer: commit out of range");
    this.#length += n;
  }

  /** Copies up to `into.length` readable bytes into `into`, removes them, and returns the count. */
  read(into: Uint8Array): number {
    const n = Math.min(into.length, this.#length);
    if (n === 0) return 0;
    const first = Math.min(n, this.capacity - this.#head);
    into.set(this.#data.subarray(this.#head, this.#head + first), 0);
    if (first < n) into.set(this.#data.subarray(0, n - first), first);
    this.#head += n;
    if (this.#head >= this.capacity) this.#head -= this.capacity;
    this.#length -= n;
    return n;
  }

  /** Drops `n` readable bytes without copying them (data arriving after the application closed). */
  discard(n: number): void {
    const k = Math.min(n, this.#length);
    this.#head += k;
    if (this.#head >= this.capacity) this.#head -= this.capacity;
    this.#length -= k;
  }
}

/**
 * The send buffer: a bounded ring of bytes the application wrote and the peer has not yet acknowledged.
 * Byte 0 is the oldest unacknowledged byte (SND.UNA once the SYN is acknowledged); segments copy out
 * of it at any offset for (re)transmission, so nothing is allocated per segment.
 *
 * @module
 */

/** A bounded byte ring with append, copy-out-at-offset and consume-from-front. */
export class SendBuffer {
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

  /** Bytes held (unacknowledged, sent or not). */
  get length(): number {
    return this.#length;
  }

  /** Room left for {@link write}. */
  get free(): number {
    return this.capacity - this.#length;
  }

  /** Appends as much of `src` as fits and returns the number of bytes taken. */
  write(src: Uint8Array): number {
    const n = Math.min(src.length, this.capacity - this.#length);
    if (n === 0) return 0;
    let tail = this.#head + this.#length;
    if (tail >= this.capacity) tail -= this.capacity;
    const first = Math.min(n, this.capacity - tail);
    this.#data.set(first === src.length ? src : src.subarray(0, first), tail);
    if (first < n) this.#data.set(src.subarray(first, n), 0);
    this.#length += n;
    return n;
  }

  /** Copies `n` bytes starting `offset` bytes after the front into `dst[dstOffset..]`. */
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, n: number): void {
    if (offset < 0 || n < 0 || offset + n > this.#length) throw new RangeError("send buffer: copy out of range");
    let start = this.#head + offset;
    if (start >= this.capacity) start -= this.capacity;
    const first = Math.min(n, this.capacity - start);
    dst.set(this.#data.subarray(start, start + first), dstOffset);
    if (first < n) dst.set(this.#data.subarray(0, n - first), dstOffset + first);
  }

  /** Drops `n` bytes from the front (they were acknowledged). */
  consume(n: number): void {
    if (n < 0 || n > this.#length) throw new RangeError("send buffer: consume out of range");
    this.#head += n;
    if (this.#head >= this.capacity) this.#head -= this.capacity;
    this.#length -= n;
    if (this.#length === 0) this.#head = 0;
  }

  /** Empties the buffer. */
  clear(): void {
    this.#head = 0;
    this.#length = 0;
  }
}

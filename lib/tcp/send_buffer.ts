/**
 * The send buffer: a bounded ring of bytes the application wrote and the peer has not yet acknowledged.
 * Byte 0 is the oldest unacknowledged byte (SND.UNA once the SYN is acknowledged); segments copy out
 * of it at any offset for (re)transmission, so nothing is allocated per segment. The backing store
 * starts small and doubles up to the capacity, so idle connections stay cheap.
 *
 * @module
 */

/** Smallest backing store allocated once data arrives. */
const INITIAL_STORE = 16 * 1024;

/** A bounded byte ring with append, copy-out-at-offset and consume-from-front. */
export class SendBuffer {
  /** Capacity in bytes (the bound; the backing store grows up to it). */
  readonly capacity: number;
  #data: Uint8Array = new Uint8Array(0);
  #head = 0;
  #length = 0;

  /** Creates an empty buffer bounded by `capacity` bytes. */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Bytes held (unacknowledged, sent or not). */
  get length(): number {
    return this.#length;
  }

  /** Room left for {@link write}. */
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
    if (this.#length > 0) this.copyOut(0, data, 0, this.#length);
    this.#data = data;
    this.#head = 0;
  }

  /** Appends as much of `src` as fits and returns the number of bytes taken. */
  write(src: Uint8Array): number {
    const n = Math.min(src.length, this.capacity - this.#length);
    if (n === 0) return 0;
    this.#ensure(this.#length + n);
    const size = this.#data.length;
    let tail = this.#head + this.#length;
    if (tail >= size) tail -= size;
    const first = Math.min(n, size - tail);
    this.#data.set(first === src.length ? src : src.subarray(0, first), tail);
    if (first < n) this.#data.set(src.subarray(first, n), 0);
    this.#length += n;
    return n;
  }

  /** Copies `n` bytes starting `offset` bytes after the front into `dst[dstOffset..]`. */
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, n: number): void {
    if (offset < 0 || n < 0 || offset + n > this.#length) {
      throw new RangeError("send buffer: copy out of range");
    }
    if (n === 0) return;
    const size = this.#data.length;
    let start = this.#head + offset;
    if (start >= size) start -= size;
    const first = Math.min(n, size - start);
    dst.set(this.#data.subarray(start, start + first), dstOffset);
    if (first < n) dst.set(this.#data.subarray(0, n - first), dstOffset + first);
  }

  /** Drops `n` bytes from the front (they were acknowledged). */
  consume(n: number): void {
    if (n < 0 || n > this.#length) throw new RangeError("send buffer: consume out of range");
    this.#head += n;
    if (this.#head >= this.#data.length) this.#head -= this.#data.length;
    this.#length -= n;
    if (this.#length === 0) this.#head = 0;
  }

  /** Empties the buffer and frees its backing store. */
  release(): void {
    this.#head = 0;
    this.#length = 0;
    this.#data = new Uint8Array(0);
  }
}

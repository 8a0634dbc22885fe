/**
 * The receive buffer: a bounded ring holding in-order bytes the application has not read yet, followed
 * by room where out-of-order segments are written at their final position (the reassembly queue only
 * tracks which ranges are present). When a hole fills, {@link RecvBuffer.commit} makes the bytes
 * readable without copying them again. The backing store starts small and doubles up to the capacity.
 *
 * @module
 */

import { ByteRing } from "./byte_ring.ts";

/** A bounded byte ring with random-access writes past the readable region. */
export class RecvBuffer extends ByteRing {
  /** Bytes past the readable region that may hold out-of-order data (kept across growth). */
  #extent = 0;

  /**
   * Writes `src[srcStart..srcStart+n)` at `offset` bytes after the end of the readable region.
   * Requires `offset + n <= free`. Returns false (nothing written) when the budget refuses the store growth.
   */
  writeAt(offset: number, src: Uint8Array, srcStart: number, n: number): boolean {
    if (offset < 0 || n < 0 || offset + n > this.capacity - this.held) {
      throw new RangeError("recv buffer: write out of range");
    }
    if (n === 0) return true;
    // Growth keeps the readable bytes and any out-of-order bytes written beyond them.
    if (!this.grow(this.held + offset + n, this.held + this.#extent)) return false;
    if (offset + n > this.#extent) this.#extent = offset + n;
    this.copyInto(this.held + offset, src, srcStart, n);
    return true;
  }

  /** Bytes the store can take after the readable region without growing. */
  get storeRoom(): number {
    return this.data.length - this.held;
  }

  /** Frees the store when nothing is held (read to the end, no out-of-order bytes): idle costs nothing. */
  shrinkIfEmpty(): void {
    if (this.held === 0 && this.#extent === 0 && this.data.length > 0) this.release();
  }

  /** Makes the next `n` written bytes readable. */
  commit(n: number): void {
    if (n < 0 || n > this.capacity - this.held) throw new RangeError("recv buffer: commit out of range");
    this.held += n;
    this.#extent = Math.max(0, this.#extent - n);
  }

  /** Copies up to `into.length` readable bytes into `into`, removes them, and returns the count. */
  read(into: Uint8Array): number {
    const n = Math.min(into.length, this.held);
    if (n === 0) return 0;
    this.copyFrom(0, into, 0, n);
    this.advance(n);
    return n;
  }

  /** Drops `n` readable bytes without copying them (data arriving after the application closed). */
  discard(n: number): void {
    this.advance(Math.min(n, this.held));
  }

  /** Empties the buffer and frees its backing store. */
  override release(): void {
    super.release();
    this.#extent = 0;
  }
}

/**
 * The send buffer: a bounded ring of bytes the application wrote and the peer has not yet acknowledged.
 * Byte 0 is the oldest unacknowledged byte (SND.UNA once the SYN is acknowledged); segments copy out
 * of it at any offset for (re)transmission, so nothing is allocated per segment. The backing store
 * starts small and doubles up to the capacity, so idle connections stay cheap.
 *
 * @module
 */

import { ByteRing } from "./byte_ring.ts";

/** A bounded byte ring with append, copy-out-at-offset and consume-from-front. */
export class SendBuffer extends ByteRing {
  /**
   * Appends as much of `src` as fits (below `limit` bytes held, the autotuned size, and the capacity)
   * and returns the number of bytes taken.
   */
  write(src: Uint8Array, limit: number = this.capacity): number {
    let n = Math.min(src.length, Math.min(limit, this.capacity) - this.held);
    if (n <= 0) return 0;
    // Without budget for more store, take only what the store already has room for.
    if (!this.grow(this.held + n, this.held)) n = Math.min(n, this.data.length - this.held);
    if (n <= 0) return 0;
    this.copyInto(this.held, src, 0, n);
    this.held += n;
    return n;
  }

  /** Copies `n` bytes starting `offset` bytes after the front into `dst[dstOffset..]`. */
  copyOut(offset: number, dst: Uint8Array, dstOffset: number, n: number): void {
    if (offset < 0 || n < 0 || offset + n > this.held) {
      throw new RangeError("send buffer: copy out of range");
    }
    this.copyFrom(offset, dst, dstOffset, n);
  }

  /** Drops `n` bytes from the front (they were acknowledged). */
  consume(n: number): void {
    if (n < 0 || n > this.held) throw new RangeError("send buffer: consume out of range");
    this.advance(n);
    // Drained: the store goes back to the budget (an idle connection holds none).
    if (this.held === 0) this.release();
  }
}

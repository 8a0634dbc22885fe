/**
 * The base of the reusable packet views in `lib/wire`: a view holds a reference to bytes and can be
 * pointed at the next packet without allocating (smoltcp's `Packet<T>` over a buffer, made reusable).
 * Each view adds a `check()` that must pass before its accessors are trusted.
 *
 * @module
 */

const EMPTY = new Uint8Array(0);

/** Bytes viewed as one protocol's packet. */
export class ByteView {
  /** The bytes viewed; they may extend past the packet (link-layer padding). */
  bytes: Uint8Array;

  /** Creates a view, optionally over `bytes`. */
  constructor(bytes: Uint8Array = EMPTY) {
    this.bytes = bytes;
  }

  /** Points the view at other bytes and returns it. */
  wrap(bytes: Uint8Array): this {
    this.bytes = bytes;
    return this;
  }
}

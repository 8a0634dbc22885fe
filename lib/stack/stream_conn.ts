/**
 * The byte-stream connection the stack hands to applications, shaped like `Deno.Conn` so that Deno code
 * ports over: a ReadableStream and a WritableStream (with backpressure), `read`/`write` like `Deno.Conn`
 * (which need no stream objects), their non-waiting forms, half-close, close.
 *
 * @module
 */

import type { NetAddr } from "./datagram.ts";

/** A connection of the stack (TCP), or any pair of streams with the same shape (tests). */
export interface StreamConn {
  /** Our address and port. */
  readonly localAddr: NetAddr;
  /** The peer's address and port. */
  readonly remoteAddr: NetAddr;
  /** Bytes from the peer; ends when the peer closes its side (FIN). */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer; a writer's `ready` waits while the send buffer is full. Closing it sends FIN. */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Reads into `p`: the bytes read once some are there, or null at the end; an empty `p` resolves to 0
   * once data is there (waiting without holding a buffer). Use either this or {@link readable}, not both.
   */
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Calls `callback` once data, the end or an error is there for {@link tryRead} (as a microtask if it
   * already is): waiting that holds no buffer, promise or async frame. One callback at a time; it must not
   * throw.
   */
  whenReadable(callback: () => void): void;
  /** What is there now, up to `p.length` bytes: 0 when nothing yet, null at the end; never waits. */
  tryRead(p: Uint8Array): number | null;
  /** Writes all of `p`, waiting while the send buffer is full; resolves to its length. */
  write(p: Uint8Array): Promise<number>;
  /** Queues as much of `p` as fits now (copied: `p` may be reused at once) and returns how much; never waits. */
  tryWrite(p: Uint8Array): number;
  /** Closes our sending side (FIN) and keeps reading. */
  closeWrite(): Promise<void>;
  /** Closes both directions. */
  close(): void;
}

/**
 * The byte-stream connection the stack hands to applications, shaped like `Deno.Conn` so that Deno code
 * ports over: a ReadableStream and a WritableStream (with backpressure), half-close, close.
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
  /** Closes our sending side (FIN) and keeps reading. */
  closeWrite(): Promise<void>;
  /** Closes both directions. */
  close(): void;
}

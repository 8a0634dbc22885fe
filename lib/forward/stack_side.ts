/**
 * The relay's view of a connection of the stack: reads into the caller's buffer and writes from it,
 * straight on the protocol connection (`TcpConnection.recv`/`send`), waking on its events. A relay moves
 * every byte twice anyway (stack buffer ↔ its buffer ↔ host socket); going through the `ReadableStream`
 * of the stack's `TcpConn` would add an allocation per read and the stream machinery on the hot path.
 *
 * @module
 */

import type { TcpConnection } from "../tcp/connection.ts";
import { TcpEvent } from "../tcp/state.ts";
import { closeError } from "../errors.ts";

/** A stack connection driven by the relay; it takes over the connection's `onEvent`. */
export class StackSide {
  /** The protocol connection. */
  readonly connection: TcpConnection;
  #readWaiter: (() => void) | null = null;
  #writeWaiter: (() => void) | null = null;

  /** Wraps `connection` (taking over its `onEvent`). */
  constructor(connection: TcpConnection) {
    this.connection = connection;
    connection.onEvent = (_c, events) => {
      if (events & (TcpEvent.READABLE | TcpEvent.EOF | TcpEvent.CLOSED)) {
        const waiter = this.#readWaiter;
        this.#readWaiter = null;
        waiter?.();
      }
      if (events & (TcpEvent.WRITABLE | TcpEvent.CLOSED)) {
        const waiter = this.#writeWaiter;
        this.#writeWaiter = null;
        waiter?.();
      }
    };
  }

  /**
   * Reads what is buffered into `into` (waiting for at least one byte); null at the application's end of
   * stream. Rejects with the typed error (`Deno.errors.ConnectionReset`…) when the connection was reset.
   */
  async read(into: Uint8Array): Promise<number | null> {
    const c = this.connection;
    while (true) {
      const n = c.recv(into);
      if (n === null) {
        if (c.error !== null && c.error !== "aborted") throw closeError(c.error);
        return null;
      }
      if (n > 0) return n;
      await new Promise<void>((resolve) => (this.#readWaiter = resolve));
    }
  }

  /** Queues all of `data` for sending (its bytes are copied), waiting while the send buffer is full. */
  async write(data: Uint8Array): Promise<void> {
    const c = this.connection;
    let offset = 0;
    while (offset < data.length) {
      if (c.state === "CLOSED") throw closeError(c.error);
      if (c.writeShut) throw new Deno.errors.BrokenPipe("the connection's sending side is closed");
      offset += c.send(offset === 0 ? data : data.subarray(offset));
      if (offset < data.length) await new Promise<void>((resolve) => (this.#writeWaiter = resolve));
    }
  }

  /** Sends a FIN after the queued data. */
  closeWrite(): void {
    this.connection.shutdownWrite();
  }

  /** Resets the connection (RST to the application). */
  abort(): void {
    this.connection.abort();
  }

  /** Closes both directions (FIN, or RST when received data was left unread). */
  close(): void {
    this.connection.close();
  }
}

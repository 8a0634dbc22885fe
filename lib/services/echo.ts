/**
 * The echo service over TCP (RFC 862): everything received is sent back; when the peer closes its side,
 * so do we (half-close is honoured: data sent before the peer's FIN is still echoed).
 *
 * A held connection costs no buffer and no stream: the service waits for data holding nothing, moves what
 * arrived through one scratch buffer shared by all connections (read and written back in one synchronous
 * step), and copies only what the send buffer could not take.
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";

/** The echo port. */
export const TCP_ECHO_PORT = 7;

const NOTHING = new Uint8Array(0);
/** Shared by every echo connection: filled and emptied without an `await` in between. */
const SCRATCH = new Uint8Array(64 * 1024);

/** Serves one connection until the peer closes; resolves when done. Errors (reset) end it quietly. */
export async function serveEcho(conn: StreamConn): Promise<void> {
  try {
    while ((await conn.read(NOTHING)) !== null) {
      const n = conn.tryRead(SCRATCH);
      if (n === null) break;
      if (n === 0) continue;
      const queued = conn.tryWrite(SCRATCH.subarray(0, n));
      // The send buffer is full: keep a copy of the rest and wait (the peer's window is closed).
      if (queued < n) await conn.write(SCRATCH.slice(queued, n));
    }
  } catch {
    // A reset or abort ends the service for this connection; the stack counts it.
  } finally {
    conn.close();
  }
}

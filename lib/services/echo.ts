/**
 * The echo service over TCP (RFC 862): everything received is sent back; when the peer closes its side,
 * so do we (half-close is honoured: data sent before the peer's FIN is still echoed).
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";

/** The echo port. */
export const TCP_ECHO_PORT = 7;

/** Serves one connection until the peer closes; resolves when done. Errors (reset) end it quietly. */
export async function serveEcho(conn: StreamConn): Promise<void> {
  try {
    await conn.readable.pipeTo(conn.writable);
  } catch {
    // A reset or abort ends the service for this connection; the stack counts it.
  } finally {
    conn.close();
  }
}

/**
 * The discard service (RFC 863): everything received is thrown away; we close when the peer does.
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";

/** The discard port. */
export const DISCARD_PORT = 9;

/** Reads and drops until the peer closes; resolves to the number of bytes discarded. */
export async function serveDiscard(conn: StreamConn): Promise<number> {
  let total = 0;
  try {
    const reader = conn.readable.getReader();
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.length;
    }
    await conn.closeWrite();
  } catch {
    // Reset by the peer: nothing to answer.
  } finally {
    conn.close();
  }
  return total;
}

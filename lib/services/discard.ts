/**
 * The discard service (RFC 863): everything received is thrown away; we close when the peer does. A held
 * connection costs no buffer: it waits holding nothing and drains through a scratch buffer shared by all.
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";

/** The discard port. */
export const DISCARD_PORT = 9;

const NOTHING = new Uint8Array(0);
/** Shared by every discard connection: its contents are never looked at. */
const SCRATCH = new Uint8Array(256 * 1024);

/** Drops everything `conn` receives until the peer closes; resolves to the bytes dropped. Throws after a reset. */
export async function drain(conn: StreamConn): Promise<number> {
  let total = 0;
  while ((await conn.read(NOTHING)) !== null) {
    for (let n = conn.tryRead(SCRATCH); n !== null && n > 0; n = conn.tryRead(SCRATCH)) total += n;
  }
  return total;
}

/**
 * Reads and drops until the peer closes; resolves to the number of bytes discarded. Between data it waits
 * with `whenReadable`: a held connection costs this function's one promise and one callback.
 */
export function serveDiscard(conn: StreamConn): Promise<number> {
  return new Promise<number>((resolve) => discardConnection(conn, resolve));
}

/**
 * {@link serveDiscard} with a completion callback instead of a promise (the services' form: no promise
 * per connection): `done` is called once with the bytes discarded, after the connection was closed.
 */
export function discardConnection(conn: StreamConn, done: (discarded: number) => void): void {
  let total = 0;
  const finish = () => {
    conn.close();
    done(total);
  };
  const step = (): void => {
    try {
      while (true) {
        const n = conn.tryRead(SCRATCH);
        if (n === 0) return conn.whenReadable(step);
        if (n === null) {
          conn.closeWrite().then(finish, finish);
          return;
        }
        total += n;
      }
    } catch {
      // Reset by the peer: nothing to answer.
      finish();
    }
  };
  step();
}

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

/** Shared by every echo connection: filled and emptied without waiting in between. */
const SCRATCH = new Uint8Array(64 * 1024);

/**
 * Serves one connection until the peer closes; resolves when done. Errors (reset) end it quietly. Between
 * data it waits with `whenReadable`: a held connection costs this function's one promise and one callback.
 */
export function serveEcho(conn: StreamConn): Promise<void> {
  return new Promise<void>((resolve) => echoConnection(conn, resolve));
}

/**
 * {@link serveEcho} with a completion callback instead of a promise (the services' form: no promise per
 * connection): `done` is called once, after the connection was closed.
 */
export function echoConnection(conn: StreamConn, done: () => void): void {
  const finish = () => {
    conn.close();
    done();
  };
  const step = (): void => {
    try {
      while (true) {
        const n = conn.tryRead(SCRATCH);
        if (n === null) return finish();
        if (n === 0) return conn.whenReadable(step);
        const queued = conn.tryWrite(SCRATCH.subarray(0, n));
        if (queued < n) {
          // The send buffer is full: keep a copy of the rest and wait (the peer's window is closed).
          conn.write(SCRATCH.slice(queued, n)).then(step, finish);
          return;
        }
      }
    } catch {
      // A reset or abort ends the service for this connection; the stack counts it.
      finish();
    }
  };
  step();
}

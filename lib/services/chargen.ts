/**
 * The character generator service over TCP (RFC 864): sends the rotating 72-character lines of printable
 * ASCII until the caller closes the connection; anything received is discarded. The caller's half-close
 * (FIN, e.g. `ncat host 19 </dev/null`) does not stop it: RFC 864 sends "until the calling user
 * terminates", which for TCP is the connection going away (the peer's reset once it has closed its socket).
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";

/** The chargen port. */
export const CHARGEN_PORT = 19;

const PRINTABLE = 95; // ' ' (32) through '~' (126)
const LINE = 72; // characters per line, then CR LF

/**
 * The RFC 864 pattern: line `i` holds the 72 printable characters starting at offset `i mod 95`.
 * One period is 95 lines, so it is built once and sent in chunks from a cyclic position.
 */
export function chargenPattern(): Uint8Array {
  const period = new Uint8Array(PRINTABLE * (LINE + 2));
  let at = 0;
  for (let line = 0; line < PRINTABLE; line++) {
    for (let c = 0; c < LINE; c++) period[at++] = 32 + ((line + c) % PRINTABLE);
    period[at++] = 13;
    period[at++] = 10;
  }
  return period;
}

const PATTERN = chargenPattern();

/**
 * Serves one connection: writes `chunkSize`-byte pieces of the pattern while the writer is ready, until a
 * write fails because the peer closed or reset the connection (or `limitBytes` is reached, for tests).
 * Resolves to the bytes sent.
 */
export async function serveChargen(
  conn: StreamConn,
  options: { chunkSize?: number; limitBytes?: number } = {},
): Promise<number> {
  const chunkSize = options.chunkSize ?? 16384;
  const limit = options.limitBytes ?? Infinity;
  // The pattern repeated enough that any chunk is a plain subarray.
  const doubled = new Uint8Array(PATTERN.length * (Math.ceil(chunkSize / PATTERN.length) + 1));
  for (let at = 0; at < doubled.length; at += PATTERN.length) doubled.set(PATTERN, at);
  let sent = 0;
  let reset = false;
  // Drain what the peer sends (RFC 864: data received is thrown away). Its FIN is only a half-close; a
  // reset ends the generator (a write would fail next anyway).
  const stopDrain = new AbortController();
  const drain = conn.readable.pipeTo(new WritableStream(), { signal: stopDrain.signal }).catch(() => {
    reset = true;
  });
  const writer = conn.writable.getWriter();
  try {
    while (!reset && sent < limit) {
      await writer.ready;
      const offset = sent % PATTERN.length;
      const size = Math.min(chunkSize, limit - sent);
      // Each chunk is a fresh copy: the stream may hold it until the stack has sent it.
      await writer.write(doubled.slice(offset, offset + size));
      sent += size;
    }
    if (sent >= limit) await writer.close();
  } catch {
    // The peer reset or closed: done.
  } finally {
    writer.releaseLock();
    stopDrain.abort();
    await drain;
    conn.close();
  }
  return sent;
}

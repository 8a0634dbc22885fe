/**
 * The character generator service over TCP (RFC 864): sends the rotating 72-character lines of printable
 * ASCII until the caller closes the connection; anything received is discarded. The caller's half-close
 * (FIN, e.g. `ncat host 19 </dev/null`) does not stop it: RFC 864 sends "until the calling user
 * terminates", which for TCP is the connection going away (the peer's reset once it has closed its socket).
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";
import { drain } from "./discard.ts";

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

/** The pattern repeated so that any chunk of up to `chunkSize` bytes from any offset is one subarray. */
function repeated(chunkSize: number): Uint8Array {
  const doubled = new Uint8Array(PATTERN.length * (Math.ceil(chunkSize / PATTERN.length) + 1));
  for (let at = 0; at < doubled.length; at += PATTERN.length) doubled.set(PATTERN, at);
  return doubled;
}

/** Shared by every connection with the default chunk size: writes copy out of it, nothing writes in. */
const DEFAULT_CHUNK = 16384;
const REPEATED = repeated(DEFAULT_CHUNK);

/**
 * Serves one connection: writes `chunkSize`-byte pieces of the pattern as the send buffer takes them,
 * until a write fails because the peer closed or reset the connection (or `limitBytes` is reached, for
 * tests). Resolves to the bytes sent. Chunks are subarrays of one pattern buffer shared by all
 * connections (the stack copies what it takes), so a connection holds no buffer of its own.
 */
export async function serveChargen(
  conn: StreamConn,
  options: { chunkSize?: number; limitBytes?: number } = {},
): Promise<number> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  const limit = options.limitBytes ?? Infinity;
  const pattern = chunkSize === DEFAULT_CHUNK ? REPEATED : repeated(chunkSize);
  let sent = 0;
  let reset = false;
  // Drain what the peer sends (RFC 864: data received is thrown away). Its FIN is only a half-close; a
  // reset ends the generator (a write would fail next anyway).
  const drained = drain(conn).catch(() => {
    reset = true;
  });
  try {
    while (!reset && sent < limit) {
      const offset = sent % PATTERN.length;
      const chunk = pattern.subarray(offset, offset + Math.min(chunkSize, limit - sent));
      const queued = conn.tryWrite(chunk);
      // The send buffer is full: wait until it took the rest of this chunk.
      if (queued < chunk.length) await conn.write(chunk.subarray(queued));
      sent += chunk.length;
    }
    if (sent >= limit) await conn.closeWrite();
  } catch {
    // The peer reset or closed: done.
  } finally {
    conn.close();
    await drained;
  }
  return sent;
}

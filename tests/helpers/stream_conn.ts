/**
 * Two connected in-memory {@link StreamConn}s for testing services without a network: what one writes,
 * the other reads; closing the writable of one ends the readable of the other (a FIN).
 *
 * @module
 */

import type { StreamConn } from "../../lib/services/conn.ts";

function end(
  local: number,
  remote: number,
  toPeer: TransformStream<Uint8Array, Uint8Array>,
  fromPeer: TransformStream<Uint8Array, Uint8Array>,
): StreamConn {
  const conn: StreamConn = {
    localAddr: { transport: "tcp", hostname: "10.0.0.2", port: local },
    remoteAddr: { transport: "tcp", hostname: "10.0.0.1", port: remote },
    readable: fromPeer.readable,
    writable: toPeer.writable,
    async closeWrite() {
      await toPeer.writable.close().catch(() => {});
    },
    close() {
      // Ends our sending side, like a FIN; a reader still attached keeps its lock until it finishes.
      toPeer.writable.close().catch(() => {});
      fromPeer.readable.cancel().catch(() => {});
    },
  };
  return conn;
}

/** Makes a connected pair: `[client, server]`. */
export function streamConnPair(): [StreamConn, StreamConn] {
  const clientToServer = new TransformStream<Uint8Array, Uint8Array>();
  const serverToClient = new TransformStream<Uint8Array, Uint8Array>();
  return [end(40000, 80, clientToServer, serverToClient), end(80, 40000, serverToClient, clientToServer)];
}

/** Reads a stream to its end and concatenates the chunks. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) (out.set(c, at), at += c.length);
  return out;
}

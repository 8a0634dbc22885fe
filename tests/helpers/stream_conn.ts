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
  // read()/write() take a reader and a writer on first use, as a service using them never touches the
  // streams; a chunk read but not yet taken waits in `pending`.
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  let pending: Uint8Array = new Uint8Array(0);
  let ended = false;
  const tryRead = (p: Uint8Array): number | null => {
    if (pending.length > 0) {
      const n = Math.min(p.length, pending.length);
      p.set(pending.subarray(0, n));
      pending = pending.subarray(n);
      return n;
    }
    return ended ? null : 0;
  };
  const closeWriting = () => (writer ?? toPeer.writable).close().catch(() => {});
  const conn: StreamConn = {
    localAddr: { transport: "tcp", hostname: "10.0.0.2", port: local },
    remoteAddr: { transport: "tcp", hostname: "10.0.0.1", port: remote },
    readable: fromPeer.readable,
    writable: toPeer.writable,
    async read(p) {
      while (true) {
        const n = tryRead(p);
        if (n !== 0 || (p.length === 0 && pending.length > 0)) return n;
        reader ??= fromPeer.readable.getReader();
        const { value, done } = await reader.read();
        if (done) ended = true;
        else pending = value;
      }
    },
    tryRead,
    whenReadable(callback) {
      conn.read(new Uint8Array(0)).then(callback, callback);
    },
    async write(p) {
      writer ??= toPeer.writable.getWriter();
      await writer.write(p.slice());
      return p.length;
    },
    tryWrite(p) {
      writer ??= toPeer.writable.getWriter();
      // Backpressure like a full send buffer: nothing is taken while the stream's queue is full.
      const room = writer.desiredSize;
      if (room === null) throw new Deno.errors.ConnectionReset("the peer closed");
      if (room <= 0) return 0;
      writer.write(p.slice()).catch(() => {});
      return p.length;
    },
    async closeWrite() {
      await closeWriting();
    },
    close() {
      // Ends our sending side, like a FIN; a reader still attached keeps its lock until it finishes.
      closeWriting();
      ended = true;
      (reader ?? fromPeer.readable).cancel().catch(() => {});
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

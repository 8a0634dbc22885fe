/**
 * The Linux kernel's TCP as a test peer: this script runs inside a test namespace (`ip netns exec`) and
 * uses Deno's own sockets against the stack, printing one JSON line with what it observed.
 *
 * Usage: deno run -A tcp_peer.ts MODE [ARGS…]
 *   echo HOST PORT BYTES [CONNECTIONS]  send BYTES of random data on each connection, half-close, read the echo
 *   discard HOST PORT BYTES             send BYTES, half-close, wait for the close
 *   chargen HOST PORT BYTES             read BYTES, then close
 *   connect HOST PORT                   try to connect; report the error name
 *   serve HOST PORT BYTES               accept one connection, send BYTES, read until EOF, report both hashes
 *
 * @module
 */

const [mode, host, portText, bytesText, countText] = Deno.args;
const port = Number(portText);
const bytes = Number(bytesText ?? "0");

async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  return out;
}

async function readAll(conn: Deno.Conn, limit = Infinity): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(1 << 18);
  while (total < limit) {
    const n = await conn.read(limit - total < buf.length ? buf.subarray(0, limit - total) : buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) (out.set(c, at), at += c.length);
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) {
    at += await conn.write(data.subarray(at, Math.min(data.length, at + (1 << 20))));
  }
}

async function echoOnce(data: Uint8Array): Promise<{ sent: string; received: string; length: number }> {
  const conn = await Deno.connect({ hostname: host, port });
  const reading = readAll(conn);
  await writeAll(conn, data);
  await conn.closeWrite();
  const received = await reading;
  conn.close();
  return { sent: await sha256(data), received: await sha256(received), length: received.length };
}

const started = performance.now();
const seconds = () => (performance.now() - started) / 1000;
let result: Record<string, unknown>;
switch (mode) {
  case "echo": {
    const connections = Number(countText ?? "1");
    const data = randomBytes(bytes);
    const results = await Promise.all(Array.from({ length: connections }, () => echoOnce(data)));
    const matching = results.filter((r) => r.sent === r.received && r.length === bytes).length;
    result = { matching, connections, seconds: seconds() };
    break;
  }
  case "discard": {
    const conn = await Deno.connect({ hostname: host, port });
    const chunk = randomBytes(1 << 20);
    let sent = 0;
    while (sent < bytes) {
      const piece = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
      await writeAll(conn, piece);
      sent += piece.length;
    }
    await conn.closeWrite();
    const rest = await readAll(conn);
    conn.close();
    const s = seconds();
    result = { sent, echoed: rest.length, seconds: s, gbits: (sent * 8) / s / 1e9 };
    break;
  }
  case "chargen": {
    const conn = await Deno.connect({ hostname: host, port });
    const data = await readAll(conn, bytes);
    conn.close();
    const s = seconds();
    result = {
      received: data.length,
      head: new TextDecoder().decode(data.subarray(0, 74)),
      seconds: s,
      gbits: (data.length * 8) / s / 1e9,
    };
    break;
  }
  case "connect": {
    try {
      const conn = await Deno.connect({ hostname: host, port });
      conn.close();
      result = { error: null };
    } catch (error) {
      result = { error: (error as Error).name };
    }
    break;
  }
  case "serve": {
    const listener = Deno.listen({ hostname: host, port });
    console.log(JSON.stringify({ listening: true }));
    const conn = await listener.accept();
    const data = randomBytes(bytes);
    const reading = readAll(conn);
    await writeAll(conn, data);
    await conn.closeWrite();
    const received = await reading;
    conn.close();
    listener.close();
    result = {
      sent: await sha256(data),
      received: await sha256(received),
      receivedLength: received.length,
      remote: conn.remoteAddr,
    };
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify(result));

/**
 * The HTTP service against RFC 9110/9112 on in-memory connections: bare-LF requests, Date, Host rules,
 * 414 vs 431, CONNECT and unknown methods, the HTTP/2 preface, request deadline, idle timeout, fixed
 * resources for load tools, and the connection pool's eviction of idle keep-alive connections.
 */

import assert from "node:assert/strict";
import { HttpCounters, httpDate, type HttpServerOptions, serveHttp } from "../../lib/services/http.ts";
import { MAX_BYTES_RESOURCE, STATIC_PAGE, statusSite } from "../../lib/services/status_site.ts";
import { chargenPattern } from "../../lib/services/chargen.ts";
import { ConnectionPool, SLOW_REQUEST_MS } from "../../lib/services/pool.ts";
import { readAll, streamConnPair } from "../helpers/stream_conn.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);
const site = statusSite(() => ({ address: "10.0.0.2/24" }));
/** 2026-01-02 03:04:05 UTC. */
const CLOCK = Date.UTC(2026, 0, 2, 3, 4, 5);

/** Sends `request` without closing our side, and reads until the server closes. */
async function exchange(request: string | Uint8Array, options: HttpServerOptions = {}) {
  const [client, server] = streamConnPair();
  const served = serveHttp(server, site, { idleTimeoutMs: 2000, wallClock: () => CLOCK, ...options });
  const writer = client.writable.getWriter();
  const response = readAll(client.readable);
  await writer.write(typeof request === "string" ? text(request) : request);
  const bytes = await response;
  await writer.close().catch(() => {});
  return { bytes, response: str(bytes), served: await served };
}

Deno.test("http: a request typed with bare LF line ends (nc) is answered at once (RFC 9112 §2.2)", async () => {
  // The client keeps its side open, as `(printf ...; sleep 15) | nc` does: the answer must not wait.
  const { response } = await exchange("GET /nope HTTP/1.0\n\n");
  assert.match(response, /^HTTP\/1\.1 404 Not Found\r\n/);
  const ok = await exchange("GET /static.html HTTP/1.1\nHost: x\nConnection: close\n\n");
  assert.match(ok.response, /^HTTP\/1\.1 200 OK\r\n/);
  assert.ok(ok.response.endsWith(STATIC_PAGE));
  // A bare CR is not a line end (RFC 9112 §2.2): 400.
  assert.match((await exchange("GET / HTTP/1.1\rHost: x\r\n\r\n")).response, /^HTTP\/1\.1 400 /);
});

Deno.test("http: every response carries Date in IMF-fixdate from the given clock (RFC 9110 §6.6.1)", async () => {
  assert.equal(httpDate(CLOCK), "Fri, 02 Jan 2026 03:04:05 GMT");
  for (
    const request of [
      "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
      "garbage\r\n\r\n",
    ]
  ) {
    const { response } = await exchange(request);
    assert.match(response, /\r\nDate: Fri, 02 Jan 2026 03:04:05 GMT\r\n/, request);
  }
});

Deno.test("http: two Host fields or an invalid Host value get 400 (RFC 9112 §3.2)", async () => {
  const two = await exchange("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  assert.match(two.response, /^HTTP\/1\.1 400 /);
  assert.match(two.response, /more than one Host/);
  assert.equal(two.served, 0);
  assert.match((await exchange("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n")).response, /^HTTP\/1\.1 400 /);
  assert.match((await exchange("GET / HTTP/1.1\r\nHost: a b\r\n\r\n")).response, /^HTTP\/1\.1 400 /);
  // An empty Host and host:port are valid.
  assert.match(
    (await exchange("GET / HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n")).response,
    /^HTTP\/1\.1 200 /,
  );
  assert.match(
    (await exchange("GET / HTTP/1.1\r\nHost: [fd00::2]:80\r\nConnection: close\r\n\r\n")).response,
    /^HTTP\/1\.1 200 /,
  );
});

Deno.test("http: a 10 KB request target gets 414, oversized fields 431", async () => {
  const long = await exchange(`GET /${"a".repeat(10_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.match(long.response, /^HTTP\/1\.1 414 URI Too Long\r\n/);
  // Also when the request line has not ended yet (the client is still sending it).
  assert.match((await exchange(`GET /${"a".repeat(10_000)}`)).response, /^HTTP\/1\.1 414 /);
  const fields = Array.from({ length: 40 }, (_, i) => `X-${i}: ${"b".repeat(500)}\r\n`).join("");
  assert.match(
    (await exchange(`GET / HTTP/1.1\r\nHost: x\r\n${fields}\r\n`)).response,
    /^HTTP\/1\.1 431 /,
  );
});

Deno.test("http: CONNECT and unknown methods get 501, known ones 405 with Allow (RFC 9110 §9.1)", async () => {
  const connect = await exchange("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  assert.match(connect.response, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  assert.match((await exchange("BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")).response, /^HTTP\/1\.1 501 /);
  for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
    const { response } = await exchange(`${method} / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n`);
    assert.match(response, /^HTTP\/1\.1 405 /, method);
    assert.match(response, /\r\nAllow: GET, HEAD\r\n/, method);
  }
});

Deno.test("http: an HTTP/2 prior-knowledge preface gets SETTINGS and GOAWAY HTTP_1_1_REQUIRED, then close", async () => {
  const counters = new HttpCounters();
  const preface = text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  // The client's SETTINGS frame follows the preface at once (h2load, nghttp, curl do so).
  const settings = new Uint8Array([0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
  const request = new Uint8Array([...preface, ...settings]);
  const { bytes } = await exchange(request, { counters });
  assert.deepEqual(
    [...bytes],
    [0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0d],
  );
  assert.equal(counters.http2Refused, 1);
});

Deno.test("http: a slowly typed request is served; one not complete in time gets 408 (slowloris)", async () => {
  const [client, server] = streamConnPair();
  const served = serveHttp(server, site, { requestTimeoutMs: 5000, wallClock: () => CLOCK });
  const writer = client.writable.getWriter();
  const response = readAll(client.readable);
  for (const c of "GET /static.html HTTP/1.1\nHost: x\nConnection: close\n\n") {
    await writer.write(text(c));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.match(str(await response), /^HTTP\/1\.1 200 /);
  await writer.close();
  assert.equal(await served, 1);

  const counters = new HttpCounters();
  const slow = await exchange("GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n", { requestTimeoutMs: 100, counters });
  assert.match(slow.response, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.equal(counters.requestTimeouts, 1);
});

Deno.test("http: an idle keep-alive connection is closed after the idle timeout and counted", async () => {
  const counters = new HttpCounters();
  const { response, served } = await exchange("GET /static.html HTTP/1.1\r\nHost: x\r\n\r\n", {
    idleTimeoutMs: 50,
    counters,
  });
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.match(response, /\r\nConnection: keep-alive\r\n/);
  assert.equal(served, 1);
  assert.equal(counters.idleTimeouts, 1);
});

Deno.test("http: /static.html has a constant length; /bytes/N is N bytes of the chargen pattern", async () => {
  const pipelined = "GET /static.html HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3) +
    "GET /bytes/200000 HTTP/1.1\r\nHost: x\r\n\r\n" +
    "HEAD /bytes/5 HTTP/1.1\r\nHost: x\r\n\r\n" +
    `GET /bytes/${MAX_BYTES_RESOURCE + 1} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
  const { bytes, served } = await exchange(pipelined);
  assert.equal(served, 6);
  const all = str(bytes);
  const statics = all.split(STATIC_PAGE);
  assert.equal(statics.length, 4);
  const staticLength = `Content-Length: ${text(STATIC_PAGE).length}`;
  assert.deepEqual(all.match(/Content-Length: \d+/g)!.slice(0, 3), [
    staticLength,
    staticLength,
    staticLength,
  ]);
  const headEnd = all.indexOf("\r\n\r\n", all.indexOf("Content-Length: 200000")) + 4;
  const body = bytes.subarray(headEnd, headEnd + 200_000);
  const pattern = chargenPattern();
  for (let i = 0; i < body.length; i += 331) assert.equal(body[i], pattern[i % pattern.length], `byte ${i}`);
  const rest = str(bytes.subarray(headEnd + 200_000));
  assert.match(rest, /^HTTP\/1\.1 200 OK\r\n[^]*Content-Length: 5\r\n[^]*\r\n\r\nHTTP\/1\.1 400 /);
});

Deno.test("http: Expect: 100-continue gets 100 Continue before the body is sent (RFC 9110 §10.1.1)", async () => {
  const [client, server] = streamConnPair();
  const served = serveHttp(server, site, { wallClock: () => CLOCK });
  const writer = client.writable.getWriter();
  const reader = client.readable.getReader();
  await writer.write(
    text("GET /static.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
  );
  assert.equal(str((await reader.read()).value!), "HTTP/1.1 100 Continue\r\n\r\n");
  await writer.write(text("hello"));
  await writer.close();
  let rest = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    rest += str(value);
  }
  assert.match(rest, /^HTTP\/1\.1 200 OK\r\n/);
  assert.equal(await served, 1);
});

Deno.test("pool: admits up to the bound, evicts the longest idle first, refuses when all are busy", () => {
  const pool = new ConnectionPool(2);
  const a = pool.admit()!;
  const b = pool.admit()!;
  assert.equal(pool.active, 2);
  assert.equal(pool.admit(), null, "both busy: refused");
  assert.equal(pool.refused, 1);
  b.idle = true;
  a.idle = true; // idle later than b
  const c = pool.admit()!;
  assert.ok(b.signal.aborted && !a.signal.aborted, "the longest idle goes first");
  assert.equal(pool.idleClosed, 1);
  pool.release(b); // its service ends later: no effect on the count
  assert.equal(pool.active, 2);
  pool.release(c);
  assert.equal(pool.active, 1);
  assert.deepEqual(pool.stats(), {
    max: 2,
    active: 1,
    accepted: 3,
    refused: 1,
    idleClosed: 1,
    slowClosed: 0,
  });
});

Deno.test("pool: full of busy connections, a request trickling for over a second loses its place (slowloris)", async () => {
  const pool = new ConnectionPool(2);
  const a = pool.admit()!;
  const b = pool.admit()!;
  a.reading = true;
  assert.equal(pool.admit(), null, "a request arriving for less than a second is not slow yet");
  await new Promise((resolve) => setTimeout(resolve, 20));
  b.reading = true;
  b.reading = true; // still the same request: its start does not move
  const started = performance.now();
  while (performance.now() - started < SLOW_REQUEST_MS) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // Both are slow now: the one arriving the longest goes first, then the other; then nothing is left.
  assert.notEqual(pool.admit(), null);
  assert.ok(a.signal.aborted && !b.signal.aborted, "the oldest request goes first");
  assert.notEqual(pool.admit(), null);
  assert.ok(b.signal.aborted);
  assert.equal(pool.admit(), null, "the newcomers are busy, not slow: refused");
  assert.equal(pool.slowClosed, 2);
  assert.equal(pool.refused, 2);
  // An idle connection goes before a slow one.
  const pool2 = new ConnectionPool(2);
  const slow = pool2.admit()!;
  const idle = pool2.admit()!;
  slow.reading = true;
  (slow as unknown as { readingSince: number }).readingSince -= 2 * SLOW_REQUEST_MS;
  idle.idle = true;
  pool2.admit();
  assert.ok(idle.signal.aborted && !slow.signal.aborted);
  assert.deepEqual([pool2.idleClosed, pool2.slowClosed], [1, 0]);
});

Deno.test("http: a request trickling when its place is taken is answered 408 and closed", async () => {
  const pool = new ConnectionPool(1);
  const counters = new HttpCounters();
  const [client, server] = streamConnPair();
  const slot = pool.admit()!;
  const served = serveHttp(server, site, { slot, counters, wallClock: () => CLOCK }).finally(() =>
    pool.release(slot)
  );
  const writer = client.writable.getWriter();
  const response = readAll(client.readable);
  await writer.write(text("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: a"));
  while (!slot.reading) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(slot.idle, false);
  (slot as unknown as { readingSince: number }).readingSince -= 2 * SLOW_REQUEST_MS;
  assert.notEqual(pool.admit(), null, "the newcomer takes the slow request's place");
  assert.match(str(await response), /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.equal(await served, 0);
  await writer.close().catch(() => {});
  assert.equal(counters.requestTimeouts, 1);
  assert.equal(pool.slowClosed, 1);
});

Deno.test("http: an idle keep-alive connection evicted from the pool is closed without a response", async () => {
  const pool = new ConnectionPool(1);
  const [client, server] = streamConnPair();
  const slot = pool.admit()!;
  const served = serveHttp(server, site, { slot, wallClock: () => CLOCK }).finally(() => pool.release(slot));
  const writer = client.writable.getWriter();
  const response = readAll(client.readable);
  await writer.write(text("GET /static.html HTTP/1.1\r\nHost: x\r\n\r\n"));
  while (!slot.idle) await new Promise((resolve) => setTimeout(resolve, 1));
  const newcomer = pool.admit();
  assert.notEqual(newcomer, null);
  const bytes = str(await response); // ends: the server closed the idle connection
  assert.equal(bytes.split("HTTP/1.1 200").length, 2);
  assert.equal(await served, 1);
  await writer.close().catch(() => {});
  assert.equal(pool.idleClosed, 1);
});

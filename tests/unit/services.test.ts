/** The TCP services (echo, discard, chargen, HTTP) on in-memory connections. */

import assert from "node:assert/strict";
import { serveEcho } from "../../lib/services/echo.ts";
import { serveDiscard } from "../../lib/services/discard.ts";
import { chargenPattern, serveChargen } from "../../lib/services/chargen.ts";
import { serveHttp } from "../../lib/services/http.ts";
import { statusSite } from "../../lib/services/status_site.ts";
import { readAll, streamConnPair } from "../helpers/stream_conn.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("echo: returns every byte and closes after the peer's half-close", async () => {
  const [client, server] = streamConnPair();
  const served = serveEcho(server);
  const data = new Uint8Array(100_000).map((_, i) => (i * 2654435761) >>> 24);
  const writer = client.writable.getWriter();
  const received = readAll(client.readable);
  for (let at = 0; at < data.length; at += 7000) await writer.write(data.slice(at, at + 7000));
  await writer.close();
  assert.deepEqual(await received, data);
  await served;
});

Deno.test("discard: swallows everything, then closes", async () => {
  const [client, server] = streamConnPair();
  const served = serveDiscard(server);
  const writer = client.writable.getWriter();
  await writer.write(new Uint8Array(5000));
  await writer.write(new Uint8Array(3000));
  await writer.close();
  assert.equal(await served, 8000);
  assert.equal((await readAll(client.readable)).length, 0);
});

Deno.test("chargen: the pattern follows RFC 864 (72 characters rotating by one per line)", () => {
  const pattern = chargenPattern();
  const lines = str(pattern).split("\r\n");
  const line = (n: number) =>
    Array.from({ length: 72 }, (_, i) => String.fromCharCode(32 + ((n + i) % 95))).join("");
  assert.equal(lines[0], line(0)); // " !\"#$%&'()*+,-./0123…" through "g"
  assert.equal(lines[94], line(94));
  assert.equal(lines[0].length, 72);
  assert.equal(lines[1], lines[0].slice(1) + String.fromCharCode(32 + 72));
  assert.equal(lines.length - 1, 95);
});

Deno.test("chargen: streams the pattern cyclically and stops at the limit", async () => {
  const [client, server] = streamConnPair();
  const limit = 100_000;
  const served = serveChargen(server, { chunkSize: 1000, limitBytes: limit });
  const received = await readAll(client.readable);
  assert.equal(await served, limit);
  const pattern = chargenPattern();
  assert.equal(received.length, limit);
  for (let i = 0; i < limit; i += 997) assert.equal(received[i], pattern[i % pattern.length], `byte ${i}`);
});

Deno.test("chargen: goes on after the caller's half-close, and stops when it closes (RFC 864)", async () => {
  const [client, server] = streamConnPair();
  const served = serveChargen(server, { chunkSize: 512 });
  const reader = client.readable.getReader();
  let got = 0;
  while (got < 10_000) got += (await reader.read()).value!.length;
  await client.closeWrite();
  // `ncat host 19 </dev/null`: the FIN is only a half-close; the caller still reads.
  while (got < 200_000) got += (await reader.read()).value!.length;
  reader.releaseLock();
  client.close();
  const sent = await served;
  assert.ok(sent >= 200_000, `sent ${sent}`);
});

async function http(
  requests: string,
  site = statusSite(() => ({ address: "10.0.0.2/24", tcp: { segments: 3 } })),
) {
  const [client, server] = streamConnPair();
  const served = serveHttp(server, site, { idleTimeoutMs: 2000 });
  const writer = client.writable.getWriter();
  await writer.write(text(requests));
  await writer.close();
  const response = str(await readAll(client.readable));
  return { response, served: await served };
}

Deno.test("http: GET / is an HTML page, GET /stats valid JSON, keep-alive serves both", async () => {
  const { response, served } = await http(
    "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /stats?pretty HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assert.equal(served, 2);
  const [first, second] = response.split(/(?=HTTP\/1\.1 )/);
  assert.match(first, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(first, /\r\nContent-Type: text\/html/);
  assert.match(first, /\r\nConnection: keep-alive/);
  assert.match(first, /<h1>netstack/);
  const length = Number(/Content-Length: (\d+)/.exec(first)![1]);
  assert.equal(new TextEncoder().encode(first.split("\r\n\r\n")[1]).length, length);
  assert.match(second, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(second, /\r\nConnection: close/);
  assert.deepEqual(JSON.parse(second.split("\r\n\r\n")[1]), { address: "10.0.0.2/24", tcp: { segments: 3 } });
});

Deno.test("http: 404, 405 with Allow, HEAD without a body", async () => {
  assert.match(
    (await http("GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).response,
    /^HTTP\/1\.1 404 /,
  );
  const post =
    (await http("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")).response;
  assert.match(post, /^HTTP\/1\.1 405 /);
  assert.match(post, /\r\nAllow: GET, HEAD/);
  const head = (await http("HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).response;
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.ok(Number(/Content-Length: (\d+)/.exec(head)![1]) > 0);
  assert.equal(head.split("\r\n\r\n")[1], "");
});

Deno.test("http: malformed requests get 400 and the connection closes", async () => {
  for (
    const bad of [
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n", // no Host
      "GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
      "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
  ) {
    const { response, served } = await http(bad + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(response, /^HTTP\/1\.1 400 /, JSON.stringify(bad));
    assert.match(response, /\r\nConnection: close/);
    assert.equal(served, 0);
    assert.equal(response.match(/HTTP\/1\.1 /g)!.length, 1, "nothing after the error");
  }
});

Deno.test("http: other versions get 505, chunked bodies 501, huge headers 431", async () => {
  assert.match((await http("GET / HTTP/2.0\r\nHost: x\r\n\r\n")).response, /^HTTP\/1\.1 505 /);
  assert.match((await http("GET / HTTP/3.0\r\nHost: x\r\n\r\n")).response, /^HTTP\/1\.1 505 /);
  // RFC 9110 §6.2: a higher minor version is served as the highest we implement.
  assert.match((await http("GET / HTTP/1.7\r\nHost: x\r\n\r\n")).response, /^HTTP\/1\.1 200 /);
  assert.match(
    (await http("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")).response,
    /^HTTP\/1\.1 501 /,
  );
  assert.match(
    (await http(`GET / HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(20_000)}\r\n\r\n`)).response,
    /^HTTP\/1\.1 431 /,
  );
});

Deno.test("http: HTTP/1.0 closes unless keep-alive is asked for", async () => {
  const { response, served } = await http("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
  assert.equal(served, 1);
  assert.match(response, /\r\nConnection: close/);
  const kept = await http("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
  assert.equal(kept.served, 2);
});

Deno.test("http: a request split across many small chunks is reassembled", async () => {
  const [client, server] = streamConnPair();
  const served = serveHttp(server, statusSite(() => ({ ok: true })));
  const writer = client.writable.getWriter();
  const response = readAll(client.readable);
  for (const c of "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") await writer.write(text(c));
  await writer.close();
  assert.match(str(await response), /\{\s*"ok": true\s*\}/);
  assert.equal(await served, 1);
});

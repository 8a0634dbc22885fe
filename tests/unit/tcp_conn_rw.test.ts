/** TcpConn's read/write path (no streams) and the echo service over it, on the simulated network. */

import assert from "node:assert/strict";
import { SimNetwork } from "../helpers/tcp_sim.ts";
import { TcpConn, TcpConnListener } from "../../lib/stack/tcp_conn.ts";
import { serveEcho } from "../../lib/services/echo.ts";

const text = (s: string) => new TextEncoder().encode(s);

/** Advances the simulation 1 ms at a time, letting promises run, until `done` holds (bounded). */
async function drive(net: SimNetwork, done: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !done(); i++) {
    net.advance(1);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.ok(done(), "the simulation did not get there");
}

function open() {
  const net = new SimNetwork(7);
  const listener = net.b.tcp.listen(7);
  const client = net.a.tcp.connect(net.a.address, net.b.address, 7, net.now);
  net.run(() => listener.acceptable > 0 && client.state === "ESTABLISHED", 1000);
  return { net, client, server: new TcpConn(listener.accept()!) };
}

Deno.test("TcpConn: read(empty) waits for data without taking it; tryRead/tryWrite never wait; null at FIN", async () => {
  const { net, client, server } = open();
  assert.equal(server.tryRead(new Uint8Array(8)), 0, "nothing there yet");
  let woke: number | null | undefined;
  const waiting = server.read(new Uint8Array(0)).then((n) => (woke = n));
  await drive(net, () => true);
  assert.equal(woke, undefined, "still waiting");
  client.send(text("hello"));
  await drive(net, () => woke !== undefined);
  await waiting;
  assert.equal(woke, 0, "an empty read resolves to 0 once data is there");
  const buf = new Uint8Array(3);
  assert.equal(server.tryRead(buf), 3);
  assert.equal(new TextDecoder().decode(buf), "hel");
  assert.equal(await server.read(buf), 2, "the rest at once");
  assert.equal(server.tryWrite(text("pong")), 4);
  await drive(net, () => client.readableBytes === 4);
  client.shutdownWrite();
  let end: number | null | undefined;
  const ending = server.read(buf).then((n) => (end = n));
  await drive(net, () => end !== undefined);
  await ending;
  assert.equal(end, null, "the peer's FIN ends reading");
  server.close();
  assert.throws(() => server.tryWrite(text("x")), Deno.errors.BrokenPipe);
});

Deno.test("echo over TcpConn: returns the bytes, and closes after the peer's half-close", async () => {
  const { net, client, server } = open();
  const served = serveEcho(server);
  const payload = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff);
  const received = new Uint8Array(payload.length);
  let sent = 0, got = 0;
  await drive(net, () => {
    if (sent < payload.length && client.state === "ESTABLISHED") sent += client.send(payload.subarray(sent));
    const n = client.recv(received.subarray(got));
    if (n !== null) got += n;
    return got === payload.length;
  });
  assert.deepEqual(received, payload);
  client.shutdownWrite();
  await drive(net, () => client.peerClosed);
  await served;
});

Deno.test("TcpConn: whenReadable calls back once data is there, and at the end; never before", async () => {
  const { net, client, server } = open();
  let calls = 0;
  server.whenReadable(() => calls++);
  await drive(net, () => true);
  assert.equal(calls, 0, "nothing there: no call");
  client.send(text("hi"));
  await drive(net, () => calls > 0);
  assert.equal(calls, 1);
  assert.equal(server.tryRead(new Uint8Array(8)), 2);
  server.whenReadable(() => calls++);
  client.shutdownWrite();
  await drive(net, () => calls > 1);
  assert.equal(server.tryRead(new Uint8Array(8)), null, "the FIN: the end");
  server.whenReadable(() => calls++);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(calls, 3, "already at the end: called at once (as a microtask)");
  server.close();
});

Deno.test("TcpConnListener.onConnection: hands over waiting and new connections in order, none after close", async () => {
  const net = new SimNetwork(11);
  const tcpListener = net.b.tcp.listen(7);
  const listener = new TcpConnListener(tcpListener, "10.0.0.2");
  const connect = () => net.a.tcp.connect(net.a.address, net.b.address, 7, net.now);
  const early = connect();
  net.run(() => tcpListener.acceptable === 1, 1000);
  const got: TcpConn[] = [];
  listener.onConnection((conn) => got.push(conn));
  assert.equal(got.length, 0, "handed over after the current turn, not inside the call");
  await drive(net, () => got.length === 1);
  assert.equal(got[0].remoteAddr.port, early.localPort, "the connection that was waiting");
  // Several completing in one stretch: each handed over once, in order.
  const burst = [connect(), connect(), connect()];
  await drive(net, () => got.length === 4);
  assert.deepEqual(got.slice(1).map((c) => c.remoteAddr.port), burst.map((c) => c.localPort));
  // The handed-over connections work like accepted ones.
  burst[0].send(text("hi"));
  const buf = new Uint8Array(8);
  let read = 0;
  await drive(net, () => (read += got[1].tryRead(buf) ?? 0) === 2);
  listener.close();
  const late = connect();
  await drive(net, () => late.state !== "SYN_SENT");
  assert.equal(late.state, "CLOSED", "refused");
  assert.equal(got.length, 4, "nothing after close: the late SYN is refused");
  await assert.rejects(listener.accept(), Deno.errors.BadResource);
});

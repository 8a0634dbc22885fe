/**
 * The TCP layer's bound on connections held at once (`maxConnections`): idle connections hold no buffer,
 * so the memory budget does not bound them; past the bound SYNs are dropped and counted (the peer's
 * retransmission gets in once a place is free) and `connect` throws.
 */

import assert from "node:assert/strict";
import { SimNetwork } from "../helpers/tcp_sim.ts";
import { tcpConnectionBound } from "../../lib/services/mod.ts";

Deno.test("tcp: past maxConnections a SYN is dropped and counted; its retransmission gets in once one closes", () => {
  const net = new SimNetwork(11, {}, { maxConnections: 2 });
  const listener = net.b.tcp.listen(9);
  const clients = [0, 1, 2].map(() => net.a.tcp.connect(net.a.address, net.b.address, 9, net.now));
  net.run(() => clients[0].state === "ESTABLISHED" && clients[1].state === "ESTABLISHED", 500);
  net.advance(200);
  assert.equal(clients[2].state, "SYN_SENT", "the third waits: its SYN was dropped");
  const stats = net.b.tcp.stats();
  assert.ok(stats.drops["connection-limit"] >= 1);
  assert.equal(stats.maxConnections, 2);
  assert.equal(net.b.tcp.connectionCount, 2);
  assert.throws(() => net.b.tcp.connect(net.b.address, net.a.address, 5000, net.now), /connection bound/);
  assert.equal(net.b.tcp.stats().connectsRefused, 1);
  // One server connection goes away (reset): the SYN's retransmission (1 s) finds a place.
  const first = listener.accept()!;
  first.abort();
  net.run(() => clients[2].state === "ESTABLISHED", 5000);
  assert.equal(clients[2].state, "ESTABLISHED");
});

Deno.test("services: the TCP bound leaves room for two full services, and never falls below 65536", () => {
  assert.equal(tcpConnectionBound(256), 65536);
  assert.equal(tcpConnectionBound(100_000), 200_000);
});

/**
 * `deno task bench:tcp-timers`: what a TCP layer's poll costs with many connections open. Two TcpLayers
 * over an in-memory wire with a virtual clock: N idle established connections (keepalive on, so each has
 * a far deadline queued, as a server's held connections do), plus one active connection sending a byte
 * every millisecond, whose delayed ACKs and retransmission timer make a deadline due at almost every
 * poll. Prints the wall time per poll of the server's layer: with a timer heap it should not grow with N.
 * Usage: deno run -A scripts/bench_tcp_timers.ts [N=100000] [polls=2000]
 *
 * @module
 */

import type { Ipv4Datagram } from "../lib/iface/protocol.ts";
import { TcpLayer } from "../lib/tcp/layer.ts";
import type { TcpConnection } from "../lib/tcp/connection.ts";
import { Ipv4Packet } from "../lib/wire/ipv4.ts";
import { Prng } from "../lib/prng.ts";
import { Wire } from "./bench_tcp_sim.ts";

/** Opens `n` idle connections plus one active one; returns µs per server poll over `polls` steps. */
export function pollCost(n: number, polls: number): { usPerPoll: number; open: number } {
  const secret = new Uint8Array(16).fill(5);
  const prng = new Prng(2);
  const options = {
    secret,
    random: () => prng.nextU32(),
    sendBufferSize: 4096,
    recvBufferSize: 4096,
    keepalive: true,
    defaultBacklog: 65535,
    memoryBudget: 2 ** 40,
    maxConnections: n + 16,
  };
  const client = new TcpLayer(options);
  const server = new TcpLayer(options);
  const toServer = new Wire(), toClient = new Wire();
  const datagram: Ipv4Datagram = {
    src: 0,
    dst: 0,
    protocol: 6,
    ttl: 64,
    bytes: new Uint8Array(0),
    payloadOffset: 0,
    payloadEnd: 0,
  };
  const view = new Ipv4Packet();
  const listener = server.listen(7, 65535);
  const accepted: TcpConnection[] = [];
  const sink = new Uint8Array(4096);
  listener.onAcceptable = (l) => {
    for (let c = l.accept(); c !== null; c = l.accept()) {
      accepted.push(c);
      c.onEvent = (conn) => {
        while ((conn.recv(sink) ?? 0) > 0) { /* discard */ }
      };
    }
  };
  let now = 0;
  const exchange = () => {
    for (let i = 0; i < 100; i++) {
      client.poll(now, toServer);
      server.poll(now, toClient);
      const moved = toServer.deliver(server, now, toClient, datagram, view) +
        toClient.deliver(client, now, toServer, datagram, view);
      if (moved === 0) return;
    }
  };
  // The idle connections, from several client addresses (half the 16,384 ephemeral ports per address, so that finding a free one stays quick).
  for (let i = 0; i < n; i++) {
    client.connect(0x0a000100 + (i >> 13), 0x0a000002, 7, now);
    if (i % 512 === 511) exchange();
  }
  exchange();
  const active = client.connect(0x0a0000fe, 0x0a000002, 7, now);
  exchange();
  const open = accepted.length;
  const byte = new Uint8Array(1);
  let spent = 0;
  for (let i = 0; i < polls; i++) {
    now += 1;
    active.send(byte);
    client.poll(now, toServer);
    toServer.deliver(server, now, toClient, datagram, view);
    const t0 = performance.now();
    server.poll(now, toClient);
    spent += performance.now() - t0;
    toClient.deliver(client, now, toServer, datagram, view);
  }
  return { usPerPoll: spent * 1000 / polls, open };
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 100_000);
  const polls = Number(Deno.args[1] ?? 2000);
  pollCost(1000, polls); // JIT warm-up
  for (const count of [0, n]) {
    const t0 = performance.now();
    const { usPerPoll, open } = pollCost(count, polls);
    console.log(
      `${count} idle connections (${open} accepted, +1 active): ${usPerPoll.toFixed(2)} µs per server poll ` +
        `(${polls} polls, one due timer each; set-up ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
}

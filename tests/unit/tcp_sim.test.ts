/**
 * Deterministic simulation: two stack cores on in-memory devices joined by a link with a virtual clock and
 * the project's impairment model (seeded loss, reordering, duplication, delay and rate limits). Every failure message carries the seed; replay
 * one with `runTransfer(seed, spec)` from tests/helpers/tcp_sim.ts (or scripts/tcp_soak.ts --seed).
 */

import assert from "node:assert/strict";
import { TcpEvent } from "../../lib/tcp/connection.ts";
import { IsnGenerator } from "../../lib/tcp/isn.ts";
import { Prng } from "../../lib/prng.ts";
import {
  BulkEndpoint,
  type LinkProfile,
  runTransfer,
  SimNetwork,
  type TransferSpec,
} from "../helpers/tcp_sim.ts";

const MiB = 1 << 20;

/** Link profiles exercised by the seeded runs. */
export const PROFILES: Record<string, Partial<LinkProfile>> = {
  clean: { delayMs: 2 },
  loss2: { delayMs: 5, loss: 0.02 },
  reorderDup: { delayMs: 5, jitterMs: 3, reorder: 0.05, reorderDelayMs: 7, duplicate: 0.02 },
  mixed: { delayMs: 10, jitterMs: 2, loss: 0.03, duplicate: 0.01, reorder: 0.03, reorderDelayMs: 15 },
  bottleneck: { delayMs: 10, rateBytesPerMs: 12500, queuePackets: 50 },
  heavyLoss: { delayMs: 3, loss: 0.1 },
};

function check(seed: number, spec: TransferSpec): void {
  const result = runTransfer(seed, spec);
  assert.ok(result.ok, result.failure ?? "");
}

for (const [name, link] of Object.entries(PROFILES)) {
  Deno.test(`tcp sim: 2 MiB each way over ${name}, 5 seeds, CUBIC`, () => {
    for (let seed = 1; seed <= 5; seed++) check(seed, { aToB: 2 * MiB, bToA: 2 * MiB, link });
  });
}

Deno.test("tcp sim: NewReno with and without SACK/timestamps over a lossy, reordering link", () => {
  const link = PROFILES.mixed;
  for (let seed = 11; seed <= 14; seed++) {
    check(seed, { aToB: MiB, bToA: 256 << 10, link, options: { congestionControl: "newreno" } });
    check(seed, {
      aToB: MiB,
      bToA: 256 << 10,
      link,
      options: { congestionControl: "newreno", sack: false, timestamps: false },
    });
  }
});

Deno.test("tcp sim: one side without window scaling, SACK or timestamps (options negotiated away)", () => {
  for (let seed = 21; seed <= 23; seed++) {
    check(seed, {
      aToB: MiB,
      bToA: MiB,
      link: PROFILES.loss2,
      optionsB: { windowScaling: false, sack: false, timestamps: false },
    });
  }
});

Deno.test("tcp sim: 4 MiB transfer with small buffers, a small out-of-order queue and TSO-sized segments", () => {
  check(31, {
    aToB: 4 * MiB,
    bToA: 64 << 10,
    link: PROFILES.mixed,
    options: { sendBufferSize: 64 << 10, recvBufferSize: 48 << 10, maxOutOfOrderRanges: 3 },
  });
  // The mean depends on how many losses the seed's draws hit (each loss brings MSS-sized retransmissions):
  // this seed's run loses few; the assertion is that unhurt sending goes in TSO-sized segments.
  const tso = runTransfer(24, {
    aToB: 4 * MiB,
    bToA: 0,
    link: { delayMs: 2, loss: 0.01 },
    options: { maxSendSegment: 65000 },
  });
  assert.ok(tso.ok, tso.failure ?? "");
  const stats = tso.net.a.tcp.stats();
  assert.ok(
    stats.bytesOut / stats.segmentsOut > 16_000,
    `mean segment ${stats.bytesOut / stats.segmentsOut}`,
  );
});

Deno.test("tcp sim: half-close — one side sends nothing and shuts down first, the other keeps sending", () => {
  for (let seed = 41; seed <= 43; seed++) check(seed, { aToB: 0, bToA: 2 * MiB, link: PROFILES.loss2 });
});

Deno.test("tcp sim: a failing run reports its seed", () => {
  // A link that drops everything cannot complete: the failure names the seed for replay.
  const result = runTransfer(77, { aToB: 1000, bToA: 0, link: { loss: 1 }, limitMs: 10_000 });
  assert.equal(result.ok, false);
  assert.match(result.failure ?? "", /seed=77/);
});

Deno.test("tcp sim: simultaneous open and simultaneous close", () => {
  const net = new SimNetwork(5, { timeWaitMs: 500 });
  net.setLink({ delayMs: 10 });
  const ca = net.a.tcp.connect(net.a.address, net.b.address, 6000, 0, 5000);
  const cb = net.b.tcp.connect(net.b.address, net.a.address, 5000, 0, 6000);
  const states: string[] = [];
  ca.onEvent = () => states.push(ca.state);
  net.run(() => ca.state === "ESTABLISHED" && cb.state === "ESTABLISHED", 5000);
  assert.equal(ca.state, "ESTABLISHED");
  assert.equal(cb.state, "ESTABLISHED");
  // Data both ways.
  const ea = new BulkEndpoint(ca, 100_000, 1, 2, false);
  const eb = new BulkEndpoint(cb, 100_000, 2, 1, false);
  net.run(() => ea.read === 100_000 && eb.read === 100_000, 10_000);
  assert.equal(ea.read, 100_000);
  assert.equal(eb.read, 100_000);
  assert.equal(ea.mismatch ?? eb.mismatch, null);
  // Both close at the same instant: FIN-WAIT-1 → CLOSING → TIME-WAIT on both sides.
  ca.shutdownWrite();
  cb.shutdownWrite();
  const seen = new Set<string>();
  ca.onEvent = () => seen.add(ca.state);
  net.run(() => ca.state === "TIME_WAIT" && cb.state === "TIME_WAIT", 5000);
  assert.equal(ca.state, "TIME_WAIT");
  assert.equal(cb.state, "TIME_WAIT");
  assert.ok(seen.has("CLOSING"), `states seen: ${[...seen]}`);
  net.run(() => net.a.tcp.connectionCount === 0 && net.b.tcp.connectionCount === 0, 5000);
  assert.equal(net.a.tcp.connectionCount + net.b.tcp.connectionCount, 0);
});

Deno.test("tcp sim: sequence numbers wrap around 2^32 on the sending side during a transfer", () => {
  // Choose the connect time so that A's ISS lies 100 000 bytes below 2^32 (RFC 6528 clock component).
  const seed = 9;
  const secretA = new Prng(seed ^ 0x5a5a5a5a).bytes16();
  const base = new IsnGenerator(secretA).isn(0x0a000001, 50000, 0x0a000002, 80, 0);
  const startMs = ((((0x100000000 - 100_000) - base) >>> 0) + 0.5) / 250;
  const net = new SimNetwork(seed, { timeWaitMs: 100 });
  net.setLink({ delayMs: 3, loss: 0.02, reorder: 0.02, reorderDelayMs: 5 });
  net.now = startMs;
  const listener = net.b.tcp.listen(80);
  let server: BulkEndpoint | null = null;
  listener.onAcceptable = (l) => (server = new BulkEndpoint(l.accept()!, 300_000, 4, 3));
  const conn = net.a.tcp.connect(0x0a000001, 0x0a000002, 80, net.now, 50000);
  assert.ok(conn.iss > 0xfff00000, `iss ${conn.iss}`);
  const client = new BulkEndpoint(conn, 300_000, 3, 4);
  net.run(() => client.eof && (server as BulkEndpoint | null)?.eof === true, startMs + 60_000);
  const s = server as BulkEndpoint | null;
  assert.ok(s !== null);
  assert.equal(s.read, 300_000, `seed ${seed}`);
  assert.equal(s.mismatch, null);
  assert.ok(conn.sndNxt < 300_000, "A's sequence numbers wrapped");
});

Deno.test("tcp sim: reset by the peer surfaces as error 'reset' and EOF", () => {
  const net = new SimNetwork(3);
  const listener = net.b.tcp.listen(80);
  const conn = net.a.tcp.connect(net.a.address, net.b.address, 80, 0);
  let events = 0;
  conn.onEvent = (_c, e) => (events |= e);
  net.run(() => listener.acceptable > 0, 1000);
  const server = listener.accept()!;
  server.abort();
  net.run(() => conn.state === "CLOSED", 1000);
  assert.equal(conn.error, "reset");
  assert.ok(events & TcpEvent.CLOSED);
  assert.equal(conn.recv(new Uint8Array(10)), null);
});

Deno.test("tcp sim: segmentation offload — A sends TSO super-segments, the wire carries MSS segments", () => {
  for (let seed = 51; seed <= 53; seed++) {
    const result = runTransfer(seed, {
      aToB: 4 * MiB,
      bToA: 256 << 10,
      link: PROFILES.loss2,
      offloadA: true,
    });
    assert.ok(result.ok, result.failure ?? "");
    const a = result.net.a.tcp.stats();
    // Every ACK releases at least two MSS at once, so the mean emitted segment exceeds 1.5 MSS (the
    // receiver B, without offload, never sends more than one MSS per segment).
    assert.ok(
      a.bytesOut / a.segmentsOut > 1.5 * 1448,
      `A's mean emitted segment ${a.bytesOut / a.segmentsOut}`,
    );
    const b = result.net.b.tcp.stats();
    assert.ok(b.bytesOut / b.segmentsOut <= 1448);
  }
});

Deno.test("tcp sim: 40 concurrent connections to one listener, each verified, over a lossy link", () => {
  const net = new SimNetwork(61, { timeWaitMs: 500 });
  net.setLink(PROFILES.mixed);
  const listener = net.b.tcp.listen(80, 64);
  const servers: BulkEndpoint[] = [];
  listener.onAcceptable = (l) => {
    for (let c = l.accept(); c !== null; c = l.accept()) {
      // Each server echoes nothing but sends its own stream, keyed by the client's port.
      servers.push(new BulkEndpoint(c, 20_000, 100_000 + c.remotePort, c.remotePort));
    }
  };
  const clients: BulkEndpoint[] = [];
  for (let i = 0; i < 40; i++) {
    const c = net.a.tcp.connect(net.a.address, net.b.address, 80, 0);
    clients.push(new BulkEndpoint(c, 50_000, c.localPort, 100_000 + c.localPort));
  }
  const ports = new Set(clients.map((c) => c.connection.localPort));
  assert.equal(ports.size, 40, "distinct ephemeral ports");
  const done = () =>
    servers.length === 40 && clients.every((c) => c.eof) && servers.every((s) => s.eof) &&
    net.a.tcp.connectionCount === 0 && net.b.tcp.connectionCount === 0;
  net.run(done, 120_000);
  assert.ok(done(), `seed 61: ${clients.filter((c) => !c.eof).length} clients unfinished`);
  for (const c of clients) {
    assert.equal(c.read, 20_000);
    assert.equal(c.mismatch, null);
  }
  for (const s of servers) {
    assert.equal(s.read, 50_000);
    assert.equal(s.mismatch, null);
  }
});

Deno.test("tcp sim: burst loss — whole TSO super-segments lost at 5 %, low RTT, with reordering", () => {
  for (let seed = 71; seed <= 73; seed++) {
    check(seed, {
      aToB: 4 * MiB,
      bToA: 256 << 10,
      link: { delayMs: 0.2, loss: 0.05, reorder: 0.02, reorderDelayMs: 0.3 },
      offloadA: true,
      burstLossA: true,
    });
  }
});

Deno.test("tcp sim: regression — both windows full under loss once deadlocked in an ACK storm (soak seed 120197)", () => {
  // Pure ACKs sat exactly at the peer's right window edge and were rejected by both ends (fixed by
  // accepting that edge like Linux, and rate-limiting ACKs for unacceptable pure segments).
  const options = { sendBufferSize: 64 << 10, recvBufferSize: 48 << 10, maxOutOfOrderRanges: 4 };
  check(120197, {
    aToB: 2 << 20,
    bToA: 1 << 20,
    link: { delayMs: 5, jitterMs: 4, reorder: 0.1, reorderDelayMs: 9, duplicate: 0.05 },
    options,
    offloadA: true,
  });
});

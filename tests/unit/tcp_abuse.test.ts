/**
 * TCP under abuse, sans-I/O: RSTs for segments to no connection are rate-limited and counted; SYN cookies
 * when the backlog is full (made, checked, turned into connections); half-open connections given up; the
 * buffers' memory budget, and send buffers autotuned to what is in flight.
 */

import assert from "node:assert/strict";
import { TcpLayer } from "../../lib/tcp/layer.ts";
import { emptyIpv4Datagram } from "../../lib/iface/protocol.ts";
import { TcpFlags, TcpSegment } from "../../lib/wire/tcp.ts";
import { Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { tcpPacket } from "../helpers/fuzz/build.ts";
import { CollectingSink } from "../helpers/packets.ts";
import { readLinkCounters } from "../../lib/phy/link_counters.ts";
import { COOKIE_PERIOD_MS, SynCookies } from "../../lib/tcp/syn_cookie.ts";
import { RIG_LOCAL, RIG_REMOTE, TcpRig } from "../helpers/tcp_packet.ts";
import { MemoryBudget } from "../../lib/tcp/memory_budget.ts";
import { SendBuffer } from "../../lib/tcp/send_buffer.ts";
import { RecvBuffer } from "../../lib/tcp/recv_buffer.ts";

function deliver(layer: TcpLayer, packet: Uint8Array, now: number, out: CollectingSink): void {
  const ip = new Ipv4Packet(packet);
  const d = emptyIpv4Datagram();
  d.src = ip.src;
  d.dst = ip.dst;
  d.protocol = ip.protocol;
  d.bytes = packet;
  d.payloadOffset = ip.headerLength;
  d.payloadEnd = ip.totalLength;
  layer.ingress(d, now, out);
}

function strayAck(i: number): Uint8Array {
  return tcpPacket(0x0a000100 + (i & 0xff), 0x0a000002, {
    srcPort: 1024 + i,
    dstPort: 4001,
    seq: i * 1000,
    ack: 0x12345678 + i,
    flags: TcpFlags.ACK,
    window: 1000,
  });
}

Deno.test("tcp: RSTs for segments to no connection are rate-limited (burst, then the rate), and counted", () => {
  const layer = new TcpLayer({ resetRateLimit: 100, resetBurst: 20 });
  const out = new CollectingSink();
  for (let i = 0; i < 500; i++) deliver(layer, strayAck(i), 1000, out);
  assert.equal(out.packets.length, 20, "the burst goes out at once");
  assert.equal(layer.stats().resetsOut, 20);
  assert.equal(layer.stats().resetsRateLimited, 480);
  assert.equal(layer.stats().drops["no-socket"], 500, "every stray is still counted as a drop");
  // Each RST is the exact answer to its segment (RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>).
  const first = new Ipv4Packet(out.packets[0]);
  const rst = new TcpSegment().wrap(out.packets[0], first.headerLength, first.totalLength);
  assert.equal(rst.flags, TcpFlags.RST);
  assert.equal(rst.seq, 0x12345678);
  out.take();
  // 100 ms later, the bucket has refilled by 10.
  for (let i = 0; i < 50; i++) deliver(layer, strayAck(i), 1100, out);
  assert.equal(out.packets.length, 10);
});

Deno.test("tcp: an ACK to a listening port is answered by a rate-limited RST too", () => {
  const layer = new TcpLayer({ resetRateLimit: 10, resetBurst: 5 });
  layer.listen(80);
  const out = new CollectingSink();
  for (let i = 0; i < 30; i++) {
    deliver(
      layer,
      tcpPacket(0x0a000100 + i, 0x0a000002, {
        srcPort: 2000 + i,
        dstPort: 80,
        seq: 1,
        ack: 2,
        flags: TcpFlags.ACK,
        window: 100,
      }),
      5000,
      out,
    );
  }
  assert.equal(out.packets.length, 5);
  assert.equal(layer.stats().drops["listen-bad-segment"], 30);
  assert.equal(layer.stats().resetsRateLimited, 25);
});

Deno.test("link counters: the kernel's per-interface counters are read from /proc/net/dev", () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  tun0: 1005413   24861    0    7    0     0          0         0  2115684   49196    0 50814    0     0       0          0
`;
  assert.deepEqual(readLinkCounters("tun0", text), {
    rxPackets: 24861,
    rxDropped: 7,
    txPackets: 49196,
    txDropped: 50814,
  });
  assert.equal(readLinkCounters("tun1", text), null);
  assert.ok(readLinkCounters("lo") !== null, "this process's namespace has a loopback");
});

Deno.test("syn cookies: a cookie checks out for its tuple and age only, and carries the MSS", () => {
  const cookies = new SynCookies(new Uint8Array(16).fill(3));
  const now = 5_000_000;
  const cookie = cookies.issue(0x0a000001, 40000, 0x0a000002, 80, 0xdeadbeef, 1460, now);
  assert.equal(cookies.check(0x0a000001, 40000, 0x0a000002, 80, 0xdeadbeef, cookie, now + 10), 1460);
  assert.equal(
    cookies.check(0x0a000001, 40000, 0x0a000002, 80, 0xdeadbeef, cookie, now + COOKIE_PERIOD_MS),
    1460,
  );
  assert.equal(
    cookies.check(0x0a000001, 40000, 0x0a000002, 80, 0xdeadbeef, cookie, now + 3 * COOKIE_PERIOD_MS),
    -1,
  );
  assert.equal(cookies.check(0x0a000001, 40001, 0x0a000002, 80, 0xdeadbeef, cookie, now), -1, "another port");
  assert.equal(cookies.check(0x0a000003, 40000, 0x0a000002, 80, 0xdeadbeef, cookie, now), -1, "another host");
  assert.equal(cookies.check(0x0a000001, 40000, 0x0a000002, 80, 0xdeadceef, cookie, now), -1, "another ISN");
  assert.equal(
    cookies.check(0x0a000001, 40000, 0x0a000002, 80, 0xdeadbeef, (cookie + 0x10000) >>> 0, now),
    -1,
  );
  // MSS values round down to the table (Linux's).
  for (const [mss, expected] of [[9000, 1460], [1452, 1440], [1400, 1300], [1000, 536], [100, 536]]) {
    const c = cookies.issue(1, 2, 3, 4, 5, mss, now);
    assert.equal(cookies.check(1, 2, 3, 4, 5, c, now), expected);
  }
  // Forged cookies are rejected: of 10,000 random guesses, (almost) none passes.
  let passed = 0;
  for (let i = 0; i < 10_000; i++) {
    if (cookies.check(1, 2, 3, 4, 5, Math.floor(Math.random() * 2 ** 32), now) >= 0) passed++;
  }
  assert.ok(passed <= 2, `${passed} forged cookies passed`);
  // The timestamp carries the window scale and SACK-permitted, never ahead of the clock.
  const ts = SynCookies.encodeTimestamp(1_000_000, 7, true);
  assert.ok(ts <= 1_000_000 && 1_000_000 - ts < 64);
  assert.deepEqual(SynCookies.decodeTimestamp(ts, { windowScale: 0, sackPermitted: false }), {
    windowScale: 7,
    sackPermitted: true,
  });
  assert.deepEqual(
    SynCookies.decodeTimestamp(SynCookies.encodeTimestamp(5, -1, false), {
      windowScale: 0,
      sackPermitted: true,
    }),
    {
      windowScale: -1,
      sackPermitted: false,
    },
  );
});

Deno.test("syn cookies: with the backlog full a SYN gets a cookie, and its ACK becomes an accepted connection", () => {
  const rig = new TcpRig();
  rig.now = 1_000_000;
  const listener = rig.layer.listen(80, 1);
  // The first SYN takes the only backlog slot (a half-open connection).
  rig.inject({ srcPort: 1000, flags: "S", seq: 100, options: { mss: 1460 } });
  rig.expectOne({ flags: "S.", ack: 101 });
  // The next one is answered statelessly: a cookie, options carried in the timestamp.
  rig.inject({
    srcPort: 2000,
    flags: "S",
    seq: 5000,
    options: { mss: 1460, wscale: 7, sackOk: true, ts: [777, 0] },
  });
  const synAck = rig.expectOne({ flags: "S.", ack: 5001, mss: 1460, sackOk: true });
  assert.ok(synAck.ts !== null && synAck.ts[1] === 777, "our TSval, and theirs echoed");
  assert.equal(synAck.ts![0] & 0x0f, 7, "the peer's window scale in the low bits");
  assert.equal(rig.layer.stats().syncookiesSent, 1);
  assert.equal(rig.layer.connectionCount, 1, "no state kept for the cookie");
  // The peer's ACK returns the cookie: the connection is made, established and acceptable.
  rig.now += 5;
  rig.inject({
    srcPort: 2000,
    flags: ".",
    seq: 5001,
    ack: synAck.seq + 1,
    window: 100,
    options: { ts: [778, synAck.ts![0]] },
  });
  assert.equal(rig.layer.stats().syncookiesValidated, 1);
  const c = listener.accept();
  assert.ok(c !== null && c.state === "ESTABLISHED" && c.remotePort === 2000);
  // It works: data in is acknowledged, and our window is read with the peer's scale (100 << 7).
  rig.inject({
    srcPort: 2000,
    flags: "P.",
    seq: 5001,
    ack: synAck.seq + 1,
    window: 100,
    options: { ts: [779, synAck.ts![0]] },
    payload: 10,
  });
  rig.advance(50);
  const ack = rig.take().find((s) => s.dstPort === 2000 && s.ack === 5011);
  assert.ok(ack !== undefined, "the data is acknowledged");
  assert.equal(c.send(new Uint8Array(12_000)), 12_000);
  rig.poll();
  const sent = rig.take().filter((s) => s.dstPort === 2000).reduce((n, s) => n + s.payload.length, 0);
  assert.ok(sent > 6400, `the window is 100 << 7, not 100 (sent ${sent})`);
});

Deno.test("syn cookies: a forged or stale cookie is refused, counted, and answered by a RST", () => {
  const rig = new TcpRig();
  rig.now = 1_000_000;
  rig.layer.listen(80, 1);
  rig.inject({ srcPort: 1000, flags: "S", seq: 100 });
  rig.inject({ srcPort: 2000, flags: "S", seq: 5000 });
  const cookie = rig.take()[1];
  // (A cookie off by a few units may still decode to another MSS, as with Linux's: 4 in 2^24 pass.)
  rig.inject({ srcPort: 2000, flags: ".", seq: 5001, ack: cookie.seq + 5000 });
  rig.expectOne({ flags: "R", seq: cookie.seq + 5000 });
  assert.equal(rig.layer.stats().syncookiesFailed, 1);
  assert.equal(rig.layer.stats().syncookiesValidated, 0);
  // Without timestamps, a cookie connection has no window scaling nor SACK (nothing carries them back).
  rig.inject({ srcPort: 3000, flags: "S", seq: 9000, options: { mss: 1460, wscale: 7, sackOk: true } });
  rig.expectOne({ flags: "S.", wscale: -1, sackOk: false, ts: null });
});

Deno.test("half-open connections unanswered for 7 s are given up, and make room", () => {
  const rig = new TcpRig({ synCookies: false });
  rig.now = 1_000_000;
  const listener = rig.layer.listen(80, 2);
  rig.inject({ srcPort: 1000, flags: "S", seq: 100 });
  rig.inject({ srcPort: 1001, flags: "S", seq: 100 });
  rig.inject({ srcPort: 1002, flags: "S", seq: 100 });
  assert.equal(rig.layer.stats().halfOpenEvicted, 1, "full, and no cookies: the oldest gave its place");
  rig.advance(7001);
  rig.take();
  rig.inject({ srcPort: 1003, flags: "S", seq: 100 });
  assert.equal(rig.layer.stats().halfOpenExpired, 2);
  assert.equal(listener.halfOpen, 1);
  rig.expectOne({ flags: "S.", dstPort: 1003 });
});

Deno.test("memory budget: stores grow with use, go back when drained, and growth past the budget is refused", () => {
  const budget = new MemoryBudget(48 * 1024);
  const send = new SendBuffer(1 << 20, budget);
  assert.equal(send.allocated, 0, "an idle buffer holds no store");
  assert.equal(send.write(new Uint8Array(10_000)), 10_000);
  assert.equal(budget.used, 16 * 1024, "the first store is 16 KiB");
  assert.equal(send.write(new Uint8Array(10_000)), 10_000);
  assert.equal(budget.used, 32 * 1024, "doubled");
  // Doubling again would need 64 KiB in all: refused, and only what the store holds is taken.
  assert.equal(send.write(new Uint8Array(40_000)), 32 * 1024 - 20_000);
  assert.equal(budget.growthRefused, 1);
  send.consume(send.length);
  assert.equal(send.allocated, 0);
  assert.equal(budget.used, 0, "drained: the store went back");
  const recv = new RecvBuffer(1 << 20, budget);
  assert.equal(recv.writeAt(0, new Uint8Array(20_000), 0, 20_000), true);
  assert.equal(recv.writeAt(20_000, new Uint8Array(40_000), 0, 40_000), false, "past the budget");
  recv.commit(20_000);
  recv.read(new Uint8Array(20_000));
  recv.shrinkIfEmpty();
  assert.equal(budget.used, 0);
  assert.equal(budget.stats().peak, 32 * 1024);
  assert.equal(budget.growthRefused, 2);
});

Deno.test("memory budget: a layer out of budget refuses new connections and counts them", () => {
  const rig = new TcpRig({ memoryBudget: 32 * 1024 });
  rig.layer.listen(80);
  rig.inject({ srcPort: 1000, flags: "S", seq: 100 });
  rig.expectNone("no SYN,ACK without room for the connection's buffers");
  assert.equal(rig.layer.memory.connectionsRefused, 1);
  assert.equal(rig.layer.stats().drops["memory-pressure"], 1);
  assert.throws(() => rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now), /memory budget/);
});

Deno.test("send buffer autotuning: a peer that stops reading holds a small buffer, not the configured one", () => {
  const rig = new TcpRig({ sendBufferSize: 4 << 20 });
  rig.layer.listen(80);
  rig.inject({ srcPort: 1000, flags: "S", seq: 100, options: { mss: 1460 }, window: 8192 });
  const synAck = rig.take()[0];
  rig.inject({ srcPort: 1000, flags: ".", seq: 101, ack: synAck.seq + 1, window: 8192 });
  const c = rig.layer.connections().next().value!;
  const taken = c.send(new Uint8Array(4 << 20));
  assert.ok(taken >= 64 * 1024 && taken <= 128 * 1024, `took ${taken} bytes, not 4 MiB`);
  assert.equal(c.writableBytes, 0);
  assert.ok(rig.layer.memory.used <= 256 * 1024, `buffers hold ${rig.layer.memory.used} bytes`);
});

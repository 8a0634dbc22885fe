/**
 * SYN cookies over IPv6 (RFC 4987 §3.6), sans-I/O: the cookie's hash covers the 128-bit addresses and the
 * ports, the MSS comes from Linux's IPv6 table, window scale and SACK ride in the timestamp as over IPv4;
 * an ACK returning a cookie becomes a connection whose timestamps continue the cookie's although the
 * peer's address handle was freed and renumbered in between; forged and stale cookies are refused and
 * counted per family; half-open eviction is the same over either family.
 */

import assert from "node:assert/strict";
import { TcpLayer } from "../../lib/tcp/layer.ts";
import { Ipv6Interface } from "../../lib/iface/ipv6_interface.ts";
import type { Ipv6Sink } from "../../lib/iface/protocol.ts";
import { writeIpv6Header } from "../../lib/wire/ipv6.ts";
import { formatIpv6, parseIpv6Cidr } from "../../lib/wire/ipv6_address.ts";
import {
  fillTcpChecksumIpv6,
  parseTcpOptions,
  TcpFlags,
  TcpOptions,
  TcpSegment,
  writeMssOption,
  writeSackPermittedOption,
  writeTcpHeader,
  writeTimestampsOption,
  writeWindowScaleOption,
} from "../../lib/wire/tcp.ts";
import { COOKIE_MSS_TABLE6, COOKIE_PERIOD_MS, SynCookies } from "../../lib/tcp/syn_cookie.ts";
import { ip6 } from "../helpers/ipv6_packets.ts";

const US = "fd00::2";

class Collect implements Ipv6Sink {
  packets: Uint8Array[] = [];
  sendIpv6(packet: Uint8Array): void {
    this.packets.push(packet.slice());
  }
  take(): Uint8Array[] {
    const p = this.packets;
    this.packets = [];
    return p;
  }
}

interface Spec6 {
  src: string;
  srcPort: number;
  seq: number;
  ack?: number;
  flags: number;
  window?: number;
  mss?: number;
  sackOk?: boolean;
  ts?: [number, number];
  wscale?: number;
  payload?: number;
}

function segment6(s: Spec6): Uint8Array {
  const packet = new Uint8Array(40 + 60 + (s.payload ?? 0));
  let o = 60;
  if (s.mss !== undefined) o = writeMssOption(packet, o, s.mss);
  if (s.sackOk) o = writeSackPermittedOption(packet, o);
  if (s.ts) o = writeTimestampsOption(packet, o, s.ts[0] >>> 0, s.ts[1] >>> 0);
  if (s.wscale !== undefined) o = writeWindowScaleOption(packet, o, s.wscale);
  const optionsLength = o - 60;
  const tcpLength = 20 + optionsLength + (s.payload ?? 0);
  writeIpv6Header(packet, 0, ip6(s.src), ip6(US), 6, tcpLength);
  writeTcpHeader(
    packet,
    40,
    s.srcPort,
    80,
    s.seq >>> 0,
    (s.ack ?? 0) >>> 0,
    s.flags,
    s.window ?? 65535,
    optionsLength,
  );
  fillTcpChecksumIpv6(packet, 40, tcpLength, 0);
  return packet.subarray(0, 40 + tcpLength);
}

function parse(packet: Uint8Array) {
  assert.equal(packet[0] >> 4, 6, "an IPv6 packet");
  const seg = new TcpSegment().wrap(packet, 40, packet.length);
  assert.equal(seg.checkIpv6(packet), null, "a valid checksum over the IPv6 pseudo-header");
  const options = parseTcpOptions(seg.bytes, seg.optionsOffset, seg.payloadOffset, new TcpOptions());
  return { seg, options, dst: formatIpv6(packet, 24), payload: seg.end - seg.payloadOffset };
}

function setup(options: { synCookies?: boolean } = {}) {
  const ipv6 = new Ipv6Interface({ mtu: 1500, addresses: [parseIpv6Cidr(`${US}/64`)!] });
  const tcp = new TcpLayer({
    mtu: 1500,
    mtu6: 1400,
    secret: new Uint8Array(16).fill(9),
    random: () => 7,
    ...options,
  });
  ipv6.register(6, tcp);
  return { ipv6, tcp, out: new Collect() };
}

const NO_IPV4 = { sendIpv4: () => assert.fail("no IPv4 for an IPv6 connection") };

Deno.test("syn cookies over ipv6: the hash covers both 128-bit addresses and ports, and the count", () => {
  const cookies = new SynCookies(new Uint8Array(16).fill(3));
  const now = 5 * COOKIE_PERIOD_MS + 100;
  const a = ip6("2001:db8::1"), b = ip6("2001:db8::2");
  const cookie = cookies.issue(a, 40000, b, 80, 0xdeadbeef, 1440, now);
  assert.equal(cookies.check(a, 40000, b, 80, 0xdeadbeef, cookie, now + 10), 1440);
  assert.equal(
    cookies.check(a, 40000, b, 80, 0xdeadbeef, cookie, now + COOKIE_PERIOD_MS),
    1440,
    "next period",
  );
  assert.equal(cookies.check(a, 40000, b, 80, 0xdeadbeef, cookie, now + 3 * COOKIE_PERIOD_MS), -1, "stale");
  // Every byte of either address counts, not only the low 32 bits an IPv4-sized hash would see.
  for (const i of [0, 7, 8, 15]) {
    const other = a.slice();
    other[i] ^= 0x01;
    assert.equal(cookies.check(other, 40000, b, 80, 0xdeadbeef, cookie, now), -1, `source byte ${i}`);
    const otherB = b.slice();
    otherB[i] ^= 0x80;
    assert.equal(cookies.check(a, 40000, otherB, 80, 0xdeadbeef, cookie, now), -1, `destination byte ${i}`);
  }
  assert.equal(cookies.check(a, 40001, b, 80, 0xdeadbeef, cookie, now), -1, "another source port");
  assert.equal(cookies.check(a, 40000, b, 81, 0xdeadbeef, cookie, now), -1, "another destination port");
  assert.equal(cookies.check(a, 40000, b, 80, 0xdeadceef, cookie, now), -1, "another ISN");
  assert.equal(cookies.check(b, 80, a, 40000, 0xdeadbeef, cookie, now), -1, "the reverse direction");
  // The IPv4 cookie of the same ports is another number: the families do not share cookies.
  assert.notEqual(cookies.issue(1, 40000, 2, 80, 0xdeadbeef, 1460, now), cookie);
  // Linux's IPv6 MSS table: the largest entry not above the peer's MSS, the smallest without one.
  assert.deepEqual(COOKIE_MSS_TABLE6, [1220, 1420, 1440, 8940]);
  for (
    const [mss, expected] of [[536, 1220], [1220, 1220], [1419, 1220], [1420, 1420], [1460, 1440], [
      8960,
      8940,
    ]]
  ) {
    const c = cookies.issue(a, 1, b, 2, 5, mss, now);
    assert.equal(cookies.check(a, 1, b, 2, 5, c, now), expected, `MSS ${mss}`);
  }
  let passed = 0;
  for (let i = 0; i < 10_000; i++) {
    if (cookies.check(a, 1, b, 2, 5, Math.floor(Math.random() * 2 ** 32), now) >= 0) passed++;
  }
  assert.ok(passed <= 2, `${passed} forged cookies passed`);
});

Deno.test("syn cookies over ipv6: a full backlog answers with a cookie, and its ACK becomes a working connection", () => {
  const { ipv6, tcp, out } = setup();
  let now = 1_000_000;
  const listener = tcp.listen(80, 1);
  ipv6.ingress(
    segment6({ src: "fd00::1", srcPort: 1000, seq: 100, flags: TcpFlags.SYN, mss: 1440 }),
    now,
    out,
  );
  assert.equal(parse(out.take()[0]).seg.flags, TcpFlags.SYN | TcpFlags.ACK, "a stateful SYN,ACK first");
  // The backlog is full: the next SYN is answered statelessly, over IPv6.
  const syn = { src: "fd00::3", srcPort: 2000, seq: 5000, flags: TcpFlags.SYN, mss: 1440, sackOk: true };
  ipv6.ingress(segment6({ ...syn, ts: [777, 0], wscale: 7 }), now, out);
  const sent = out.take();
  assert.equal(sent.length, 1);
  const synAck = parse(sent[0]);
  assert.equal(synAck.dst, "fd00::3");
  assert.equal(synAck.seg.flags, TcpFlags.SYN | TcpFlags.ACK);
  assert.equal(synAck.seg.ack, 5001);
  assert.equal(synAck.options.mss, 1400 - 60, "our MSS from the IPv6 MTU, as a connection's SYN,ACK");
  assert.equal(synAck.options.sackPermitted, true);
  assert.equal(synAck.options.tsEcr, 777);
  assert.equal(synAck.options.tsVal & 0x0f, 7, "the peer's window scale in the low bits of our TSval");
  let stats = tcp.stats();
  assert.equal(stats.syncookiesSent, 1);
  assert.equal(stats.syncookiesSent6, 1, "counted as an IPv6 cookie");
  assert.equal(tcp.connectionCount, 1, "no state kept for the cookie");
  assert.equal(tcp.handles.size, 2, "no handle kept for the cookie's peer");
  const freed = tcp.handles.find(ip6("fd00::3"));
  assert.equal(freed, -1);
  // Another connection is made meanwhile: the freed handle slot is taken by its peer's address, so the
  // cookie's peer gets another handle when its ACK comes.
  tcp.connect6(ip6(US), ip6("fd00::99"), 7000, now);
  now += 5;
  const cookieSeq = synAck.seg.seq;
  const ack = {
    src: "fd00::3",
    srcPort: 2000,
    seq: 5001,
    ack: cookieSeq + 1,
    flags: TcpFlags.ACK,
    window: 100,
  };
  ipv6.ingress(segment6({ ...ack, ts: [778, synAck.options.tsVal] }), now, out);
  stats = tcp.stats();
  assert.equal(stats.syncookiesValidated, 1);
  assert.equal(stats.syncookiesValidated6, 1);
  const c = listener.accept();
  assert.ok(c !== null && c.state === "ESTABLISHED", "the cookie's ACK made an established connection");
  assert.equal(tcp.formatAddress(c.remoteAddress), "fd00::3");
  assert.equal(tcp.formatAddress(c.localAddress), US);
  // Data in is acknowledged; our TSval goes on from the cookie's (the offset was hashed over the
  // addresses, not the renumbered handles) and the peer's scale (100 << 7) is applied to its window.
  now += 20;
  ipv6.ingress(
    segment6({ ...ack, flags: TcpFlags.ACK | TcpFlags.PSH, ts: [779, synAck.options.tsVal], payload: 10 }),
    now,
    out,
  );
  now += 50;
  tcp.poll(now, NO_IPV4);
  const acks = out.take().map(parse).filter((p) => p.seg.ack === 5011);
  assert.equal(acks.length, 1, "the data is acknowledged over IPv6");
  const tsDelta = (acks[0].options.tsVal - synAck.options.tsVal) >>> 0;
  assert.ok(tsDelta <= 75 + 64, `our timestamp clock continues the cookie's (moved ${tsDelta})`);
  assert.equal(c.send(new Uint8Array(12_000)), 12_000);
  tcp.poll(now, NO_IPV4);
  const bytes = out.take().map(parse).reduce((n, p) => n + p.payload, 0);
  assert.ok(bytes > 6400, `the window is 100 << 7, not 100 (sent ${bytes})`);
  assert.ok(bytes <= 12_000);
});

Deno.test("syn cookies over ipv6: forged, stale and other-tuple ACKs are refused, counted, and answered by a RST", () => {
  const { ipv6, tcp, out } = setup();
  let now = 1_000_000;
  tcp.listen(80, 1);
  ipv6.ingress(segment6({ src: "fd00::1", srcPort: 1000, seq: 100, flags: TcpFlags.SYN }), now, out);
  ipv6.ingress(segment6({ src: "fd00::3", srcPort: 2000, seq: 5000, flags: TcpFlags.SYN }), now, out);
  const cookie = parse(out.take()[1]);
  // Without timestamps, nothing carries window scaling or SACK back: the cookie offers neither.
  assert.equal(cookie.options.windowScale, -1);
  assert.equal(cookie.options.sackPermitted, false);
  assert.equal(cookie.options.mss, 1340);
  const good = cookie.seg.seq + 1;
  const refused: [string, Spec6][] = [
    ["forged", { src: "fd00::3", srcPort: 2000, seq: 5001, ack: good + 5000, flags: TcpFlags.ACK }],
    ["another address", { src: "fd00::4", srcPort: 2000, seq: 5001, ack: good, flags: TcpFlags.ACK }],
    ["another port", { src: "fd00::3", srcPort: 2001, seq: 5001, ack: good, flags: TcpFlags.ACK }],
    ["another ISN", { src: "fd00::3", srcPort: 2000, seq: 6001, ack: good, flags: TcpFlags.ACK }],
  ];
  for (const [what, spec] of refused) {
    ipv6.ingress(segment6(spec), now, out);
    const rst = out.take().map(parse);
    assert.equal(rst.length, 1, what);
    assert.equal(rst[0].seg.flags, TcpFlags.RST, `${what}: answered by a RST`);
    assert.equal(rst[0].seg.seq, spec.ack, what);
  }
  assert.equal(tcp.stats().syncookiesFailed6, 4);
  // Stale: the right ACK, three periods later. The first half-open entry has expired by then: one SYN
  // takes its place, the next gets a cookie, so ACKs are still checked for cookies.
  now += 3 * COOKIE_PERIOD_MS;
  ipv6.ingress(segment6({ src: "fd00::5", srcPort: 4000, seq: 1, flags: TcpFlags.SYN }), now, out);
  ipv6.ingress(segment6({ src: "fd00::6", srcPort: 4000, seq: 1, flags: TcpFlags.SYN }), now, out);
  out.take();
  assert.equal(tcp.stats().syncookiesSent6, 2);
  ipv6.ingress(
    segment6({ src: "fd00::3", srcPort: 2000, seq: 5001, ack: good, flags: TcpFlags.ACK }),
    now,
    out,
  );
  assert.equal(parse(out.take()[0]).seg.flags, TcpFlags.RST, "a stale cookie is refused");
  const stats = tcp.stats();
  assert.equal(stats.syncookiesFailed6, 5);
  assert.equal(stats.syncookiesFailed, 5);
  assert.equal(stats.syncookiesValidated, 0);
  assert.equal(tcp.connectionCount, 1, "only the half-open entry");
});

Deno.test("half-open eviction and the SYN,ACK retry bound are the same over ipv6", () => {
  const { ipv6, tcp, out } = setup({ synCookies: false });
  let now = 1_000_000;
  const listener = tcp.listen(80, 2);
  for (const port of [1000, 1001, 1002]) {
    ipv6.ingress(segment6({ src: "fd00::1", srcPort: port, seq: 100, flags: TcpFlags.SYN }), now, out);
  }
  assert.equal(tcp.stats().halfOpenEvicted, 1, "full, and no cookies: the oldest gave its place");
  // Unanswered SYN,ACKs are retransmitted with backoff (1, 2, 4 s) and no more, until given up at 7 s.
  out.take();
  for (let t = 0; t < 7000; t += 100) {
    now += 100;
    tcp.poll(now, NO_IPV4);
  }
  const retries = out.take().map(parse).filter((p) => p.seg.flags === (TcpFlags.SYN | TcpFlags.ACK));
  assert.equal(retries.length, 2 * 3, "three retransmissions each of the two SYN,ACKs");
  now += 1;
  ipv6.ingress(segment6({ src: "fd00::1", srcPort: 1003, seq: 100, flags: TcpFlags.SYN }), now, out);
  assert.equal(tcp.stats().halfOpenExpired, 2);
  assert.equal(listener.halfOpen, 1);
  assert.equal(tcp.handles.size, 2, "the evicted connections released their handles");
  const last = out.take().map(parse);
  assert.equal(last.length, 1);
  assert.equal(last[0].seg.dstPort, 1003);
});

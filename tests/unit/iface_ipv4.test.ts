/** The IPv4/ICMP/UDP core driven directly with packets and a virtual clock: no device, no timers. */

import assert from "node:assert/strict";
import { serveUdpEcho } from "../../lib/services/udp_echo.ts";
import { ipCore } from "../helpers/core.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../../lib/wire/ipv4.ts";
import { Icmpv4Type, UnreachableCode } from "../../lib/wire/icmpv4.ts";
import { foldSum, internetChecksum, ipv4PseudoHeaderSum } from "../../lib/wire/checksum.ts";
import { RxFlags } from "../../lib/wire/offload.ts";
import { echoRequest, expectIcmp, expectIpv4, expectUdp, ip, udpPacket } from "../helpers/packets.ts";
import { Prng } from "../../lib/prng.ts";

function makeCore(options: { icmpErrorsPerSecond?: number; icmpErrorBurst?: number } = {}) {
  const { core, out } = ipCore({ ipv4: options });
  serveUdpEcho(core);
  return { iface: core.ipv4, udp: core.udp, out };
}

Deno.test("icmp: echo request gets a reply with identifier, sequence and data unchanged", () => {
  const { iface, out } = makeCore();
  const data = new TextEncoder().encode("abcdefghijklmnopqrstuvwxyz0123456789!");
  iface.ingress(echoRequest("10.0.0.1", "10.0.0.2", 0xbeef, 513, data), 0, out);
  const [reply] = out.take();
  const icmp = expectIcmp(reply, { src: "10.0.0.2", dst: "10.0.0.1", type: Icmpv4Type.ECHO_REPLY, code: 0 });
  assert.equal(icmp.identifier, 0xbeef);
  assert.equal(icmp.sequence, 513);
  assert.deepEqual(icmp.data(), data);
  assert.equal(iface.icmp.echoReplies, 1);
});

Deno.test("icmp: a large (1472-byte) echo and an empty echo are both answered", () => {
  const { iface, out } = makeCore();
  for (const size of [0, 1472]) {
    const data = new Uint8Array(size).map((_, i) => i);
    iface.ingress(echoRequest("10.0.0.1", "10.0.0.2", 1, size, data), 0, out);
    const [reply] = out.take();
    assert.deepEqual(expectIcmp(reply, { type: 0 }).data(), data);
  }
});

Deno.test("ipv4: packets for other addresses are dropped as not-ours", () => {
  const { iface, out } = makeCore();
  iface.ingress(echoRequest("10.0.0.1", "10.0.0.3", 1, 1, new Uint8Array(8)), 0, out);
  assert.equal(out.packets.length, 0);
  assert.equal(iface.ipv4.drops.get("not-ours"), 1);
});

Deno.test("icmp: broadcast echo is ignored, like Linux by default", () => {
  const { iface, out } = makeCore();
  iface.ingress(echoRequest("10.0.0.1", "10.0.0.255", 1, 1, new Uint8Array(8)), 0, out);
  iface.ingress(echoRequest("10.0.0.1", "255.255.255.255", 1, 1, new Uint8Array(8)), 0, out);
  assert.equal(out.packets.length, 0);
  assert.equal(iface.icmp.drops.get("broadcast"), 2);
});

Deno.test("icmp: a bad ICMP checksum is counted and not answered", () => {
  const { iface, out } = makeCore();
  const packet = echoRequest("10.0.0.1", "10.0.0.2", 1, 1, new Uint8Array(8));
  packet[20 + 8] ^= 0xff;
  iface.ingress(packet, 0, out);
  assert.equal(out.packets.length, 0);
  assert.equal(iface.icmp.drops.get("bad-checksum"), 1);
});

Deno.test("ipv4: a version-6 packet reaching IPv4 is bad-version; a lone first fragment waits for the rest", () => {
  const { iface, out } = makeCore();
  const v6 = new Uint8Array(40);
  v6[0] = 0x60;
  iface.ingress(v6, 0, out);
  assert.equal(iface.ipv4.drops.get("bad-version"), 1, "the stack hands IPv6 to its own layer before this");
  const fragment = udpPacket("10.0.0.1", 1000, "10.0.0.2", 7, new Uint8Array(16));
  fragment[6] = 0x20; // more fragments: a first fragment
  fragment[10] = fragment[11] = 0;
  const sum = internetChecksum(fragment, 0, 20);
  fragment[10] = sum >> 8;
  fragment[11] = sum & 0xff;
  iface.ingress(fragment, 0, out);
  assert.equal(iface.ipv4.fragmentsIn, 1);
  assert.equal(iface.ipv4.reassembled, 0);
  assert.equal(out.packets.length, 0, "nothing is delivered or answered for a partial datagram");
  assert.equal(iface.poll(0, out), 30_000, "the reassembly timeout is a deadline");
  iface.poll(30_000, out);
  assert.equal(iface.ipv4.drops.get("reassembly-timeout"), 1);
});

Deno.test("ipv4: an unknown protocol gets protocol unreachable quoting the packet", () => {
  const { iface, out } = makeCore();
  const packet = new Uint8Array(28);
  writeIpv4Header(packet, 0, ip("10.0.0.1"), ip("10.0.0.2"), 132, /* SCTP */ 8);
  iface.ingress(packet, 0, out);
  const [reply] = out.take();
  const icmp = expectIcmp(reply, { dst: "10.0.0.1", type: 3, code: UnreachableCode.PROTOCOL });
  assert.deepEqual(icmp.data(), packet);
  assert.equal(iface.ipv4.drops.get("unsupported-protocol"), 1);
});

Deno.test("udp: echo on port 7 returns the data to the sender's port", () => {
  const { iface, out } = makeCore();
  const data = crypto.getRandomValues(new Uint8Array(1000));
  iface.ingress(udpPacket("10.0.0.1", 40000, "10.0.0.2", 7, data), 0, out);
  const [reply] = out.take();
  const udp = expectUdp(reply, { src: "10.0.0.2", dst: "10.0.0.1", srcPort: 7, dstPort: 40000 });
  assert.deepEqual(udp.data(), data);
});

Deno.test("udp: a zero checksum is accepted (RFC 768), a wrong one dropped", () => {
  const { iface, udp, out } = makeCore();
  iface.ingress(
    udpPacket("10.0.0.1", 40000, "10.0.0.2", 7, new Uint8Array([1, 2, 3]), { checksum: false }),
    0,
    out,
  );
  assert.equal(out.take().length, 1);
  const bad = udpPacket("10.0.0.1", 40000, "10.0.0.2", 7, new Uint8Array([1, 2, 3]));
  bad[bad.length - 1] ^= 1;
  iface.ingress(bad, 0, out);
  assert.equal(out.take().length, 0);
  assert.equal(udp.stats().drops["bad-checksum"], 1);
});

Deno.test("udp: a length field longer than the datagram is dropped as bad-length", () => {
  const { iface, udp, out } = makeCore();
  const packet = udpPacket("10.0.0.1", 40000, "10.0.0.2", 7, new Uint8Array(4), { checksum: false });
  packet[20 + 5] = 100;
  iface.ingress(packet, 0, out);
  assert.equal(out.take().length, 0);
  assert.equal(udp.stats().drops["bad-length"], 1);
});

Deno.test("udp: a closed port gets ICMP port unreachable quoting header and data", () => {
  const { iface, udp, out } = makeCore();
  const packet = udpPacket("10.0.0.1", 40000, "10.0.0.2", 9999, new TextEncoder().encode("hello"));
  iface.ingress(packet, 0, out);
  const [reply] = out.take();
  const icmp = expectIcmp(reply, { src: "10.0.0.2", dst: "10.0.0.1", type: 3, code: UnreachableCode.PORT });
  assert.deepEqual(icmp.data(), packet);
  assert.equal(udp.stats().drops["port-closed"], 1);
  assert.equal(iface.icmp.unreachableSent, 1);
});

Deno.test("udp: port unreachable quotes a checksum left partial by offload as completed, as on the wire", () => {
  const { iface, out } = makeCore();
  const data = new TextEncoder().encode("offloaded");
  const packet = udpPacket("10.0.0.1", 40000, "10.0.0.2", 9999, data);
  const wire = [packet[IPV4_HEADER_LENGTH + 6], packet[IPV4_HEADER_LENGTH + 7]];
  // What the local kernel hands over with NEEDS_CSUM: the folded pseudo-header sum in the checksum field.
  const partial = foldSum(
    ipv4PseudoHeaderSum(ip("10.0.0.1"), ip("10.0.0.2"), IpProtocol.UDP, 8 + data.length),
  );
  packet[IPV4_HEADER_LENGTH + 6] = partial >> 8;
  packet[IPV4_HEADER_LENGTH + 7] = partial & 0xff;
  iface.ingress(packet, 0, out, RxFlags.CHECKSUM_TRUSTED | RxFlags.CHECKSUM_PARTIAL);
  const [error] = out.take();
  const icmp = expectIcmp(error, { type: Icmpv4Type.DESTINATION_UNREACHABLE, code: UnreachableCode.PORT });
  const quote = icmp.bytes.subarray(8);
  assert.deepEqual([quote[IPV4_HEADER_LENGTH + 6], quote[IPV4_HEADER_LENGTH + 7]], wire);
  assert.deepEqual(quote.subarray(IPV4_HEADER_LENGTH + 8), data);
});

Deno.test("udp: port unreachable is rate-limited by a token bucket on the virtual clock", () => {
  const { iface, out } = makeCore({ icmpErrorsPerSecond: 2, icmpErrorBurst: 3 });
  const packet = udpPacket("10.0.0.1", 40000, "10.0.0.2", 9999, new Uint8Array(1));
  for (let i = 0; i < 10; i++) iface.ingress(packet, 0, out);
  assert.equal(out.take().length, 3, "the burst");
  assert.equal(iface.icmp.errorsRateLimited, 7);
  iface.ingress(packet, 499, out);
  assert.equal(out.take().length, 0, "under one token after 499 ms at 2/s");
  iface.ingress(packet, 500, out);
  assert.equal(out.take().length, 1, "one token after 500 ms");
});

Deno.test("udp: no ICMP error for a broadcast destination or a broadcast source (RFC 1122 §3.2.2)", () => {
  const { iface, out } = makeCore();
  iface.ingress(udpPacket("10.0.0.1", 40000, "10.0.0.255", 9999, new Uint8Array(1)), 0, out);
  iface.ingress(udpPacket("10.0.0.255", 40000, "10.0.0.2", 9999, new Uint8Array(1)), 0, out);
  iface.ingress(udpPacket("0.0.0.0", 68, "10.0.0.2", 9999, new Uint8Array(1)), 0, out);
  assert.equal(out.packets.length, 0);
});

Deno.test("udp: broadcast datagrams reach a bound port and the reply comes from our address", () => {
  const { iface, out } = makeCore();
  iface.ingress(udpPacket("10.0.0.1", 40000, "255.255.255.255", 7, new Uint8Array([9])), 0, out);
  const [reply] = out.take();
  expectUdp(reply, { src: "10.0.0.2", dst: "10.0.0.1", srcPort: 7, dstPort: 40000 });
});

Deno.test("udp: queued datagrams are sent at the next poll and the queue is bounded", () => {
  const { core, out } = ipCore({ udp: { maxQueued: 2 } });
  const { ipv4: iface, udp } = core;
  assert.equal(udp.enqueue(ip("10.0.0.2"), 5000, ip("10.0.0.1"), 6000, new Uint8Array([1])), true);
  assert.equal(udp.enqueue(ip("10.0.0.2"), 5000, ip("10.0.0.1"), 6000, new Uint8Array([2])), true);
  assert.equal(udp.enqueue(ip("10.0.0.2"), 5000, ip("10.0.0.1"), 6000, new Uint8Array([3])), false);
  assert.equal(udp.stats().drops["send-queue-full"], 1);
  assert.equal(iface.poll(0, out), null);
  const sent = out.take();
  assert.deepEqual(sent.map((p) => expectUdp(p, { srcPort: 5000, dstPort: 6000 }).data()[0]), [1, 2]);
  assert.throws(() => udp.enqueue(1, 1, 2, 2, new Uint8Array(65508)), RangeError);
});

Deno.test("ipv4: transmitted packets and bytes are counted", () => {
  const { iface, out } = makeCore();
  iface.ingress(echoRequest("10.0.0.1", "10.0.0.2", 1, 1, new Uint8Array(56)), 0, out);
  assert.equal(iface.ipv4.rxPackets, 1);
  assert.equal(iface.ipv4.txPackets, 1);
  assert.equal(iface.ipv4.txBytes, 84);
  expectIpv4(out.take()[0], { protocol: 1 });
});

Deno.test("fuzz: random and mutated packets never throw out of ingress", () => {
  const { iface, out } = makeCore();
  const prng = new Prng(12345);
  const random = () => prng.next();
  const seeds = [
    echoRequest("10.0.0.1", "10.0.0.2", 1, 1, new Uint8Array(32)),
    udpPacket("10.0.0.1", 1, "10.0.0.2", 7, new Uint8Array(32)),
    udpPacket("10.0.0.1", 1, "10.0.0.2", 99, new Uint8Array(32)),
  ];
  for (let i = 0; i < 20000; i++) {
    const base = seeds[i % seeds.length];
    const packet = base.slice(0, Math.floor(random() * (base.length + 1)));
    const flips = Math.floor(random() * 4);
    for (let f = 0; f < flips && packet.length > 0; f++) {
      packet[Math.floor(random() * packet.length)] ^= 1 << Math.floor(random() * 8);
    }
    iface.ingress(packet, i, out);
    out.take();
  }
  const drops = iface.ipv4.drops.total + iface.icmp.drops.total;
  assert.ok(drops > 0, "mutations must have been dropped");
});

import assert from "node:assert/strict";
import { Ipv6Interface } from "../../lib/iface/ipv6_interface.ts";
import type { Ipv6Sink } from "../../lib/iface/protocol.ts";
import { UdpLayer } from "../../lib/udp/layer.ts";
import { Ipv6Packet, writeIpv6Header } from "../../lib/wire/ipv6.ts";
import { Ipv6HeaderChain } from "../../lib/wire/ipv6_ext.ts";
import { Icmpv6Message } from "../../lib/wire/icmpv6.ts";
import { formatIpv6, parseIpv6Cidr } from "../../lib/wire/ipv6_address.ts";
import { UdpDatagram, writeUdpHeaderIpv6 } from "../../lib/wire/udp.ts";
import { chainPacket, echoRequest6, fragmentHeader, ip6, optionsHeader } from "../helpers/ipv6_packets.ts";
import { Ipv4Interface } from "../../lib/iface/ipv4_interface.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";

const HOST = ip6("fd00::1");
const STACK = ip6("fd00::2");

class Collect implements Ipv6Sink {
  packets: Uint8Array[] = [];
  sendIpv6(packet: Uint8Array): void {
    this.packets.push(packet.slice());
  }
}

function makeCore(options: { mtu?: number; errorsPerSecond?: number; burst?: number } = {}) {
  const ipv6 = new Ipv6Interface({
    mtu: options.mtu ?? 1500,
    addresses: [parseIpv6Cidr("fd00::2/64")!],
    icmpErrorsPerSecond: options.errorsPerSecond,
    icmpErrorBurst: options.burst,
  });
  const udp = new UdpLayer(new Ipv4Interface({ address: parseIpv4Cidr("10.0.0.2/24")!, mtu: 1500 }));
  udp.attachIpv6(ipv6);
  ipv6.register(17, udp);
  return { ipv6, udp, out: new Collect() };
}

function udpPacket(src: Uint8Array, dst: Uint8Array, srcPort: number, dstPort: number, data: Uint8Array) {
  const packet = new Uint8Array(48 + data.length);
  writeIpv6Header(packet, 0, src, dst, 17, 8 + data.length);
  packet.set(data, 48);
  writeUdpHeaderIpv6(packet, 40, 0, srcPort, dstPort, data.length);
  return packet;
}

function icmpOf(packet: Uint8Array): Icmpv6Message {
  const ip = new Ipv6Packet(packet);
  assert.equal(ip.check(), null);
  assert.equal(ip.nextHeader, 58);
  const message = new Icmpv6Message(packet.subarray(40, ip.end));
  assert.equal(message.check(packet), null, "the ICMPv6 checksum is valid");
  return message;
}

Deno.test("ipv6 iface: echo request answered with the same identifier, sequence and data", () => {
  const { ipv6, out } = makeCore();
  const data = new Uint8Array([9, 8, 7, 6, 5]);
  ipv6.ingress(echoRequest6(HOST, STACK, data, 0x1234, 42), 0, out);
  assert.equal(out.packets.length, 1);
  const reply = out.packets[0];
  assert.equal(formatIpv6(reply, 8), "fd00::2");
  assert.equal(formatIpv6(reply, 24), "fd00::1");
  const icmp = icmpOf(reply);
  assert.equal(icmp.type, 129);
  assert.equal(icmp.identifier, 0x1234);
  assert.equal(icmp.sequence, 42);
  assert.deepEqual(icmp.bytes.subarray(8), data);
  assert.equal(ipv6.icmp6.echoReplies, 1);
});

Deno.test("ipv6 iface: packets for other addresses and groups not joined are counted, not answered", () => {
  const { ipv6, out } = makeCore();
  ipv6.ingress(echoRequest6(HOST, ip6("fd00::3"), new Uint8Array(1)), 0, out);
  ipv6.ingress(echoRequest6(HOST, ip6("ff02::16"), new Uint8Array(1)), 0, out);
  ipv6.ingress(echoRequest6(ip6("ff02::1"), STACK, new Uint8Array(1)), 0, out);
  assert.equal(out.packets.length, 0);
  assert.equal(ipv6.ipv6.drops.get("not-ours"), 1);
  assert.equal(ipv6.ipv6.drops.get("not-joined"), 1);
  assert.equal(ipv6.ipv6.drops.get("bad-source"), 1);
  // All-nodes is joined: a ping to ff02::1 is answered from our address.
  ipv6.ingress(echoRequest6(HOST, ip6("ff02::1"), new Uint8Array(1)), 0, out);
  assert.equal(out.packets.length, 1);
  assert.equal(formatIpv6(out.packets[0], 8), "fd00::2");
});

Deno.test("ipv6 iface: a closed UDP port gets port unreachable quoting the packet; open ports echo", () => {
  const { ipv6, udp, out } = makeCore();
  const packet = udpPacket(HOST, STACK, 5000, 9999, new TextEncoder().encode("anyone?"));
  ipv6.ingress(packet, 0, out);
  assert.equal(out.packets.length, 1);
  const icmp = icmpOf(out.packets[0]);
  assert.equal(icmp.type, 1);
  assert.equal(icmp.code, 4);
  assert.deepEqual(icmp.bytes.subarray(8), packet, "the whole invoking packet is quoted");
  assert.equal(udp.stats().drops["port-closed"], 1);
  // Found by the fuzz accounting: a datagram to a closed port is a drop, not received as well.
  assert.equal(udp.stats().rxPackets, 0, "counted once: dropped, not also received");
  udp.bind(7, (d, _now, sink) => udp.reply(sink, d, d.data));
  ipv6.ingress(udpPacket(HOST, STACK, 5000, 7, new Uint8Array([1, 2, 3])), 0, out);
  assert.equal(udp.stats().rxPackets, 1);
  const reply = out.packets[1];
  const view = new UdpDatagram(reply.subarray(40));
  assert.equal(view.checkIpv6(reply), null);
  assert.equal(view.dstPort, 5000);
  assert.deepEqual(view.data(), new Uint8Array([1, 2, 3]));
});

Deno.test("ipv6 iface: ICMPv6 errors are rate-limited and refill with the virtual clock (RFC 4443 §2.4(f))", () => {
  const { ipv6, out } = makeCore({ errorsPerSecond: 10, burst: 3 });
  const closed = udpPacket(HOST, STACK, 5000, 9999, new Uint8Array(4));
  for (let i = 0; i < 5; i++) ipv6.ingress(closed, 0, out);
  assert.equal(out.packets.length, 3);
  assert.equal(ipv6.icmp6.errorsRateLimited, 2);
  ipv6.ingress(closed, 50, out); // half a token
  assert.equal(out.packets.length, 3);
  ipv6.ingress(closed, 100, out); // one token after 100 ms at 10/s
  assert.equal(out.packets.length, 4);
});

Deno.test("ipv6 iface: no error about an ICMPv6 error, a multicast destination or an unspecified source", () => {
  const { ipv6, out } = makeCore();
  // An ICMPv6 error (type 1) carried by an unknown-option packet: no Parameter Problem about it.
  const error = new Uint8Array(8);
  error[0] = 1;
  const aboutError = chainPacket([optionsHeader(60, [0x9e, 0])], 58, error);
  ipv6.ingress(aboutError, 0, out);
  // UDP to a closed port on all-nodes: no port unreachable to multicast.
  ipv6.ingress(udpPacket(HOST, ip6("ff02::1"), 5000, 9999, new Uint8Array(4)), 0, out);
  // From the unspecified address.
  ipv6.ingress(chainPacket([optionsHeader(60, [0x9e, 0])], 17, new Uint8Array(8), ip6("::"), STACK), 0, out);
  assert.equal(out.packets.length, 0);
  assert.equal(ipv6.icmp6.errorsSuppressed, 2, "the multicast UDP is not even reported by UDP");
  // Action bits 10 are reported even to a multicast destination (RFC 4443 §2.4(e.3) exception).
  ipv6.ingress(
    chainPacket([optionsHeader(60, [0x9e, 0])], 17, new Uint8Array(8), HOST, ip6("ff02::1")),
    0,
    out,
  );
  assert.equal(out.packets.length, 1);
  assert.equal(icmpOf(out.packets[0]).type, 4);
  assert.equal(icmpOf(out.packets[0]).code, 2);
  assert.equal(formatIpv6(out.packets[0], 8), "fd00::2", "sent from a unicast address of ours");
});

Deno.test("ipv6 iface: an unknown upper layer gets Parameter Problem code 1 at the naming field", () => {
  const { ipv6, out } = makeCore();
  ipv6.ingress(chainPacket([optionsHeader(60, [])], 132, new Uint8Array(12)), 0, out);
  const icmp = icmpOf(out.packets[0]);
  assert.equal(icmp.type, 4);
  assert.equal(icmp.code, 1);
  assert.equal(icmp.parameter, 40);
  assert.equal(ipv6.ipv6.drops.get("unsupported-protocol"), 1);
});

/** Fragments `payload` (UDP header + data, already checksummed) of a packet into the given pieces. */
function fragments(packet: Uint8Array, pieces: [number, number][], id: number): Uint8Array[] {
  const payload = packet.subarray(40);
  return pieces.map(([start, end]) => {
    const more = end < payload.length;
    return chainPacket([fragmentHeader(start, more, id)], 17, payload.subarray(start, end));
  });
}

Deno.test("ipv6 iface: fragments reassemble in any order; the datagram reaches UDP whole", () => {
  const { ipv6, udp, out } = makeCore();
  const got: number[] = [];
  udp.bind(7, (d) => got.push(d.data.length));
  const packet = udpPacket(HOST, STACK, 5000, 7, new Uint8Array(3000).map((_, i) => i));
  const parts = fragments(packet, [[0, 1232], [1232, 2464], [2464, 3008]], 77);
  for (const part of [parts[2], parts[0], parts[1]]) ipv6.ingress(part, 0, out);
  assert.deepEqual(got, [3000]);
  assert.equal(ipv6.ipv6.reassembled, 1);
  assert.equal(ipv6.ipv6.fragmentsIn, 3);
});

Deno.test("ipv6 iface: overlapping fragments drop the whole datagram (RFC 5722)", () => {
  const { ipv6, udp, out } = makeCore();
  const got: number[] = [];
  udp.bind(7, (d) => got.push(d.data.length));
  const packet = udpPacket(HOST, STACK, 5000, 7, new Uint8Array(2000));
  const parts = fragments(packet, [[0, 1232], [1224, 2008], [1232, 2008]], 5);
  for (const part of parts) ipv6.ingress(part, 0, out);
  assert.deepEqual(got, []);
  assert.equal(ipv6.ipv6.drops.get("fragment-overlap"), 1);
});

Deno.test("ipv6 iface: reassembly is bounded in datagrams and times out with Time Exceeded", () => {
  const ipv6 = new Ipv6Interface({
    mtu: 1500,
    addresses: [parseIpv6Cidr("fd00::2/64")!],
    reassembly: { maxDatagrams: 2, timeoutMs: 1000 },
  });
  const out = new Collect();
  const packet = udpPacket(HOST, STACK, 5000, 7, new Uint8Array(2000));
  for (const id of [1, 2, 3]) ipv6.ingress(fragments(packet, [[0, 1232]], id)[0], 0, out);
  assert.equal(ipv6.ipv6.drops.get("reassembly-overflow"), 1);
  assert.equal(ipv6.poll(999, out), 1000);
  assert.equal(out.packets.length, 0);
  ipv6.poll(1000, out);
  assert.equal(ipv6.ipv6.drops.get("reassembly-timeout"), 2);
  assert.equal(out.packets.length, 2, "Time Exceeded for each datagram whose first fragment came");
  const icmp = icmpOf(out.packets[0]);
  assert.deepEqual([icmp.type, icmp.code], [3, 1]);
  // A later fragment alone never gets Time Exceeded.
  ipv6.ingress(fragments(packet, [[1232, 2008]], 9)[0], 2000, out);
  ipv6.poll(4000, out);
  assert.equal(out.packets.length, 2);
});

Deno.test("ipv6 iface: a non-final fragment not a multiple of 8 gets Parameter Problem at the payload length", () => {
  const { ipv6, out } = makeCore();
  ipv6.ingress(chainPacket([fragmentHeader(0, true, 3)], 17, new Uint8Array(13)), 0, out);
  const icmp = icmpOf(out.packets[0]);
  assert.deepEqual([icmp.type, icmp.code, icmp.parameter], [4, 0, 4]);
});

Deno.test("ipv6 iface: an atomic fragment is processed in isolation (RFC 6946)", () => {
  const { ipv6, out } = makeCore();
  const request = echoRequest6(HOST, STACK, new Uint8Array([1, 2]));
  const atomic = chainPacket([fragmentHeader(0, false, 1)], 58, request.subarray(40));
  ipv6.ingress(atomic, 0, out);
  assert.equal(out.packets.length, 1);
  assert.equal(icmpOf(out.packets[0]).type, 129);
  assert.equal(ipv6.ipv6.atomicFragments, 1);
  assert.equal(ipv6.ipv6.fragmentsIn, 0);
});

Deno.test("ipv6 iface: packets above the MTU are sent as fragments that reassemble to the original", () => {
  const { ipv6, udp } = makeCore({ mtu: 1280 });
  const out = new Collect();
  ipv6.poll(0, out);
  const data = new Uint8Array(4000).map((_, i) => i * 7);
  udp.enqueue6(null, 7, HOST, 5000, data);
  ipv6.poll(0, out);
  assert.equal(out.packets.length, 4);
  const chain = new Ipv6HeaderChain();
  const receiver = makeCore();
  const got: Uint8Array[] = [];
  const peer = new Ipv6Interface({ mtu: 1500, addresses: [parseIpv6Cidr("fd00::1/64")!] });
  peer.register(17, {
    ingress6: (d) => got.push(d.bytes.slice(d.payloadOffset + 8, d.payloadEnd)),
    poll6: () => null,
  });
  for (const fragment of out.packets) {
    assert.ok(fragment.length <= 1280);
    assert.equal(chain.walk(fragment, fragment.length), true);
    assert.ok(chain.fragmentHeader === 40);
    peer.ingress(fragment, 0, receiver.out);
  }
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], data);
  assert.equal(ipv6.ipv6.fragmentsOut, 4);
});

Deno.test("ipv6 iface: address lifetimes — preferred, deprecated, removed; tentative addresses take nothing", () => {
  const ipv6 = new Ipv6Interface({ mtu: 1500 });
  const out = new Collect();
  const slaac = ipv6.addAddress(parseIpv6Cidr("2001:db8::5/64")!, "slaac", "preferred", 1000, 3000);
  assert.equal(formatIpv6(ipv6.sourceFor(ip6("2001:db8::1"))!), "2001:db8::5");
  assert.equal(ipv6.poll(0, out), 1000);
  ipv6.poll(1000, out);
  assert.equal(slaac.state, "deprecated");
  assert.equal(formatIpv6(ipv6.sourceFor(ip6("2001:db8::1"))!), "2001:db8::5", "deprecated still usable");
  assert.equal(ipv6.groups.length, 2, "all-nodes and the solicited-node group");
  ipv6.poll(3000, out);
  assert.equal(ipv6.addresses.length, 0);
  assert.equal(ipv6.groups.length, 1, "the solicited-node group is left with the address");
  const tentative = ipv6.addAddress(parseIpv6Cidr("fe80::1/64")!, "link-local", "tentative");
  ipv6.ingress(echoRequest6(ip6("fe80::9"), tentative.address, new Uint8Array(1)), 4000, out);
  assert.equal(out.packets.length, 0);
  assert.equal(ipv6.ipv6.drops.get("tentative-address"), 1);
  assert.equal(ipv6.sourceFor(ip6("fe80::9")), null, "a tentative address is never a source");
});

Deno.test("ipv6 iface: source selection prefers the same scope and the longest prefix", () => {
  const ipv6 = new Ipv6Interface({ mtu: 1500 });
  ipv6.addAddress(parseIpv6Cidr("fe80::2/64")!, "link-local", "preferred");
  ipv6.addAddress(parseIpv6Cidr("2001:db8:1::2/64")!, "slaac", "preferred");
  ipv6.addAddress(parseIpv6Cidr("fd00::2/64")!, "static", "preferred");
  assert.equal(formatIpv6(ipv6.sourceFor(ip6("fe80::1"))!), "fe80::2");
  assert.equal(formatIpv6(ipv6.sourceFor(ip6("ff02::1"))!), "fe80::2");
  assert.equal(formatIpv6(ipv6.sourceFor(ip6("2001:db8:1::1"))!), "2001:db8:1::2");
  assert.equal(formatIpv6(ipv6.sourceFor(ip6("fd00::1"))!), "fd00::2");
});

/** TCP over IPv6 at the layer: handshake and MSS, RST for a closed port, handles released with connections. */

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
  writeTcpHeader,
} from "../../lib/wire/tcp.ts";
import { ip6 } from "../helpers/ipv6_packets.ts";

class Collect implements Ipv6Sink {
  packets: Uint8Array[] = [];
  sendIpv6(packet: Uint8Array): void {
    this.packets.push(packet.slice());
  }
}

function segment6(srcPort: number, dstPort: number, seq: number, ack: number, flags: number): Uint8Array {
  const packet = new Uint8Array(40 + 24);
  writeIpv6Header(packet, 0, ip6("fd00::1"), ip6("fd00::2"), 6, 24);
  writeTcpHeader(packet, 40, srcPort, dstPort, seq, ack, flags, 65535, 4);
  writeMssOption(packet, 60, 1440);
  fillTcpChecksumIpv6(packet, 40, 24, 0);
  return packet;
}

function setup() {
  const ipv6 = new Ipv6Interface({ mtu: 1500, addresses: [parseIpv6Cidr("fd00::2/64")!] });
  const tcp = new TcpLayer({ mtu: 1500, mtu6: 1400, secret: new Uint8Array(16), random: () => 7 });
  ipv6.register(6, tcp);
  return { ipv6, tcp, out: new Collect() };
}

function parse(packet: Uint8Array) {
  assert.equal(packet[0] >> 4, 6, "an IPv6 packet");
  const seg = new TcpSegment().wrap(packet, 40, packet.length);
  assert.equal(seg.checkIpv6(packet), null, "a valid checksum over the IPv6 pseudo-header");
  return { seg, options: parseTcpOptions(seg.bytes, seg.optionsOffset, seg.payloadOffset, new TcpOptions()) };
}

Deno.test("tcp over ipv6: a SYN to a listener gets a SYN-ACK with the MSS of the IPv6 MTU, then ESTABLISHED", () => {
  const { ipv6, tcp, out } = setup();
  const listener = tcp.listen(80);
  ipv6.ingress(segment6(5000, 80, 1000, 0, TcpFlags.SYN), 0, out);
  assert.equal(out.packets.length, 1);
  const synAck = out.packets[0];
  assert.equal(formatIpv6(synAck, 8), "fd00::2");
  assert.equal(formatIpv6(synAck, 24), "fd00::1");
  const { seg, options } = parse(synAck);
  assert.equal(seg.flags, TcpFlags.SYN | TcpFlags.ACK);
  assert.equal(seg.ack, 1001);
  assert.equal(options.mss, 1400 - 60, "IPv6 MTU less 40 (IPv6) and 20 (TCP), RFC 8200 §8.3");
  ipv6.ingress(segment6(5000, 80, 1001, (seg.seq + 1) >>> 0, TcpFlags.ACK), 1, out);
  const c = listener.accept()!;
  assert.equal(c.state, "ESTABLISHED");
  assert.equal(tcp.formatAddress(c.remoteAddress), "fd00::1");
  assert.equal(tcp.formatAddress(c.localAddress), "fd00::2");
  assert.equal(tcp.handles.size, 2);
  c.abort();
  tcp.poll(2, { sendIpv4: () => assert.fail("no IPv4 for an IPv6 connection") });
  assert.equal(parse(out.packets[1]).seg.flags & TcpFlags.RST, TcpFlags.RST, "the RST went out over IPv6");
  assert.equal(tcp.handles.size, 0, "the handles are released with the connection");
});

Deno.test("tcp over ipv6: a SYN to a closed port is answered with RST,ACK over IPv6", () => {
  const { ipv6, tcp, out } = setup();
  ipv6.ingress(segment6(5000, 81, 1000, 0, TcpFlags.SYN), 0, out);
  const { seg } = parse(out.packets[0]);
  assert.equal(seg.flags, TcpFlags.RST | TcpFlags.ACK);
  assert.equal(seg.ack, 1001);
  assert.equal(tcp.stats().drops["no-socket"], 1);
  assert.equal(tcp.handles.size, 0, "no handle outlives the segment");
  // A corrupted segment is counted, not answered.
  const bad = segment6(5000, 81, 1000, 0, TcpFlags.SYN);
  bad[50] ^= 0xff;
  ipv6.ingress(bad, 1, out);
  assert.equal(out.packets.length, 1);
  assert.equal(tcp.stats().drops["bad-checksum"], 1);
});

/**
 * Forwarding mode's protocol side without devices or sockets: the IPv4 layer taking transit traffic,
 * UDP's transit handler, and the SYN gate holding, admitting, refusing or failing a SYN.
 */

import assert from "node:assert/strict";
import { Ipv4Interface } from "../../lib/iface/ipv4_interface.ts";
import type { Ipv4Datagram, Ipv4Sink, TransportProtocol } from "../../lib/iface/protocol.ts";
import { UdpLayer, type UdpReceived } from "../../lib/udp/layer.ts";
import { bindResponder } from "../../lib/udp/responder.ts";
import { IpProtocol } from "../../lib/wire/ipv4.ts";
import { Icmpv4Type, UnreachableCode } from "../../lib/wire/icmpv4.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import { type HeldSyn, SynGate } from "../../lib/forward/syn_gate.ts";
import { TcpLayer } from "../../lib/tcp/layer.ts";
import { CollectingSink, echoRequest, expectIcmp, expectUdp, ip, udpPacket } from "../helpers/packets.ts";
import { buildSegment, parseSegment } from "../helpers/tcp_packet.ts";

function makeCore(transit: boolean) {
  const iface = new Ipv4Interface({ address: parseIpv4Cidr("10.0.0.2/24")!, mtu: 1500 });
  const udp = new UdpLayer(iface);
  iface.register(IpProtocol.UDP, udp);
  bindResponder(udp, () => iface.address.address, 7, (data) => data); // UDP echo
  iface.acceptTransit = transit;
  const seen: { src: number; srcPort: number; dst: number; dstPort: number; data: Uint8Array }[] = [];
  udp.bindTransit((d: UdpReceived) =>
    seen.push({ src: d.src, srcPort: d.srcPort, dst: d.dst, dstPort: d.dstPort, data: d.data.slice() })
  );
  return { iface, udp, seen, out: new CollectingSink() };
}

Deno.test("transit: off by default, packets for other hosts are not ours", () => {
  const { iface, seen, out } = makeCore(false);
  iface.ingress(udpPacket("10.0.0.1", 4000, "10.77.0.2", 53, new Uint8Array(4)), 0, out);
  assert.equal(seen.length, 0);
  assert.equal(iface.ipv4.drops.get("not-ours"), 1);
});

Deno.test("transit: UDP to any host and port goes to the transit handler, the stack's own ports stay", () => {
  const { iface, seen, out } = makeCore(true);
  const data = new TextEncoder().encode("query");
  iface.ingress(udpPacket("10.0.0.1", 4000, "10.77.0.2", 7, data), 0, out);
  assert.equal(out.take().length, 0, "port 7 of another host is not the stack's echo");
  assert.deepEqual(seen, [{ src: ip("10.0.0.1"), srcPort: 4000, dst: ip("10.77.0.2"), dstPort: 7, data }]);
  iface.ingress(udpPacket("10.0.0.1", 4000, "10.0.0.2", 7, data), 0, out);
  expectUdp(out.take()[0], { src: "10.0.0.2", dst: "10.0.0.1", srcPort: 7, dstPort: 4000 });
  assert.equal(seen.length, 1);
});

Deno.test("transit: multicast and ICMP to other hosts are dropped and counted; echo goes to its hook", () => {
  const { iface, seen, out } = makeCore(true);
  iface.ingress(udpPacket("10.0.0.1", 4000, "224.0.0.251", 5353, new Uint8Array(4)), 0, out);
  assert.equal(iface.ipv4.drops.get("not-ours"), 1);
  iface.ingress(echoRequest("10.0.0.1", "10.77.0.2", 1, 1, new Uint8Array(8)), 0, out);
  assert.equal(iface.ipv4.drops.get("transit-icmp"), 1);
  assert.equal(out.take().length, 0, "the stack does not answer a ping for another host");
  const echoes: number[] = [];
  iface.onTransitEcho = (d) => echoes.push(d.dst);
  iface.ingress(echoRequest("10.0.0.1", "10.77.0.2", 1, 2, new Uint8Array(8)), 0, out);
  assert.deepEqual(echoes, [ip("10.77.0.2")]);
  assert.equal(seen.length, 0);
});

/** A TCP stand-in that records what reaches it. */
class RecordingTcp implements TransportProtocol {
  readonly received: Uint8Array[] = [];
  polls = 0;
  ingress(d: Ipv4Datagram): void {
    this.received.push(d.bytes.slice(0, d.payloadEnd));
  }
  poll(): number | null {
    this.polls++;
    return null;
  }
}

function makeGate(hold = true) {
  const iface = new Ipv4Interface({ address: parseIpv4Cidr("10.0.0.2/24")!, mtu: 1500 });
  const tcp = new RecordingTcp();
  const held: HeldSyn[] = [];
  let kicks = 0;
  const gate = new SynGate(tcp, iface, (syn) => (held.push(syn), hold), () => kicks++);
  iface.register(IpProtocol.TCP, gate);
  iface.acceptTransit = true;
  const out: Ipv4Sink & CollectingSink = new CollectingSink();
  const syn = buildSegment({
    src: ip("10.0.0.1"),
    dst: ip("10.77.0.2"),
    srcPort: 40000,
    dstPort: 80,
    flags: "S",
    seq: 1000,
    options: { mss: 1460 },
  });
  return { iface, tcp, gate, held, out, syn, kicks: () => kicks };
}

Deno.test("syn gate: a transit SYN waits for the destination; retransmissions are dropped; admit passes it", () => {
  const { iface, tcp, gate, held, out, syn, kicks } = makeGate();
  iface.ingress(syn, 0, out);
  iface.ingress(syn, 1000, out);
  assert.equal(tcp.received.length, 0);
  assert.equal(held.length, 1);
  assert.equal(held[0].key, `tcp ${ip("10.0.0.1")}:40000 ${ip("10.77.0.2")}:80`);
  assert.equal(gate.synWhileConnecting, 1);
  gate.decide(held[0].key, "admit");
  assert.equal(kicks(), 1);
  iface.poll(1001, out);
  assert.deepEqual(tcp.received, [syn]);
  iface.ingress(syn, 2000, out); // a later retransmission is TCP's
  assert.equal(tcp.received.length, 2);
  assert.equal(out.take().length, 0);
  gate.forget(held[0].key);
  iface.ingress(syn, 3000, out); // a new flow of the same 4-tuple is held again
  assert.equal(held.length, 2);
});

Deno.test("syn gate: a refused destination is an RST+ACK to the SYN from the address it asked for", () => {
  const { iface, tcp, gate, held, out, syn } = makeGate();
  iface.ingress(syn, 0, out);
  gate.decide(held[0].key, "refuse");
  iface.poll(1, out);
  const rst = parseSegment(out.take()[0]);
  assert.deepEqual(
    [rst.src, rst.srcPort, rst.dst, rst.dstPort, rst.flags, rst.seq, rst.ack],
    [ip("10.77.0.2"), 80, ip("10.0.0.1"), 40000, "R.", 0, 1001],
  );
  assert.equal(tcp.received.length, 0);
  assert.equal(gate.held, 0);
});

Deno.test("syn gate: an unreachable destination is an ICMP host unreachable quoting the SYN", () => {
  const { iface, gate, held, out, syn } = makeGate();
  iface.ingress(syn, 0, out);
  gate.decide(held[0].key, "unreachable");
  iface.poll(1, out);
  const icmp = expectIcmp(out.take()[0], {
    src: "10.77.0.2",
    dst: "10.0.0.1",
    type: Icmpv4Type.DESTINATION_UNREACHABLE,
    code: UnreachableCode.HOST,
  });
  assert.deepEqual(icmp.bytes.subarray(8, 8 + 28), syn.subarray(0, 28));
});

Deno.test("syn gate: a SYN the relay will not take is dropped; other segments and local ones pass", () => {
  const { iface, tcp, gate, out, syn } = makeGate(false);
  iface.ingress(syn, 0, out);
  assert.equal(gate.held, 0);
  assert.equal(tcp.received.length, 0);
  const ack = buildSegment({
    src: ip("10.0.0.1"),
    dst: ip("10.77.0.2"),
    srcPort: 1,
    dstPort: 2,
    flags: ".",
    seq: 5,
  });
  const local = buildSegment({
    src: ip("10.0.0.1"),
    dst: ip("10.0.0.2"),
    srcPort: 1,
    dstPort: 80,
    flags: "S",
    seq: 5,
  });
  iface.ingress(ack, 0, out);
  iface.ingress(local, 0, out);
  assert.deepEqual(tcp.received, [ack, local]);
});

Deno.test("transit: a relayed echo reply is sent at the next poll from the host that answered", () => {
  const { iface, out } = makeCore(true);
  const data = new Uint8Array([1, 2, 3, 4]);
  assert.equal(iface.queueEchoReply(ip("10.77.0.2"), ip("10.0.0.1"), 0x1234, 7, data), true);
  assert.equal(out.packets.length, 0);
  iface.poll(0, out);
  const icmp = expectIcmp(out.take()[0], { src: "10.77.0.2", dst: "10.0.0.1", type: Icmpv4Type.ECHO_REPLY });
  assert.deepEqual([icmp.identifier, icmp.sequence, [...icmp.data()]], [0x1234, 7, [1, 2, 3, 4]]);
  for (let i = 0; i < 64; i++) iface.queueEchoReply(1, 2, 3, i, data);
  assert.equal(iface.queueEchoReply(1, 2, 3, 99, data), false, "the queue is bounded");
  assert.equal(iface.icmp.drops.get("echo-reply-queue-full"), 1);
});

Deno.test("tcp: the transit listener accepts a SYN to any host and port, answering as that host", () => {
  const iface = new Ipv4Interface({ address: parseIpv4Cidr("10.0.0.2/24")!, mtu: 1500 });
  const tcp = new TcpLayer({ mtu: 1500 });
  iface.register(IpProtocol.TCP, tcp);
  iface.acceptTransit = true;
  const out = new CollectingSink();
  const syn = (dst: string, dstPort: number) =>
    buildSegment({ src: ip("10.0.0.1"), dst: ip(dst), srcPort: 40000, dstPort, flags: "S", seq: 1000 });
  // No transit listener yet: a closed port, answered with RST+ACK from the host asked for.
  iface.ingress(syn("10.77.0.2", 443), 0, out);
  assert.equal(parseSegment(out.take()[0]).flags, "R.");
  const listener = tcp.listenTransit(4);
  assert.equal(listener.port, 0);
  assert.throws(() => tcp.listenTransit(), /exists already/);
  tcp.listen(443); // the stack's own port 443 does not take transit SYNs
  iface.ingress(syn("10.77.0.2", 443), 0, out);
  const synAck = parseSegment(out.take()[0]);
  assert.deepEqual([synAck.src, synAck.srcPort, synAck.flags, synAck.ack], [
    ip("10.77.0.2"),
    443,
    "S.",
    1001,
  ]);
  assert.equal(listener.halfOpen, 1);
  const ack = buildSegment({
    src: ip("10.0.0.1"),
    dst: ip("10.77.0.2"),
    srcPort: 40000,
    dstPort: 443,
    flags: ".",
    seq: 1001,
    ack: (synAck.seq + 1) >>> 0,
  });
  iface.ingress(ack, 1, out);
  const accepted = listener.accept()!;
  assert.deepEqual([accepted.localAddress, accepted.localPort, accepted.state], [
    ip("10.77.0.2"),
    443,
    "ESTABLISHED",
  ]);
  listener.close();
  iface.ingress(syn("10.77.0.3", 80), 2, out);
  assert.equal(parseSegment(out.take().at(-1)!).flags, "R.", "closed again once the listener is gone");
});

/** The Ethernet layer driven with frames and a virtual clock: ARP, routing, resolution, filtering. */

import assert from "node:assert/strict";
import { serveUdpEcho } from "../../lib/services/udp_echo.ts";
import { ethernetCore } from "../helpers/core.ts";
import { ARP_LENGTH, ArpOperation, ArpPacket, writeArp } from "../../lib/wire/arp.ts";
import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EtherType,
  type MacAddress,
  writeEthernetHeader,
} from "../../lib/wire/ethernet.ts";
import { Icmpv4Type } from "../../lib/wire/icmpv4.ts";
import { echoRequest, expectIcmp, expectIpv4, ip, udpPacket } from "../helpers/packets.ts";
import { Prng } from "../../lib/prng.ts";
import { partialTcpPacket, tcpChecksumValid } from "../helpers/partial_tcp.ts";

const OUR_MAC = 0x020000000002;
const HOST_MAC = 0x0a0000000001;
const GATEWAY_MAC = 0x0a00000000fe;

function makeStack(options: { address?: string; gateway?: string | null } = {}) {
  const gateway = options.gateway === undefined || options.gateway === null ? null : ip(options.gateway);
  const { core, out } = ethernetCore({ address: options.address, mac: OUR_MAC, gateway });
  serveUdpEcho(core);
  return { ipv4: core.ipv4, udp: core.udp, ethernet: core.ethernet!, out };
}

function frame(dst: MacAddress, src: MacAddress, etherType: number, payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(ETHERNET_HEADER_LENGTH + payload.length);
  writeEthernetHeader(bytes, 0, dst, src, etherType);
  bytes.set(payload, ETHERNET_HEADER_LENGTH);
  return bytes;
}

function arpFrame(
  op: number,
  senderMac: MacAddress,
  senderIp: string,
  targetMac: MacAddress,
  targetIp: string,
  dst: MacAddress = BROADCAST_MAC,
): Uint8Array {
  const arp = new Uint8Array(ARP_LENGTH);
  writeArp(arp, 0, op, senderMac, ip(senderIp), targetMac, ip(targetIp));
  return frame(dst, senderMac, EtherType.ARP, arp);
}

function expectArp(
  bytes: Uint8Array,
  fields: { dst: MacAddress; op: number; targetIp: string; targetMac?: MacAddress; senderIp?: string },
): ArpPacket {
  const eth = new EthernetFrame(bytes);
  assert.equal(eth.check(), null);
  assert.equal(eth.dst, fields.dst, "Ethernet destination");
  assert.equal(eth.src, OUR_MAC, "Ethernet source");
  assert.equal(eth.etherType, EtherType.ARP);
  assert.equal(bytes.length, 60, "padded to the Ethernet minimum");
  const arp = new ArpPacket(eth.payload());
  assert.equal(arp.check(), null);
  assert.equal(arp.operation, fields.op);
  assert.equal(arp.senderMac, OUR_MAC);
  assert.equal(arp.senderIp, ip(fields.senderIp ?? "10.0.0.2"));
  assert.equal(arp.targetIp, ip(fields.targetIp));
  if (fields.targetMac !== undefined) assert.equal(arp.targetMac, fields.targetMac);
  return arp;
}

function ipv4Of(bytes: Uint8Array, dst: MacAddress): Uint8Array {
  const eth = new EthernetFrame(bytes);
  assert.equal(eth.check(), null);
  assert.equal(eth.dst, dst, "Ethernet destination");
  assert.equal(eth.src, OUR_MAC);
  assert.equal(eth.etherType, EtherType.IPV4);
  return eth.payload();
}

Deno.test("ethernet iface: an ARP request for our address gets exactly the RFC 826 reply", () => {
  const { ethernet, out } = makeStack();
  // Dirty the transmit buffer first: the padding of the reply must still be zeros.
  ethernet.ipv4Sink(0, out).sendIpv4(
    udpPacket("10.0.0.2", 1, "255.255.255.255", 2, new Uint8Array(100).fill(0xff)),
  );
  out.take();
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "10.0.0.2"), 0, out);
  const [reply] = out.take();
  // deno-fmt-ignore
  const expected = [
    0x0a, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x06, // Ethernet: to the requester, from us, ARP
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02,                    // Ethernet/IPv4, reply
    0x02, 0, 0, 0, 0, 0x02, 10, 0, 0, 2,                          // sender: us
    0x0a, 0, 0, 0, 0, 0x01, 10, 0, 0, 1,                          // target: the requester
    ...new Array(18).fill(0),                                     // padding to 60 bytes
  ];
  assert.deepEqual([...reply], expected);
  assert.equal(ethernet.arp.repliesSent, 1);
  // RFC 826: we were the target, so the requester is now cached; a packet to it needs no ARP.
  assert.equal(ethernet.cache.lookup(ip("10.0.0.1"), 1), HOST_MAC);
});

Deno.test("ethernet iface: ARP for another address is not answered and not cached", () => {
  const { ethernet, out } = makeStack();
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "10.0.0.77"), 0, out);
  assert.equal(out.frames.length, 0);
  assert.equal(ethernet.cache.size, 0);
  assert.equal(ethernet.arp.drops.get("not-for-us"), 1);
});

Deno.test("ethernet iface: ping from an unknown host resolves it by ARP, then replies; cached afterwards", () => {
  const { ethernet, ipv4, out } = makeStack();
  const data = new TextEncoder().encode("ethernet ping");
  const request = frame(OUR_MAC, HOST_MAC, EtherType.IPV4, echoRequest("10.0.0.1", "10.0.0.2", 7, 1, data));
  ethernet.ingress(request, 0, out);
  const [arpRequest] = out.take();
  expectArp(arpRequest, { dst: BROADCAST_MAC, op: ArpOperation.REQUEST, targetIp: "10.0.0.1", targetMac: 0 });
  assert.equal(ethernet.cache.queuedPackets, 1);
  assert.equal(ipv4.icmp.echoReplies, 1);

  ethernet.ingress(arpFrame(ArpOperation.REPLY, HOST_MAC, "10.0.0.1", OUR_MAC, "10.0.0.2", OUR_MAC), 50, out);
  const [echoReply] = out.take();
  const icmp = expectIcmp(ipv4Of(echoReply, HOST_MAC), {
    src: "10.0.0.2",
    dst: "10.0.0.1",
    type: Icmpv4Type.ECHO_REPLY,
  });
  assert.deepEqual(icmp.data(), data);
  assert.equal(ethernet.cache.queuedPackets, 0);
  assert.equal(ethernet.poll(60, out), null, "no retry is left once resolved");

  ethernet.ingress(request, 100, out);
  const [second] = out.take();
  ipv4Of(second, HOST_MAC);
  assert.equal(out.frames.length, 0, "no second ARP request");
});

Deno.test("ethernet iface: unanswered resolution sends 3 requests 1 s apart, then drops and counts", () => {
  const { ethernet, udp, out } = makeStack();
  const sink = ethernet.ipv4Sink(0, out);
  for (let i = 0; i < 3; i++) udp.sendNow(sink, ip("10.0.0.2"), 5000, ip("10.0.0.9"), 9, new Uint8Array([i]));
  assert.equal(out.take().length, 1, "one request for three packets");
  assert.equal(ethernet.poll(0, out), 1000);
  assert.equal(ethernet.poll(999, out), 1000);
  assert.equal(out.frames.length, 0);
  assert.equal(ethernet.poll(1000, out), 2000);
  assert.equal(ethernet.poll(2000, out), 3000);
  const retries = out.take();
  assert.equal(retries.length, 2);
  for (const r of retries) {
    expectArp(r, { dst: BROADCAST_MAC, op: ArpOperation.REQUEST, targetIp: "10.0.0.9" });
  }
  assert.equal(ethernet.poll(3000, out), null);
  assert.equal(out.frames.length, 0);
  assert.equal(ethernet.arp.drops.get("unresolved"), 3);
  assert.equal(ethernet.arp.requestsSent, 3);
  assert.deepEqual((ethernet.stats().arp as Record<string, unknown>).failedResolutions, 1);
});

Deno.test("ethernet iface: the waiting queue per destination is bounded and overflow is counted", () => {
  const { core, out } = ethernetCore({ mac: OUR_MAC, ethernet: { arp: { maxQueuedPerDestination: 4 } } });
  const udp = core.udp, ethernet = core.ethernet!;
  const sink = ethernet.ipv4Sink(0, out);
  for (let i = 0; i < 10; i++) {
    udp.sendNow(sink, ip("10.0.0.2"), 5000, ip("10.0.0.9"), 9, new Uint8Array([i]));
  }
  assert.equal(ethernet.cache.queuedPackets, 4);
  assert.equal(ethernet.arp.drops.get("arp-queue-full"), 6);
  out.take();
  ethernet.ingress(arpFrame(ArpOperation.REPLY, HOST_MAC, "10.0.0.9", OUR_MAC, "10.0.0.2", OUR_MAC), 10, out);
  const released = out.take().map((f) => ipv4Of(f, HOST_MAC));
  assert.deepEqual(released.map((p) => p[28]), [0, 1, 2, 3], "the first four, in order");
});

Deno.test("ethernet iface: off-link goes through the gateway; without one it is dropped as no-route", () => {
  const withGateway = makeStack({ gateway: "10.0.0.254" });
  const sink = withGateway.ethernet.ipv4Sink(0, withGateway.out);
  const packet = udpPacket("10.0.0.2", 5000, "192.0.2.7", 9, new Uint8Array([1]));
  sink.sendIpv4(packet);
  const [request] = withGateway.out.take();
  expectArp(request, { dst: BROADCAST_MAC, op: ArpOperation.REQUEST, targetIp: "10.0.0.254" });
  withGateway.ethernet.ingress(
    arpFrame(ArpOperation.REPLY, GATEWAY_MAC, "10.0.0.254", OUR_MAC, "10.0.0.2", OUR_MAC),
    5,
    withGateway.out,
  );
  const [forwarded] = withGateway.out.take();
  expectIpv4(ipv4Of(forwarded, GATEWAY_MAC), { dst: "192.0.2.7" });

  const noGateway = makeStack();
  noGateway.ethernet.ipv4Sink(0, noGateway.out).sendIpv4(packet);
  assert.equal(noGateway.out.frames.length, 0);
  assert.equal(noGateway.ethernet.ethernet.drops.get("no-route"), 1);
  noGateway.ethernet.setGateway(ip("10.0.0.254"));
  noGateway.ethernet.ipv4Sink(0, noGateway.out).sendIpv4(packet);
  expectArp(noGateway.out.take()[0], {
    dst: BROADCAST_MAC,
    op: ArpOperation.REQUEST,
    targetIp: "10.0.0.254",
  });
});

Deno.test("ethernet iface: broadcasts need no ARP; unconfigured, only broadcast leaves", () => {
  const { ethernet, out } = makeStack();
  const sink = ethernet.ipv4Sink(0, out);
  sink.sendIpv4(udpPacket("10.0.0.2", 68, "255.255.255.255", 67, new Uint8Array(4)));
  sink.sendIpv4(udpPacket("10.0.0.2", 68, "10.0.0.255", 67, new Uint8Array(4)));
  const frames = out.take();
  assert.equal(frames.length, 2);
  for (const f of frames) ipv4Of(f, BROADCAST_MAC);

  const unconfigured = makeStack({ address: "0.0.0.0/0" });
  const s = unconfigured.ethernet.ipv4Sink(0, unconfigured.out);
  s.sendIpv4(udpPacket("0.0.0.0", 68, "255.255.255.255", 67, new Uint8Array(4)));
  s.sendIpv4(udpPacket("0.0.0.0", 68, "10.0.0.1", 67, new Uint8Array(4)));
  assert.equal(unconfigured.out.frames.length, 1);
  ipv4Of(unconfigured.out.frames[0], BROADCAST_MAC);
  assert.equal(unconfigured.ethernet.ethernet.drops.get("no-address"), 1);
  // Unconfigured, ARP requests for 0.0.0.0 or any address are not answered.
  unconfigured.ethernet.ingress(
    arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "0.0.0.0"),
    0,
    unconfigured.out,
  );
  assert.equal(unconfigured.out.frames.length, 1);
});

Deno.test("ethernet iface: gratuitous ARP on announce, twice 2 s apart; configure schedules it", () => {
  const { ethernet, out } = makeStack();
  ethernet.announce(0, out);
  const [first] = out.take();
  const arp = expectArp(first, {
    dst: BROADCAST_MAC,
    op: ArpOperation.REQUEST,
    targetIp: "10.0.0.2",
    targetMac: 0,
  });
  assert.equal(arp.senderIp, arp.targetIp, "RFC 5227 announcement: sender and target are both our address");
  assert.equal(ethernet.poll(1000, out), 2000);
  assert.equal(out.frames.length, 0);
  assert.equal(ethernet.poll(2000, out), null);
  expectArp(out.take()[0], { dst: BROADCAST_MAC, op: ArpOperation.REQUEST, targetIp: "10.0.0.2" });
  assert.equal(ethernet.poll(10_000, out), null);
  assert.equal(out.frames.length, 0);
  assert.equal(ethernet.arp.announcementsSent, 2);

  const dhcp = makeStack({ address: "0.0.0.0/0" });
  dhcp.ethernet.announce(0, dhcp.out);
  assert.equal(dhcp.out.frames.length, 0, "nothing to announce without an address");
  dhcp.ethernet.configure({ address: ip("192.168.77.50"), prefixLength: 24 }, ip("192.168.77.1"));
  assert.equal(dhcp.out.frames.length, 0, "configure has no sink: it announces at the next poll");
  dhcp.ethernet.poll(5, dhcp.out);
  expectArp(dhcp.out.take()[0], {
    dst: BROADCAST_MAC,
    op: ArpOperation.REQUEST,
    senderIp: "192.168.77.50",
    targetIp: "192.168.77.50",
  });
  assert.equal(dhcp.ethernet.gateway, ip("192.168.77.1"));
  assert.equal(dhcp.ipv4.address.address, ip("192.168.77.50"));
  dhcp.ethernet.unconfigure();
  assert.equal(dhcp.ethernet.configured, false);
  assert.equal(dhcp.ethernet.poll(2005, dhcp.out), null, "the pending announcement is cancelled");
  assert.equal(dhcp.out.frames.length, 0);
});

Deno.test("ethernet iface: cached entries expire after 60 s and the next packet resolves again", () => {
  const { ethernet, udp, out } = makeStack();
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "10.0.0.2"), 0, out);
  out.take();
  udp.sendNow(ethernet.ipv4Sink(59_999, out), ip("10.0.0.2"), 1, ip("10.0.0.1"), 2, new Uint8Array(1));
  ipv4Of(out.take()[0], HOST_MAC);
  udp.sendNow(ethernet.ipv4Sink(60_000, out), ip("10.0.0.2"), 1, ip("10.0.0.1"), 2, new Uint8Array(1));
  expectArp(out.take()[0], { dst: BROADCAST_MAC, op: ArpOperation.REQUEST, targetIp: "10.0.0.1" });
});

Deno.test("ethernet iface: an ARP packet from a host we know refreshes it (RFC 826 merge)", () => {
  const { ethernet, out } = makeStack();
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "10.0.0.2"), 0, out);
  const NEW_MAC = 0x0a0000000099;
  // The host's gratuitous ARP after a NIC change: target is not us, but the entry exists, so it is updated.
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, NEW_MAC, "10.0.0.1", 0, "10.0.0.1"), 10, out);
  assert.equal(ethernet.cache.lookup(ip("10.0.0.1"), 20), NEW_MAC);
  // Someone claiming our own address is counted and never cached.
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, NEW_MAC, "10.0.0.2", 0, "10.0.0.2"), 30, out);
  assert.equal(ethernet.arp.drops.get("address-conflict"), 1);
  assert.equal(ethernet.cache.lookup(ip("10.0.0.2"), 31), null);
});

Deno.test("ethernet iface: frames it does not use are dropped under named reasons", () => {
  const { ethernet, out } = makeStack();
  const ping = echoRequest("10.0.0.1", "10.0.0.2", 1, 1, new Uint8Array(4));
  ethernet.ingress(new Uint8Array(10), 0, out);
  ethernet.ingress(frame(0x0a0000000077, HOST_MAC, EtherType.IPV4, ping), 0, out);
  ethernet.ingress(frame(0x333300000001, HOST_MAC, EtherType.IPV6, new Uint8Array(40)), 0, out);
  ethernet.ingress(frame(OUR_MAC, HOST_MAC, EtherType.IPV6, new Uint8Array(40)), 0, out);
  ethernet.ingress(frame(OUR_MAC, HOST_MAC, EtherType.VLAN, new Uint8Array(46)), 0, out);
  ethernet.ingress(frame(OUR_MAC, HOST_MAC, 0x88cc, new Uint8Array(46)), 0, out);
  ethernet.ingress(frame(OUR_MAC, OUR_MAC, EtherType.IPV4, ping), 0, out);
  ethernet.ingress(frame(OUR_MAC, BROADCAST_MAC, EtherType.IPV4, ping), 0, out);
  ethernet.ingress(frame(OUR_MAC, HOST_MAC, EtherType.ARP, new Uint8Array(20)), 0, out);
  assert.equal(out.frames.length, 0);
  assert.deepEqual(ethernet.ethernet.drops.stats(), {
    "ipv6-disabled": 1,
    "multicast": 1,
    "multicast-source": 1,
    "not-our-mac": 1,
    "own-frame": 1,
    "truncated": 1,
    "unsupported-ethertype": 1,
    "vlan-tagged": 1,
  });
  assert.equal(ethernet.arp.drops.get("truncated"), 1);
});

Deno.test("ethernet iface: random and mutated frames never throw", () => {
  const { ethernet, out } = makeStack({ gateway: "10.0.0.254" });
  const prng = new Prng(12345);
  const rand = () => prng.next();
  const seeds = [
    arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "10.0.0.2"),
    frame(OUR_MAC, HOST_MAC, EtherType.IPV4, echoRequest("10.0.0.1", "10.0.0.2", 1, 1, new Uint8Array(8))),
    frame(
      BROADCAST_MAC,
      HOST_MAC,
      EtherType.IPV4,
      udpPacket("10.0.0.1", 1, "255.255.255.255", 7, new Uint8Array(8)),
    ),
  ];
  for (let i = 0; i < 5000; i++) {
    const base = seeds[i % seeds.length].slice(0, Math.floor(rand() * 80));
    for (let j = 0; j < 3; j++) {
      if (base.length > 0) base[Math.floor(rand() * base.length)] = Math.floor(rand() * 256);
    }
    ethernet.ingress(base, i, out);
    if (i % 100 === 0) ethernet.poll(i, out);
  }
  out.take();
});

Deno.test("ethernet iface: RFC 5227 probes detect a host answering for, or probing, the address", () => {
  const { ethernet, out } = makeStack({ address: "0.0.0.0/0" });
  ethernet.startProbe(ip("10.0.0.50"));
  assert.equal(ethernet.poll(0, out), 400);
  assert.equal(ethernet.poll(400, out), null, "two probes, then nothing");
  const probes = out.take();
  assert.equal(probes.length, 2);
  for (const probe of probes) {
    const arp = expectArp(probe, {
      dst: BROADCAST_MAC,
      op: ArpOperation.REQUEST,
      senderIp: "0.0.0.0",
      targetIp: "10.0.0.50",
      targetMac: 0,
    });
    assert.equal(arp.senderMac, OUR_MAC);
  }
  assert.equal(ethernet.probeConflict(ip("10.0.0.50")), false, "nobody answered");

  ethernet.startProbe(ip("10.0.0.50"));
  ethernet.ingress(arpFrame(ArpOperation.REPLY, HOST_MAC, "10.0.0.50", OUR_MAC, "0.0.0.0", OUR_MAC), 10, out);
  assert.equal(ethernet.probeConflict(ip("10.0.0.50")), true, "a reply from the address's holder");

  ethernet.startProbe(ip("10.0.0.50"));
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, HOST_MAC, "0.0.0.0", 0, "10.0.0.50"), 10, out);
  assert.equal(ethernet.probeConflict(ip("10.0.0.50")), true, "another host probing at the same time");

  ethernet.startProbe(ip("10.0.0.50"));
  ethernet.ingress(arpFrame(ArpOperation.REQUEST, HOST_MAC, "10.0.0.1", 0, "10.0.0.7"), 10, out);
  assert.equal(ethernet.probeConflict(ip("10.0.0.50")), false, "unrelated ARP traffic is no conflict");
  assert.equal(ethernet.probeConflict(ip("10.0.0.50")), false);
});

Deno.test("ethernet iface: an offloaded packet waiting for ARP is queued with its checksum completed", () => {
  const { ethernet, out } = makeStack();
  const sink = ethernet.ipv4Sink(0, out);
  const { packet, offload } = partialTcpPacket(ip("10.0.0.2"), ip("10.0.0.9"), 100);
  sink.sendIpv4(packet, offload);
  const superSegment = partialTcpPacket(ip("10.0.0.2"), ip("10.0.0.9"), 3000, 1000);
  sink.sendIpv4(superSegment.packet, superSegment.offload);
  assert.equal(ethernet.ethernet.drops.get("offload-unresolved"), 1, "a super-segment cannot wait");
  assert.equal(ethernet.cache.queuedPackets, 1);
  out.take();
  ethernet.ingress(arpFrame(ArpOperation.REPLY, HOST_MAC, "10.0.0.9", OUR_MAC, "10.0.0.2", OUR_MAC), 10, out);
  const [released] = out.take().map((f) => ipv4Of(f, HOST_MAC));
  assert.equal(tcpChecksumValid(released, ip("10.0.0.2"), ip("10.0.0.9")), true);
});

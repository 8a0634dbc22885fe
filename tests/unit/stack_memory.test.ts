/** The whole stack shell (I/O loop, counters, datagram API, capture middleware) over an in-memory device. */

import assert from "node:assert/strict";
import { Stack } from "../../lib/stack/stack.ts";
import { startServices } from "../../lib/services/mod.ts";
import { MemoryDevice } from "../../lib/phy/memory.ts";
import { CaptureDevice } from "../../lib/phy/capture.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";
import { LinkType } from "../../lib/pcap/writer.ts";
import { echoRequest, expectIcmp, expectUdp, udpPacket } from "../helpers/packets.ts";
import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EtherType,
  writeEthernetHeader,
} from "../../lib/wire/ethernet.ts";
import { ArpOperation, ArpPacket, writeArp } from "../../lib/wire/arp.ts";
import { formatIpv6, parseIpv6Cidr } from "../../lib/wire/ipv6_address.ts";
import { writeIpv6Header } from "../../lib/wire/ipv6.ts";
import { UdpDatagram, writeUdpHeaderIpv6 } from "../../lib/wire/udp.ts";
import { ip6 } from "../helpers/ipv6_packets.ts";

/** The stack's UDP drops by reason, from its stats. */
function udpDrops(stack: Stack): Record<string, number> {
  return (stack.stats().udp as { drops: Record<string, number> }).drops;
}

async function until(condition: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

Deno.test("stack: answers ping and UDP echo through the I/O loop, and counts them", async () => {
  const device = new MemoryDevice();
  const stack = new Stack({ device, address: parseIpv4Cidr("10.0.0.2/24")! });
  const services = startServices(stack, ["echo"]);
  try {
    device.inject(echoRequest("10.0.0.1", "10.0.0.2", 7, 1, new Uint8Array([1, 2, 3])));
    device.inject(udpPacket("10.0.0.1", 5555, "10.0.0.2", 7, new Uint8Array([4, 5, 6])));
    await until(() => device.sent.length === 2, "two replies");
    expectIcmp(device.sent[0], { type: 0, dst: "10.0.0.1" });
    assert.deepEqual(expectUdp(device.sent[1], { dstPort: 5555 }).data(), new Uint8Array([4, 5, 6]));
    const stats = stack.stats() as { device: { rxPackets: number; txPackets: number } };
    assert.equal(stats.device.rxPackets, 2);
    assert.equal(stats.device.txPackets, 2);
  } finally {
    await stack.close();
    await services.close();
  }
});

Deno.test("stack: on an Ethernet device, announces itself, answers ARP, and replies to ping by MAC", async () => {
  const device = new MemoryDevice({ medium: "ethernet" });
  const mac = 0x020000000002;
  const peerMac = 0x020000000001;
  const stack = new Stack({ device, address: parseIpv4Cidr("10.0.0.2/24")!, mac });
  try {
    // A gratuitous ARP for the static address goes out at once (RFC 5227 announcement).
    await until(() => device.sent.length >= 1, "the announcement");
    const announcement = new ArpPacket(device.sent[0].subarray(ETHERNET_HEADER_LENGTH));
    assert.equal(announcement.check(), null);
    assert.equal(announcement.senderIp, 0x0a000002);
    device.sent.length = 0;
    // The peer asks who has 10.0.0.2, then pings it.
    const request = new Uint8Array(ETHERNET_HEADER_LENGTH + 28);
    writeEthernetHeader(request, 0, BROADCAST_MAC, peerMac, EtherType.ARP);
    writeArp(request, ETHERNET_HEADER_LENGTH, ArpOperation.REQUEST, peerMac, 0x0a000001, 0, 0x0a000002);
    device.inject(request);
    const ping = echoRequest("10.0.0.1", "10.0.0.2", 9, 1, new Uint8Array([7, 7]));
    const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + ping.length);
    writeEthernetHeader(frame, 0, mac, peerMac, EtherType.IPV4);
    frame.set(ping, ETHERNET_HEADER_LENGTH);
    device.inject(frame);
    await until(() => device.sent.length >= 2, "the ARP reply and the echo reply");
    const arpReply = new ArpPacket(device.sent[0].subarray(ETHERNET_HEADER_LENGTH));
    assert.equal(arpReply.operation, ArpOperation.REPLY);
    assert.equal(arpReply.senderMac, mac);
    const echo = new EthernetFrame(device.sent[1]);
    assert.equal(echo.dst, peerMac, "the reply goes to the MAC learned from the request");
    assert.equal(echo.etherType, EtherType.IPV4);
    expectIcmp(device.sent[1].subarray(ETHERNET_HEADER_LENGTH, ETHERNET_HEADER_LENGTH + ping.length), {
      type: 0,
      dst: "10.0.0.1",
    });
  } finally {
    await stack.close();
  }
});

Deno.test("stack: listenDatagram receives, and its send is flushed by the loop", async () => {
  const device = new MemoryDevice();
  const stack = new Stack({ device, address: parseIpv4Cidr("10.0.0.2/24")! });
  const endpoint = stack.listenDatagram({ port: 5000 });
  try {
    assert.deepEqual(endpoint.addr, { transport: "udp", hostname: "10.0.0.2", port: 5000 });
    device.inject(udpPacket("10.0.0.1", 6000, "10.0.0.2", 5000, new TextEncoder().encode("ping")));
    const [data, remote] = await endpoint.receive();
    assert.equal(new TextDecoder().decode(data), "ping");
    assert.deepEqual(remote, { transport: "udp", hostname: "10.0.0.1", port: 6000 });
    assert.equal(await endpoint.send(new TextEncoder().encode("pong"), remote), 4);
    await until(() => device.sent.length === 1, "the queued datagram");
    const udp = expectUdp(device.sent[0], { src: "10.0.0.2", dst: "10.0.0.1", srcPort: 5000, dstPort: 6000 });
    assert.equal(new TextDecoder().decode(udp.data()), "pong");
    await assert.rejects(endpoint.send(new Uint8Array(1), { hostname: "nope", port: 1 }), TypeError);
  } finally {
    endpoint.close();
    await stack.close();
  }
  await assert.rejects(endpoint.receive(), /closed/);
});

Deno.test("stack: the capture middleware records both directions with link type RAW", async () => {
  const chunks: Uint8Array[] = [];
  const sink = { writeSync: (p: Uint8Array) => (chunks.push(p.slice()), p.length) };
  const memory = new MemoryDevice();
  const device = new CaptureDevice(memory, sink);
  const stack = new Stack({ device, address: parseIpv4Cidr("10.0.0.2/24")! });
  const request = echoRequest("10.0.0.1", "10.0.0.2", 1, 2, new Uint8Array(10));
  memory.inject(request);
  await until(() => memory.sent.length === 1, "the reply");
  await stack.close();
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) (bytes.set(chunk, at), at += chunk.length);
  const file = parsePcap(bytes);
  assert.equal(file.linkType, LinkType.RAW);
  assert.equal(file.records.length, 2);
  assert.deepEqual(file.records[0].data, request);
  assert.deepEqual(file.records[1].data, memory.sent[0]);
  assert.ok(file.records[1].timestampMicros >= file.records[0].timestampMicros);
});

Deno.test("stack: listenDatagram over IPv6 — :: takes both families, 0.0.0.0 IPv4 only; NetAddr has IPv6 hostnames", async () => {
  const device = new MemoryDevice();
  const stack = new Stack({
    device,
    address: parseIpv4Cidr("10.0.0.2/24")!,
    address6: parseIpv6Cidr("fd00::2/64"),
  });
  const both = stack.listenDatagram({ port: 5000, hostname: "::" });
  const v4only = stack.listenDatagram({ port: 5001, hostname: "0.0.0.0" });
  try {
    assert.deepEqual(both.addr, { transport: "udp", hostname: "::", port: 5000 });
    assert.throws(() => stack.listenDatagram({ port: 5002, hostname: "nope" }), TypeError);
    const v6 = new Uint8Array(48 + 4);
    writeIpv6Header(v6, 0, ip6("fd00::1"), ip6("fd00::2"), 17, 12);
    v6.set(new TextEncoder().encode("ping"), 48);
    writeUdpHeaderIpv6(v6, 40, 0, 6000, 5000, 4);
    device.inject(v6);
    const [data, remote] = await both.receive();
    assert.equal(new TextDecoder().decode(data), "ping");
    assert.deepEqual(remote, { transport: "udp", hostname: "fd00::1", port: 6000 });
    device.inject(udpPacket("10.0.0.1", 6001, "10.0.0.2", 5000, new Uint8Array(1)));
    assert.equal((await both.receive())[1].hostname, "10.0.0.1");
    assert.equal(await both.send(new TextEncoder().encode("pong"), remote), 4);
    await until(() => device.sent.length === 1, "the IPv6 reply");
    const reply = device.sent[0];
    assert.equal(reply[0] >> 4, 6);
    assert.equal(formatIpv6(reply, 8), "fd00::2");
    assert.equal(formatIpv6(reply, 24), "fd00::1");
    const udp = new UdpDatagram(reply.subarray(40));
    assert.equal(udp.checkIpv6(reply), null);
    assert.equal(new TextDecoder().decode(udp.data()), "pong");
    // IPv4-only: an IPv6 datagram to its port is counted, not delivered.
    writeUdpHeaderIpv6(v6, 40, 0, 6000, 5001, 4);
    device.inject(v6);
    await until(() => udpDrops(stack)["not-bound-address"] === 1, "the refused datagram");
  } finally {
    both.close();
    v4only.close();
    await stack.close();
  }
});

/**
 * The DHCP client wired into the Ethernet layer (lib/dhcp/mod.ts), driven with Ethernet frames on a virtual
 * clock: the unconfigured stack's DISCOVER leaves as an Ethernet broadcast, broadcast replies get through
 * the IPv4 and UDP layers, the lease configures the interface and announces it, and expiry unconfigures it.
 */

import assert from "node:assert/strict";
import { ethernetCore } from "../helpers/core.ts";
import { ARP_LENGTH, ArpOperation, ArpPacket, writeArp } from "../../lib/wire/arp.ts";
import {
  BootpOp,
  DHCP_FLAG_BROADCAST,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  DhcpOptions,
  DhcpOptionWriter,
  writeDhcpHeader,
} from "../../lib/wire/dhcp.ts";
import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EtherType,
  writeEthernetHeader,
} from "../../lib/wire/ethernet.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, Ipv4Packet, writeIpv4Header } from "../../lib/wire/ipv4.ts";
import { UDP_HEADER_LENGTH, writeUdpHeader } from "../../lib/wire/udp.ts";
import { Icmpv4Type } from "../../lib/wire/icmpv4.ts";
import { echoRequest, expectIcmp, ip } from "../helpers/packets.ts";

const MAC = 0x02000000aa01;
const SERVER_MAC = 0x0a000000bb01;
const SERVER = ip("192.168.77.1");
const OFFERED = ip("192.168.77.50");

/** A DHCP reply from the server as an Ethernet broadcast frame to 255.255.255.255:68. */
function serverFrame(type: number, xid: number, lease = 120): Uint8Array {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH + 400);
  const dhcpAt = ETHERNET_HEADER_LENGTH + IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH;
  const w = new DhcpOptionWriter(
    frame,
    writeDhcpHeader(frame, dhcpAt, {
      op: BootpOp.REPLY,
      xid,
      chaddr: MAC,
      yiaddr: OFFERED,
      flags: DHCP_FLAG_BROADCAST,
    }),
  );
  w.u8(DhcpOption.MESSAGE_TYPE, type).u32(DhcpOption.SERVER_ID, SERVER).u32(DhcpOption.LEASE_TIME, lease)
    .u32(DhcpOption.SUBNET_MASK, 0xffffff00).u32(DhcpOption.ROUTER, SERVER);
  const length = w.end();
  writeUdpHeader(frame, ETHERNET_HEADER_LENGTH + IPV4_HEADER_LENGTH, SERVER, 0xffffffff, 67, 68, length);
  writeIpv4Header(
    frame,
    ETHERNET_HEADER_LENGTH,
    SERVER,
    0xffffffff,
    IpProtocol.UDP,
    UDP_HEADER_LENGTH + length,
  );
  writeEthernetHeader(frame, 0, BROADCAST_MAC, SERVER_MAC, EtherType.IPV4);
  return frame.subarray(0, dhcpAt + length);
}

function dhcpOf(
  frame: Uint8Array,
): { eth: EthernetFrame; ip: Ipv4Packet; message: DhcpMessage; type: number | null } {
  const eth = new EthernetFrame(frame);
  assert.equal(eth.check(), null);
  assert.equal(eth.etherType, EtherType.IPV4);
  const ipv4 = new Ipv4Packet(eth.payload());
  assert.equal(ipv4.check(), null);
  const message = new DhcpMessage(ipv4.payload().subarray(UDP_HEADER_LENGTH));
  return { eth, ip: ipv4, message, type: new DhcpOptions(message.options()).messageType };
}

Deno.test("dhcp attach: DORA over Ethernet, ARP probes, then the interface is configured, announced, pingable", () => {
  const events: string[] = [];
  const { core, out } = ethernetCore({
    mac: MAC,
    dhcp: {
      random: () => 0.5,
      onBound: (lease) => events.push(`bound ${lease.address}`),
      onLost: (reason) => events.push(`lost ${reason}`),
    },
  });
  const { ipv4, udp } = core;
  const ethernet = core.ethernet!, client = core.dhcp!;

  assert.equal(ethernet.poll(0, out), 4000);
  const [discover] = out.take().map(dhcpOf);
  assert.equal(discover.eth.dst, BROADCAST_MAC, "IP broadcast → Ethernet broadcast, no ARP");
  assert.equal(discover.eth.src, MAC);
  assert.equal(discover.ip.src, 0);
  assert.equal(discover.type, DhcpMessageType.DISCOVER);
  const xid = discover.message.xid;

  ethernet.ingress(serverFrame(DhcpMessageType.OFFER, xid), 100, out);
  const [request] = out.take().map(dhcpOf);
  assert.equal(request.type, DhcpMessageType.REQUEST);
  assert.equal(request.eth.dst, BROADCAST_MAC);

  ethernet.ingress(serverFrame(DhcpMessageType.ACK, xid), 200, out);
  assert.equal(client.state, "checking", "RFC 2131 §4.4.1: the address is probed before it is used");
  assert.deepEqual(events, []);
  assert.equal(ethernet.poll(200, out), 600, "second probe 400 ms later");
  const probes = [...out.take()];
  assert.equal(ethernet.poll(600, out), 1200, "bound after the 1 s check");
  probes.push(...out.take());
  assert.equal(probes.length, 2);
  for (const probe of probes) {
    const p = new ArpPacket(new EthernetFrame(probe).payload());
    assert.equal(p.operation, ArpOperation.REQUEST);
    assert.equal(p.senderIp, 0, "RFC 5227 probe: sender address 0.0.0.0");
    assert.equal(p.targetIp, OFFERED);
  }
  assert.equal(ethernet.poll(1200, out), 3200, "next: the second announcement");
  assert.deepEqual(events, [`bound ${OFFERED}`]);
  assert.deepEqual(ipv4.address, { address: OFFERED, prefixLength: 24 });
  assert.equal(ethernet.gateway, SERVER, "the router option becomes the gateway");
  const [announcement] = out.take();
  const arp = new ArpPacket(new EthernetFrame(announcement).payload());
  assert.equal(arp.operation, ArpOperation.REQUEST);
  assert.equal(arp.senderIp, OFFERED, "announced in the same poll as the binding");
  assert.equal(arp.targetIp, OFFERED);

  const ping = new Uint8Array(ETHERNET_HEADER_LENGTH + 28 + 8);
  writeEthernetHeader(ping, 0, MAC, SERVER_MAC, EtherType.IPV4);
  ping.set(echoRequest("192.168.77.1", "192.168.77.50", 1, 1, new Uint8Array(8)), ETHERNET_HEADER_LENGTH);
  ethernet.ingress(ping, 400, out);
  // The server is unknown to the ARP cache: resolve it, then the reply leaves.
  const [who] = out.take();
  assert.equal(new ArpPacket(new EthernetFrame(who).payload()).targetIp, SERVER);
  const arpReply = new Uint8Array(ETHERNET_HEADER_LENGTH + ARP_LENGTH);
  writeEthernetHeader(arpReply, 0, MAC, SERVER_MAC, EtherType.ARP);
  writeArp(arpReply, ETHERNET_HEADER_LENGTH, ArpOperation.REPLY, SERVER_MAC, SERVER, MAC, OFFERED);
  ethernet.ingress(arpReply, 410, out);
  const [pong] = out.take();
  const pongFrame = new EthernetFrame(pong);
  assert.equal(pongFrame.dst, SERVER_MAC);
  expectIcmp(pongFrame.payload(), { src: "192.168.77.50", dst: "192.168.77.1", type: Icmpv4Type.ECHO_REPLY });
  assert.deepEqual(udp.stats().drops, {});
  assert.equal(client.state, "bound");

  // No server any more: at expiry (lease 120 s from the REQUEST at t=100) the interface is unconfigured.
  let now = 400;
  let deadline = ethernet.poll(now, out);
  while (deadline !== null && now < 121_000 && events.length < 2) {
    now = deadline;
    deadline = ethernet.poll(now, out);
  }
  assert.deepEqual(events, [`bound ${OFFERED}`, "lost expired"]);
  assert.equal(now, 120_100, "lease counted from the REQUEST, not from the end of the check");
  assert.equal(ethernet.configured, false);
  assert.equal(ethernet.gateway, null);
  const last = out.take().map((f) => new EthernetFrame(f)).filter((f) => f.etherType === EtherType.IPV4);
  assert.equal(dhcpOf(last[last.length - 1].bytes).type, DhcpMessageType.DISCOVER, "and it starts over");
});

Deno.test("dhcp attach: an address another host answers for is declined, and acquisition restarts later", () => {
  const events: string[] = [];
  const { core, out } = ethernetCore({
    mac: MAC,
    dhcp: { random: () => 0.5, onBound: (lease) => events.push(`bound ${lease.address}`) },
  });
  const ethernet = core.ethernet!, client = core.dhcp!;
  ethernet.poll(0, out);
  const xid = dhcpOf(out.take()[0]).message.xid;
  ethernet.ingress(serverFrame(DhcpMessageType.OFFER, xid), 10, out);
  ethernet.ingress(serverFrame(DhcpMessageType.ACK, xid), 20, out);
  ethernet.poll(20, out);
  out.take();
  // Another host holds the address and answers the probe.
  const OTHER_MAC = 0x0a000000cc01;
  const answer = new Uint8Array(ETHERNET_HEADER_LENGTH + ARP_LENGTH);
  writeEthernetHeader(answer, 0, MAC, OTHER_MAC, EtherType.ARP);
  writeArp(answer, ETHERNET_HEADER_LENGTH, ArpOperation.REPLY, OTHER_MAC, OFFERED, MAC, 0);
  ethernet.ingress(answer, 100, out);
  assert.equal(ethernet.poll(1020, out), 11_020, "DHCPDECLINE, then INIT after 10 s (RFC 2131 §3.1.5)");
  const frames = out.take().map((f) => new EthernetFrame(f)).filter((f) => f.etherType === EtherType.IPV4);
  const decline = dhcpOf(frames[0].bytes);
  assert.equal(decline.type, DhcpMessageType.DECLINE);
  assert.equal(decline.ip.src, 0);
  assert.equal(decline.ip.dst, 0xffffffff);
  const options = new DhcpOptions(decline.message.options());
  assert.equal(options.requestedAddress, OFFERED);
  assert.equal(options.serverId, SERVER);
  assert.deepEqual(events, []);
  assert.equal(ethernet.configured, false);
  assert.equal(client.stats().declines, 1);
  ethernet.poll(11_020, out);
  assert.equal(dhcpOf(out.take()[0]).type, DhcpMessageType.DISCOVER);
});

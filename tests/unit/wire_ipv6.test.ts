import assert from "node:assert/strict";
import {
  eui64InterfaceId,
  formatIpv6,
  formatIpv6Cidr,
  inIpv6Prefix,
  ipv6MulticastMacAt,
  isLinkLocalAt,
  linkLocalFromMac,
  parseIpv6,
  parseIpv6Cidr,
  solicitedNodeGroup,
} from "../../lib/wire/ipv6_address.ts";
import { IPV6_HEADER_LENGTH, Ipv6Packet, writeIpv6Header } from "../../lib/wire/ipv6.ts";
import {
  Ipv6HeaderChain,
  MAX_EXTENSION_HEADERS,
  writeFragmentHeader,
  writeRouterAlertHeader,
} from "../../lib/wire/ipv6_ext.ts";
import { finishIcmpv6Checksum, Icmpv6Message, writeIcmpv6Error } from "../../lib/wire/icmpv6.ts";
import { UDP_HEADER_LENGTH, UdpDatagram, writeUdpHeaderIpv6 } from "../../lib/wire/udp.ts";
import { formatMac } from "../../lib/wire/ethernet.ts";
import { fillTcpChecksumIpv6, TcpFlags, TcpSegment, writeTcpHeader } from "../../lib/wire/tcp.ts";
import { chainPacket, echoRequest6, fragmentHeader, ip6, optionsHeader } from "../helpers/ipv6_packets.ts";

const HBH = 0;
const DST = 60;
const UDP = 17;
const udpStub = new Uint8Array(8);

Deno.test("ipv6 address: parse and RFC 5952 format round-trip", () => {
  for (
    const [text, canonical] of [
      ["fd00::2", "fd00::2"],
      ["FD00:0:0:0:0:0:0:2", "fd00::2"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["::", "::"],
      ["::ffff:10.0.0.1", "::ffff:a00:1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ]
  ) assert.equal(formatIpv6(parseIpv6(text)!), canonical, text);
  for (const bad of ["", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "fd00::g", "1:2:3:4:5:6:7"]) {
    assert.equal(parseIpv6(bad), null, bad);
  }
  assert.equal(formatIpv6Cidr(parseIpv6Cidr("fd00::2/64")!), "fd00::2/64");
  assert.equal(parseIpv6Cidr("fd00::2/129"), null);
  assert.equal(parseIpv6Cidr("fd00::2"), null);
  assert.equal(inIpv6Prefix(ip6("fd00::99"), parseIpv6Cidr("fd00::2/64")!), true);
  assert.equal(inIpv6Prefix(ip6("fd00:0:0:1::2"), parseIpv6Cidr("fd00::2/64")!), false);
  assert.equal(inIpv6Prefix(ip6("fd00::8000:0:0:0"), parseIpv6Cidr("fd00::/65")!), false);
});

Deno.test("ipv6 address: EUI-64 link-local, solicited-node group and its MAC (RFC 4291, RFC 2464)", () => {
  const mac = 0x52_54_00_12_34_56;
  assert.deepEqual([...eui64InterfaceId(mac)], [0x50, 0x54, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56]);
  const ll = linkLocalFromMac(mac);
  assert.equal(formatIpv6(ll), "fe80::5054:ff:fe12:3456");
  assert.equal(isLinkLocalAt(ll, 0), true);
  const group = solicitedNodeGroup(ll);
  assert.equal(formatIpv6(group), "ff02::1:ff12:3456");
  assert.equal(formatMac(ipv6MulticastMacAt(group, 0)), "33:33:ff:12:34:56");
});

Deno.test("ipv6 header: a written header parses back; truncation and bad lengths are named", () => {
  const packet = new Uint8Array(60);
  writeIpv6Header(packet, 0, ip6("fd00::1"), ip6("fd00::2"), UDP, 20, 255, 0xb8, 0xabcde);
  const view = new Ipv6Packet(packet);
  assert.equal(view.check(), null);
  assert.equal(view.version, 6);
  assert.equal(view.trafficClass, 0xb8);
  assert.equal(view.flowLabel, 0xabcde);
  assert.equal(view.payloadLength, 20);
  assert.equal(view.nextHeader, UDP);
  assert.equal(view.hopLimit, 255);
  assert.equal(formatIpv6(view.src), "fd00::1");
  assert.equal(formatIpv6(view.dst), "fd00::2");
  assert.equal(view.wrap(packet.subarray(0, 39)).check(), "truncated");
  assert.equal(view.wrap(packet.subarray(0, 59)).check(), "bad-payload-length");
  const v4 = packet.slice();
  v4[0] = 0x45;
  assert.equal(view.wrap(v4).check(), "bad-version");
});

function walk(packet: Uint8Array): Ipv6HeaderChain {
  const chain = new Ipv6HeaderChain();
  chain.walk(packet, packet.length);
  return chain;
}

Deno.test("ipv6 chain: hop-by-hop, destination options and an atomic fragment reach the upper layer", () => {
  const packet = chainPacket(
    [optionsHeader(HBH, [5, 2, 0, 0]), optionsHeader(DST, [0x1e, 3, 1, 2, 3]), fragmentHeader(0, false, 9)],
    UDP,
    udpStub,
  );
  const chain = walk(packet);
  assert.equal(chain.error, null);
  assert.equal(chain.upperProtocol, UDP);
  assert.equal(chain.upperOffset, 40 + 8 + 8 + 8);
  assert.equal(chain.routerAlert, 0);
  assert.equal(chain.atomicFragment, true);
  assert.equal(chain.identification, 9);
  assert.equal(chain.headerCount, 3);
});

Deno.test("ipv6 chain: hop-by-hop after another header is an unrecognised next header (code 1)", () => {
  const packet = chainPacket([optionsHeader(DST, []), optionsHeader(HBH, [])], UDP, udpStub);
  const chain = walk(packet);
  assert.equal(chain.error, "hop-by-hop-not-first");
  assert.equal(chain.icmpCode, 1);
  assert.equal(chain.icmpPointer, 40, "points at the Next Header byte naming the misplaced header");
});

Deno.test("ipv6 chain: truncated headers are dropped without an error message", () => {
  const whole = chainPacket([optionsHeader(DST, [0x1e, 10, ...new Array(10).fill(0)])], UDP, udpStub);
  for (const cut of [41, 47, 50]) {
    const packet = whole.slice(0, cut);
    packet[4] = 0;
    packet[5] = cut - 40;
    const chain = walk(packet);
    assert.equal(chain.error, "truncated-extension-header", `cut at ${cut}`);
    assert.equal(chain.icmpCode, -1);
  }
});

Deno.test("ipv6 chain: a long (looping) chain is cut off at the bound", () => {
  const headers = Array.from({ length: MAX_EXTENSION_HEADERS + 1 }, () => optionsHeader(DST, []));
  assert.equal(walk(chainPacket(headers, UDP, udpStub)).error, "too-many-extension-headers");
  assert.equal(walk(chainPacket(headers.slice(1), UDP, udpStub)).error, null);
  const twice = chainPacket([fragmentHeader(0, false, 1), fragmentHeader(0, false, 1)], UDP, udpStub);
  assert.equal(walk(twice).error, "nested-fragment");
});

Deno.test("ipv6 chain: an option running past its header is an erroneous field (code 0)", () => {
  // Option 0x1e claims 200 bytes in an 8-byte header.
  const packet = chainPacket([optionsHeader(DST, [0x1e, 200])], UDP, udpStub);
  const chain = walk(packet);
  assert.equal(chain.error, "bad-option-length");
  assert.equal(chain.icmpCode, 0);
  assert.equal(chain.icmpPointer, 43);
});

Deno.test("ipv6 chain: too many options and too much padding are refused", () => {
  const many = Array.from({ length: 9 }, () => [0x1e, 0]).flat();
  assert.equal(walk(chainPacket([optionsHeader(DST, many)], UDP, udpStub)).error, "too-many-options");
  const pad = [1, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0x1e, 0, 1, 0];
  assert.equal(walk(chainPacket([optionsHeader(DST, pad)], UDP, udpStub)).error, "excessive-padding");
});

Deno.test("ipv6 chain: the unrecognised-option action bits (RFC 8200 §4.2)", () => {
  const cases: [number, string | null, number, number][] = [
    // [option type, error, code to unicast, code to multicast]
    [0x1e, null, -1, -1],
    [0x5e, "unrecognized-option", -1, -1],
    [0x9e, "unrecognized-option", 2, 2],
    [0xde, "unrecognized-option", 2, -1],
  ];
  for (const [type, error, unicastCode, multicastCode] of cases) {
    const unicast = walk(chainPacket([optionsHeader(DST, [type, 0])], UDP, udpStub));
    assert.equal(unicast.error, error, `type 0x${type.toString(16)}`);
    assert.equal(unicast.icmpCode, unicastCode);
    if (unicastCode >= 0) assert.equal(unicast.icmpPointer, 42, "points at the option type");
    const multicast = walk(
      chainPacket([optionsHeader(DST, [type, 0])], UDP, udpStub, ip6("fd00::1"), ip6("ff02::1")),
    );
    assert.equal(multicast.icmpCode, multicastCode);
  }
});

Deno.test("ipv6 chain: routing headers pass with segments left 0 and are refused otherwise", () => {
  const routing = (left: number) => ({ type: 43, bytes: [0, 0, 4, left, 0, 0, 0, 0] });
  assert.equal(walk(chainPacket([routing(0)], UDP, udpStub)).error, null);
  const chain = walk(chainPacket([routing(1)], UDP, udpStub));
  assert.equal(chain.error, "routing-header");
  assert.equal(chain.icmpCode, 0);
  assert.equal(chain.icmpPointer, 42);
});

Deno.test("ipv6 chain: fragments — later ones stop at the Fragment header; first ones need the whole chain", () => {
  const later = walk(chainPacket([fragmentHeader(1232, true, 5)], UDP, new Uint8Array(16)));
  assert.equal(later.error, null);
  assert.equal(later.fragmentOffset, 1232);
  assert.equal(later.moreFragments, true);
  assert.equal(later.upperProtocol, UDP);
  assert.equal(later.upperOffset, 48);
  // RFC 7112: a first fragment that ends inside the chain (a destination header, no UDP header).
  const incomplete = walk(
    chainPacket([fragmentHeader(0, true, 5), optionsHeader(DST, [])], UDP, new Uint8Array(0)),
  );
  assert.equal(incomplete.error, "incomplete-header-chain");
  assert.equal(incomplete.icmpCode, 3);
  const partialUdp = walk(chainPacket([fragmentHeader(0, true, 5)], UDP, new Uint8Array(4)));
  assert.equal(partialUdp.error, "incomplete-header-chain");
  const first = walk(chainPacket([fragmentHeader(0, true, 5)], UDP, new Uint8Array(16)));
  assert.equal(first.error, null);
  assert.equal(first.fragmentHeader, 40);
  assert.equal(first.fragmentNextHeaderField, 6);
});

Deno.test("ipv6 chain: the writers produce headers the walk accepts", () => {
  const packet = new Uint8Array(40 + 8 + 8 + 8);
  writeIpv6Header(packet, 0, ip6("fd00::1"), ip6("ff02::16"), HBH, 24, 1);
  writeRouterAlertHeader(packet, 40, 44);
  writeFragmentHeader(packet, 48, UDP, 0, false, 0xdeadbeef);
  const chain = walk(packet);
  assert.equal(chain.error, null);
  assert.equal(chain.routerAlert, 0);
  assert.equal(chain.identification, 0xdeadbeef);
  assert.equal(chain.upperOffset, 56);
});

Deno.test("icmpv6: echo checksum covers the pseudo-header; errors quote the packet", () => {
  const packet = echoRequest6(ip6("fd00::1"), ip6("fd00::2"), new Uint8Array([1, 2, 3]));
  const view = new Icmpv6Message(packet.subarray(40));
  assert.equal(view.check(packet), null);
  assert.equal(view.type, 128);
  assert.equal(view.identifier, 7);
  const moved = packet.slice();
  moved[39] = 3; // another destination: the pseudo-header no longer matches
  assert.equal(new Icmpv6Message(moved.subarray(40)).check(moved), "bad-checksum");
  assert.equal(new Icmpv6Message(packet.subarray(40, 43)).check(packet), "truncated");
  const error = new Uint8Array(40 + 8 + packet.length);
  const length = writeIcmpv6Error(error, 40, 4, 0, 43, packet);
  writeIpv6Header(error, 0, ip6("fd00::2"), ip6("fd00::1"), 58, length);
  finishIcmpv6Checksum(error, 0, 40, 40 + length);
  const errorView = new Icmpv6Message(error.subarray(40));
  assert.equal(errorView.check(error), null);
  assert.equal(errorView.isError, true);
  assert.equal(errorView.parameter, 43);
});

Deno.test("udp over ipv6: checksum with the IPv6 pseudo-header; a zero checksum is refused", () => {
  const data = new TextEncoder().encode("hello");
  const packet = new Uint8Array(IPV6_HEADER_LENGTH + UDP_HEADER_LENGTH + data.length);
  writeIpv6Header(packet, 0, ip6("fd00::1"), ip6("fd00::2"), UDP, UDP_HEADER_LENGTH + data.length);
  packet.set(data, 48);
  writeUdpHeaderIpv6(packet, 40, 0, 5000, 7, data.length);
  const udp = new UdpDatagram(packet.subarray(40));
  assert.equal(udp.checkIpv6(packet), null);
  assert.equal(udp.dstPort, 7);
  packet[50] ^= 1;
  assert.equal(udp.checkIpv6(packet), "bad-checksum");
  packet[46] = 0;
  packet[47] = 0;
  assert.equal(udp.checkIpv6(packet), "zero-checksum");
  assert.equal(udp.checkIpv6(packet, false), null, "an offloaded (trusted) checksum is not verified");
});

Deno.test("tcp over ipv6: the checksum covers the IPv6 pseudo-header", () => {
  const packet = new Uint8Array(40 + 20 + 4);
  writeIpv6Header(packet, 0, ip6("fd00::1"), ip6("fd00::2"), 6, 24);
  writeTcpHeader(packet, 40, 5000, 80, 1, 0, TcpFlags.SYN, 65535);
  packet.set([1, 2, 3, 4], 60);
  fillTcpChecksumIpv6(packet, 40, 24, 0);
  const segment = new TcpSegment().wrap(packet, 40, 64);
  assert.equal(segment.checkIpv6(packet), null);
  packet[39] ^= 1; // another destination
  assert.equal(segment.checkIpv6(packet), "bad-checksum");
  assert.equal(segment.checkIpv6(packet, false), null);
  assert.equal(new TcpSegment().wrap(packet, 40, 50).checkIpv6(packet), "truncated");
});

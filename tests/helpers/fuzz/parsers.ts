/**
 * Fuzzing: every parser in lib/wire over one input, at every place a header could start in it. A parser
 * must not throw for any bytes, and what it accepts must be self-consistent (lengths within the bytes,
 * option values within their ranges). A broken promise throws a {@link ParserViolation}.
 *
 * @module
 */

import { Ipv4Packet } from "../../../lib/wire/ipv4.ts";
import { MAX_SACK_BLOCKS, parseTcpOptions, TcpOptions, TcpSegment } from "../../../lib/wire/tcp.ts";
import { UdpDatagram } from "../../../lib/wire/udp.ts";
import { Icmpv4Message } from "../../../lib/wire/icmpv4.ts";
import { ArpPacket } from "../../../lib/wire/arp.ts";
import { EthernetFrame } from "../../../lib/wire/ethernet.ts";
import { DHCP_OPTIONS_OFFSET, DhcpMessage, DhcpOptions } from "../../../lib/wire/dhcp.ts";
import { virtioFlags, virtioGsoSize, virtioGsoType } from "../../../lib/wire/virtio_net.ts";
import { completePartialChecksum } from "../../../lib/wire/offload.ts";
import { readIpv4 } from "../../../lib/wire/ipv4_address.ts";
import { Ipv6Packet } from "../../../lib/wire/ipv6.ts";
import { Ipv6HeaderChain, MAX_EXTENSION_HEADERS } from "../../../lib/wire/ipv6_ext.ts";
import { Icmpv6Message } from "../../../lib/wire/icmpv6.ts";
import { NdpOptions, ndpOptionsOffset } from "../../../lib/wire/ndp.ts";

/** A parser broke its contract on some input. */
export class ParserViolation extends Error {
  /** Names the parser and what it did. */
  constructor(message: string) {
    super(message);
    this.name = "ParserViolation";
  }
}

function require(condition: boolean, what: string): void {
  if (!condition) throw new ParserViolation(what);
}

const ip = new Ipv4Packet();
const tcp = new TcpSegment();
const tcpOptions = new TcpOptions();
const udp = new UdpDatagram();
const icmp = new Icmpv4Message();
const arp = new ArpPacket();
const ethernet = new EthernetFrame();
const dhcp = new DhcpMessage();
const ip6 = new Ipv6Packet();
const chain = new Ipv6HeaderChain();
const icmp6 = new Icmpv6Message();
const ndpOptions = new NdpOptions();

/** Runs the IPv6 parsers (header, extension header chain, ICMPv6, NDP options, TCP, UDP) on `b`. */
function ipv6AndAbove(b: Uint8Array): number {
  if (ip6.wrap(b).check() !== null) return 1;
  const end = ip6.end;
  require(end >= 40 && end <= b.length, "ipv6: payload length outside the bytes");
  void ip6.trafficClass, ip6.flowLabel, ip6.hopLimit, ip6.src, ip6.dst;
  if (!chain.walk(b, end)) {
    require(chain.error !== null, "ipv6 chain: failed without a reason");
    require(chain.icmpCode < 0 || (chain.icmpPointer >= 0 && chain.icmpPointer < end), "ipv6 chain: pointer");
    return 2;
  }
  require(chain.upperOffset >= 40 && chain.upperOffset <= end, "ipv6 chain: upper layer outside the packet");
  require(chain.headerCount <= MAX_EXTENSION_HEADERS + 1, "ipv6 chain: more headers than allowed");
  if (chain.fragmentHeader >= 0) {
    require(chain.fragmentHeader + 8 <= end, "ipv6 chain: fragment header outside the packet");
    require(chain.fragmentOffset % 8 === 0 && chain.fragmentOffset <= 0xfff8, "ipv6 chain: fragment offset");
  }
  const at = chain.upperOffset;
  const payload = b.subarray(at, end);
  for (const verify of [true, false]) {
    if (tcp.wrap(b, at, end).checkIpv6(b, verify) === null) {
      require(tcp.headerLength >= 20 && at + tcp.headerLength <= end, "tcp6: header outside the segment");
      parseTcpOptions(b, tcp.optionsOffset, tcp.payloadOffset, tcpOptions);
    }
    if (udp.wrap(payload).checkIpv6(b, verify) === null) {
      require(udp.length >= 8 && udp.length <= payload.length, "udp6: length outside the bytes");
    }
    if (icmp6.wrap(payload).check(b, verify) === null) {
      require(payload.length >= 4, "icmp6: accepted a short message");
      void icmp6.type, icmp6.code, icmp6.isError, icmp6.parameter;
      const optionsAt = ndpOptionsOffset(icmp6.type);
      if (optionsAt > 0 && optionsAt <= payload.length) {
        if (ndpOptions.parse(payload, optionsAt, payload.length) === null) {
          require(ndpOptions.prefixes.every((p) => p.prefix.length === 16), "ndp: prefix length");
          require(ndpOptions.mtu >= -1 && ndpOptions.mtu <= 0xffffffff, "ndp: MTU out of range");
        }
      }
    }
  }
  return 8;
}

/** Runs the IPv4 parser and those of its payload on `b` (an IPv4 packet, maybe); returns parsers run. */
function ipv4AndAbove(b: Uint8Array): number {
  let runs = 1;
  if (ip.wrap(b).check() !== null) return runs;
  const headerLength = ip.headerLength, total = ip.totalLength;
  require(headerLength >= 20 && headerLength <= total && total <= b.length, "ipv4: lengths out of the bytes");
  require(ip.payload().length === total - headerLength, "ipv4: payload length");
  const src = ip.src, dst = ip.dst;
  const payload = b.subarray(headerLength, total);
  // Every transport parser over the payload, whatever the protocol field says: they must all hold up.
  runs += transports(payload, src, dst);
  return runs;
}

function transports(payload: Uint8Array, src: number, dst: number): number {
  for (const verify of [true, false]) {
    if (tcp.wrap(payload, 0, payload.length).check(src, dst, verify) === null) {
      const h = tcp.headerLength;
      require(h >= 20 && h <= payload.length, "tcp: header length outside the segment");
      require(tcp.payloadOffset + tcp.payloadLength === tcp.end, "tcp: payload does not end the segment");
      require(tcp.sequenceLength >= tcp.payloadLength, "tcp: sequence length");
      const o = parseTcpOptions(payload, tcp.optionsOffset, tcp.payloadOffset, tcpOptions);
      require(o.mss >= -1 && o.mss <= 0xffff, "tcp options: MSS out of range");
      require(o.windowScale >= -1 && o.windowScale <= 14, "tcp options: window scale above 14");
      require(o.sackBlockCount >= 0 && o.sackBlockCount <= MAX_SACK_BLOCKS, "tcp options: SACK blocks");
      require(!o.hasTimestamps || (o.tsVal >= 0 && o.tsVal <= 0xffffffff), "tcp options: TSval");
    }
    const udpError = udp.wrap(payload).check(src, dst, verify);
    if (udpError === null) {
      require(udp.length >= 8 && udp.length <= payload.length, "udp: length outside the bytes");
      require(udp.data().length === udp.length - 8, "udp: data length");
      if (udp.dstPort === 67 || udp.dstPort === 68) dhcpMessage(udp.data());
    }
  }
  // Options parsing over arbitrary ranges (as if the data offset lied), including empty and reversed.
  parseTcpOptions(payload, 0, payload.length, tcpOptions);
  parseTcpOptions(payload, Math.min(20, payload.length), payload.length + 3, tcpOptions);
  require(tcpOptions.sackBlockCount <= MAX_SACK_BLOCKS, "tcp options: SACK blocks past the end");
  if (icmp.wrap(payload).check() === null) {
    require(payload.length >= 8 && icmp.data().length === payload.length - 8, "icmp: data length");
  }
  return 6;
}

function dhcpMessage(b: Uint8Array): void {
  if (dhcp.wrap(b).check() !== null) return;
  require(b.length >= DHCP_OPTIONS_OFFSET, "dhcp: accepted a short message");
  void dhcp.xid, dhcp.yiaddr, dhcp.chaddr;
  const options = new DhcpOptions(dhcp.options());
  for (const code of options.codes()) {
    require(options.get(code) !== undefined, "dhcp: a listed option is absent");
  }
  void options.messageType, options.subnetMask, options.routers, options.dnsServers, options.leaseTime;
  void options.serverId, options.renewalTime, options.rebindingTime, options.message, options.hostname;
}

/**
 * Runs every wire parser over `b` as an IPv4 packet, an IPv6 packet, an Ethernet frame, an ARP packet, a DHCP message, a
 * virtio_net header, and (a copy) through checksum completion. Returns how many parser runs were made;
 * throws a {@link ParserViolation} (or whatever a parser threw) on a broken contract.
 */
export function runParsers(b: Uint8Array): number {
  let runs = ipv4AndAbove(b) + ipv6AndAbove(b);
  if (ethernet.wrap(b).check() === null) {
    require(b.length >= 14 && ethernet.payload().length === b.length - 14, "ethernet: payload");
    void ethernet.dst, ethernet.src, ethernet.etherType;
    runs += ipv4AndAbove(b.subarray(14)) + ipv6AndAbove(b.subarray(14));
    if (arp.wrap(b.subarray(14)).check() === null) void arp.senderMac, arp.senderIp, arp.targetIp;
    runs += 2;
  }
  if (arp.wrap(b).check() === null) {
    require(b.length >= 28, "arp: accepted a short packet");
    void arp.operation, arp.senderMac, arp.targetMac, arp.senderIp, arp.targetIp;
  }
  // Without an IP header to vouch for it: the payload parsers on the raw bytes, and DHCP.
  runs += transports(b, b.length >= 4 ? readIpv4(b, 0) : 0, 0x0a000002);
  dhcpMessage(b);
  if (b.length >= 10) void virtioFlags(b), virtioGsoType(b), virtioGsoSize(b);
  const copy = b.slice();
  const completed = completePartialChecksum(copy);
  require(completed || copy.every((v, i) => v === b[i]), "offload: changed a packet it refused");
  return runs + 4;
}

/**
 * Fuzzing: every packet in is accounted for by exactly one counter. Each layer either drops a packet
 * (counted under a named reason) or accepts it (`rxPackets`) and hands it to exactly one layer above; the
 * equations below say so, layer by layer, for IPv4 and IPv6 (which share UDP and TCP). A packet that
 * vanishes without a counter, or one counted twice, breaks an equation.
 *
 * @module
 */

import { REASSEMBLY_DROP_REASONS } from "../../../lib/iface/ipv4_reassembly.ts";

/** An IP layer's counters. */
interface IpCounters {
  rx: number;
  drops: Record<string, number>;
  fragmentsIn: number;
  reassembled: number;
}

/** The counters the equations read (a plain snapshot, taken by the fuzz core from the layers). */
export interface Counters {
  /** Packets (or frames) handed to the core. */
  deviceIn: number;
  /** Ethernet layer (null on an IP device). */
  ethernet: { rx: number; drops: Record<string, number> } | null;
  /** ARP (null on an IP device). */
  arp: { rx: number; drops: Record<string, number> } | null;
  /** IPv4 layer. */
  ipv4: IpCounters;
  /** IPv6 layer (the same packet counts and drop reasons as IPv4, reassembly included). */
  ipv6: IpCounters;
  /** ICMP. */
  icmp: { rx: number; drops: Record<string, number> };
  /** ICMPv6 (echo requests answered end in `echoReplies`, NDP and MLD messages in `ndp`). */
  icmp6: { rx: number; drops: Record<string, number>; echoReplies: number };
  /** NDP and MLD on Ethernet (null on an IP device, where ICMPv6 drops them). */
  ndp: { rx: number; drops: Record<string, number> } | null;
  /** UDP. */
  udp: { rx: number; drops: Record<string, number> };
  /** TCP. */
  tcp: {
    segmentsIn: number;
    toConnections: number;
    passiveOpens: number;
    syncookiesSent: number;
    drops: Record<string, number>;
  };
}

/** Ethernet drops of received frames (the others count frames the stack could not send). */
const ETHERNET_RX_REASONS = [
  "truncated",
  "vlan-tagged",
  "length-field",
  "not-our-mac",
  "multicast",
  "own-frame",
  "multicast-source",
  "ipv6",
  "ipv6-disabled",
  "unsupported-ethertype",
];
/** ARP drops of malformed packets (the others are decisions about valid ones, or unresolved sends). */
const ARP_CHECK_REASONS = ["truncated", "unsupported-hardware", "unsupported-protocol", "bad-operation"];
/** UDP drops of datagrams the stack sends (not received ones). */
const UDP_TX_REASONS = ["too-big", "send-queue-full", "no-source-address"];
/** IPv6 drops of packets already counted received (`rxPackets`): decisions after the header chain. */
const IPV6_AFTER_RX_REASONS = [
  "tentative-address",
  "no-next-header",
  "unsupported-protocol",
  "protocol-error",
];
/** TCP drops decided by the layer itself, before any connection or listener sees the segment. */
const TCP_LAYER_REASONS = [
  "truncated",
  "bad-offset",
  "bad-checksum",
  "broadcast",
  "no-socket",
  "listen-bad-segment",
  "listen-overflow",
];
/** Counters that only move when an exception was caught inside the core: a bug, never input's fault. */
export const BUG_COUNTERS = [
  "ipv4 drops protocol-error",
  "ipv6 drops protocol-error",
  "tcp drops internal-error",
] as const;

function sum(drops: Record<string, number>, only?: readonly string[], except?: readonly string[]): number {
  let total = 0;
  for (const [reason, n] of Object.entries(drops)) {
    if (only !== undefined && !only.includes(reason)) continue;
    if (except !== undefined && except.includes(reason)) continue;
    total += n;
  }
  return total;
}

/** Packets that entered an IP layer: dropped before delivery, taken as fragments, or received. */
function ipIn(ip: IpCounters, except: readonly string[]): number {
  // A fragment ends at the IP layer (counted in fragmentsIn); a reassembled datagram starts again.
  return sum(ip.drops, undefined, [...REASSEMBLY_DROP_REASONS, ...except]) + ip.fragmentsIn + ip.rx -
    ip.reassembled;
}

/** Returns the equations that do not hold (empty when every packet is accounted for exactly once). */
export function unaccounted(c: Counters): string[] {
  const problems: string[] = [];
  const equal = (name: string, left: number, right: number) => {
    if (left !== right) problems.push(`${name}: ${left} != ${right}`);
  };
  let ipPackets = c.deviceIn;
  if (c.ethernet !== null && c.arp !== null) {
    equal(
      "frames in = ethernet drops + ethernet rx",
      c.deviceIn,
      sum(c.ethernet.drops, ETHERNET_RX_REASONS) + c.ethernet.rx,
    );
    const arpIn = c.arp.rx + sum(c.arp.drops, ARP_CHECK_REASONS);
    ipPackets = c.ethernet.rx - arpIn;
  }
  equal(
    "ip packets in = ipv4 (drops + fragments + rx - reassembled) + ipv6 (likewise)",
    ipPackets,
    ipIn(c.ipv4, ["protocol-error"]) + ipIn(c.ipv6, IPV6_AFTER_RX_REASONS),
  );
  // ICMPv6 messages received end as NDP/MLD, an echo answered, or a drop (ICMPv6's own, or the IPv6
  // layer's "tentative-address"); the other IPv6 drops after `rxPackets` are the layer's own decisions.
  equal(
    "ipv4 rx + ipv6 rx = icmp in + icmpv6 (drops + ndp + echo replies) + ipv6 drops after rx + udp in + tcp in",
    c.ipv4.rx + c.ipv6.rx,
    c.icmp.rx + sum(c.icmp.drops) + sum(c.icmp6.drops) + (c.ndp?.rx ?? 0) + c.icmp6.echoReplies +
      sum(c.ipv6.drops, IPV6_AFTER_RX_REASONS) +
      c.udp.rx + sum(c.udp.drops, undefined, UDP_TX_REASONS) + c.tcp.segmentsIn,
  );
  equal(
    "tcp in = tcp layer drops + to listeners (passive opens, cookies sent) + to connections",
    c.tcp.segmentsIn,
    sum(c.tcp.drops, TCP_LAYER_REASONS) + c.tcp.passiveOpens + c.tcp.syncookiesSent + c.tcp.toConnections,
  );
  for (const name of BUG_COUNTERS) {
    const [layer, , reason] = name.split(" ");
    const drops = layer === "ipv4" ? c.ipv4.drops : layer === "ipv6" ? c.ipv6.drops : c.tcp.drops;
    if ((drops[reason] ?? 0) > 0) problems.push(`${name} > 0 (a caught exception)`);
  }
  return problems;
}

/** Every drop counter as `layer reason` → count (only those above zero), for the end-of-run summary. */
export function dropsByReason(c: Counters): Map<string, number> {
  const out = new Map<string, number>();
  const add = (layer: string, drops: Record<string, number> | undefined) => {
    for (const [reason, n] of Object.entries(drops ?? {})) {
      if (n > 0) out.set(`${layer} ${reason}`, (out.get(`${layer} ${reason}`) ?? 0) + n);
    }
  };
  add("ethernet", c.ethernet?.drops);
  add("arp", c.arp?.drops);
  add("ipv4", c.ipv4.drops);
  add("ipv6", c.ipv6.drops);
  add("icmp", c.icmp.drops);
  add("icmp6", c.icmp6.drops);
  add("ndp", c.ndp?.drops);
  add("udp", c.udp.drops);
  add("tcp", c.tcp.drops);
  return out;
}

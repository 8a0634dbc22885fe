/**
 * Fuzzing: every packet in is accounted for by exactly one counter. Each layer either drops a packet
 * (counted under a named reason) or accepts it (`rxPackets`) and hands it to exactly one layer above; the
 * equations below say so, layer by layer. A packet that vanishes without a counter, or one counted twice,
 * breaks an equation.
 *
 * @module
 */

import { REASSEMBLY_DROP_REASONS } from "../../../lib/iface/ipv4_reassembly.ts";

/** The counters the equations read (a plain snapshot, taken by the fuzz core from the layers). */
export interface Counters {
  /** Packets (or frames) handed to the core. */
  deviceIn: number;
  /** Ethernet layer (null on an IP device). */
  ethernet: { rx: number; drops: Record<string, number> } | null;
  /** ARP (null on an IP device). */
  arp: { rx: number; drops: Record<string, number> } | null;
  /** IPv4 layer. */
  ipv4: { rx: number; drops: Record<string, number>; fragmentsIn: number; reassembled: number };
  /** IPv6 packets arriving on the same device, dropped (counted apart from IPv4). */
  ipv6Drops: Record<string, number>;
  /** ICMP. */
  icmp: { rx: number; drops: Record<string, number> };
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
const UDP_TX_REASONS = ["too-big", "send-queue-full"];
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
export const BUG_COUNTERS = ["ipv4 drops protocol-error", "tcp drops internal-error"] as const;

function sum(drops: Record<string, number>, only?: readonly string[], except?: readonly string[]): number {
  let total = 0;
  for (const [reason, n] of Object.entries(drops)) {
    if (only !== undefined && !only.includes(reason)) continue;
    if (except !== undefined && except.includes(reason)) continue;
    total += n;
  }
  return total;
}

/** Returns the equations that do not hold (empty when every packet is accounted for exactly once). */
export function unaccounted(c: Counters): string[] {
  const problems: string[] = [];
  const equal = (name: string, left: number, right: number) => {
    if (left !== right) problems.push(`${name}: ${left} != ${right}`);
  };
  let ipv4In = c.deviceIn;
  if (c.ethernet !== null && c.arp !== null) {
    equal(
      "frames in = ethernet drops + ethernet rx",
      c.deviceIn,
      sum(c.ethernet.drops, ETHERNET_RX_REASONS) + c.ethernet.rx,
    );
    const arpIn = c.arp.rx + sum(c.arp.drops, ARP_CHECK_REASONS);
    ipv4In = c.ethernet.rx - arpIn;
  }
  const ip = c.ipv4;
  // A fragment ends at the IPv4 layer (counted in fragmentsIn); a reassembled datagram starts again.
  equal(
    "ip in + reassembled = ipv4 drops + ipv6 drops + fragments + ipv4 rx",
    ipv4In + ip.reassembled,
    sum(ip.drops, undefined, [...REASSEMBLY_DROP_REASONS, "protocol-error"]) + sum(c.ipv6Drops) +
      ip.fragmentsIn +
      ip.rx,
  );
  equal(
    "ipv4 rx = icmp in + udp in + tcp in",
    ip.rx,
    c.icmp.rx + sum(c.icmp.drops) + c.udp.rx + sum(c.udp.drops, undefined, UDP_TX_REASONS) + c.tcp.segmentsIn,
  );
  equal(
    "tcp in = tcp layer drops + to listeners (passive opens, cookies sent) + to connections",
    c.tcp.segmentsIn,
    sum(c.tcp.drops, TCP_LAYER_REASONS) + c.tcp.passiveOpens + c.tcp.syncookiesSent + c.tcp.toConnections,
  );
  if ((ip.drops["protocol-error"] ?? 0) > 0) {
    problems.push("ipv4 drops protocol-error > 0 (a caught exception)");
  }
  if ((c.tcp.drops["internal-error"] ?? 0) > 0) {
    problems.push("tcp drops internal-error > 0 (a caught exception)");
  }
  return problems;
}

import assert from "node:assert/strict";
import { Ipv6Ethernet } from "../../lib/iface/ipv6_ethernet.ts";
import { Ipv6Interface } from "../../lib/iface/ipv6_interface.ts";
import { writeIpv6Header } from "../../lib/wire/ipv6.ts";
import { finishIcmpv6Checksum } from "../../lib/wire/icmpv6.ts";
import { formatIpv6, parseIpv6Cidr, solicitedNodeGroup } from "../../lib/wire/ipv6_address.ts";
import {
  NaFlag,
  type PrefixInformation,
  writeNeighborAdvertisement,
  writeNeighborSolicitation,
  writeRouterAdvertisement,
} from "../../lib/wire/ndp.ts";
import { echoRequest6, ip6 } from "../helpers/ipv6_packets.ts";

const MAC = 0x02_00_00_00_00_b6;
const LINK_LOCAL = "fe80::ff:fe00:b6";
const HOST_MAC = 0x02_00_00_00_00_01;
const ROUTER = ip6("fe80::1");

interface Sent {
  mac: number;
  packet: Uint8Array;
}

function harness(options: { static6?: string; slaac?: boolean } = {}) {
  const ipv6 = new Ipv6Interface({
    mtu: 1500,
    addresses: options.static6 ? [parseIpv6Cidr(options.static6)!] : [],
  });
  const sent: Sent[] = [];
  const link = new Ipv6Ethernet<null>({
    sendPayload: (mac, _type, payload) => sent.push({ mac, packet: payload.slice() }),
  }, { ipv6, mac: MAC, slaac: options.slaac, neighbors: { random: () => 0.5 } });
  return { ipv6, link, sent };
}

/** An NDP message from `src` to `dst` with hop limit 255 and its checksum. */
function ndp(
  src: Uint8Array,
  dst: Uint8Array,
  write: (buf: Uint8Array, offset: number) => number,
): Uint8Array {
  const buf = new Uint8Array(1500);
  const length = write(buf, 40);
  writeIpv6Header(buf, 0, src, dst, 58, length, 255);
  finishIcmpv6Checksum(buf, 0, 40, 40 + length);
  return buf.slice(0, 40 + length);
}

function types(sent: Sent[]): number[] {
  return sent.map((s) => (s.packet[6] === 0 ? s.packet[48] : s.packet[40]));
}

function ra(prefixes: PrefixInformation[], extra: { mtu?: number; lifetime?: number } = {}): Uint8Array {
  return ndp(ROUTER, ip6("ff02::1"), (buf, off) =>
    writeRouterAdvertisement(buf, off, {
      routerLifetime: extra.lifetime ?? 1800,
      sourceMac: HOST_MAC,
      mtu: extra.mtu,
      prefixes,
    }));
}

function prefix(valid: number, preferred: number): PrefixInformation {
  return {
    prefix: ip6("2001:db8:1::"),
    prefixLength: 64,
    onLink: true,
    autonomous: true,
    validLifetime: valid,
    preferredLifetime: preferred,
  };
}

Deno.test("ipv6 ethernet: DAD — MLD report, a probe from :: per address, preferred one RetransTimer later", () => {
  const { ipv6, link, sent } = harness({ static6: "fd00::2/64" });
  assert.deepEqual(ipv6.addresses.map((a) => a.state), ["tentative", "tentative"]);
  assert.equal(link.poll(0, null), 1000);
  assert.deepEqual(types(sent), [143, 135, 135], "MLDv2 report first (RFC 4862 §5.4.2), then the probes");
  const probe = sent[1].packet;
  assert.equal(formatIpv6(probe, 8), "::");
  assert.equal(formatIpv6(probe, 24), formatIpv6(solicitedNodeGroup(ip6("fd00::2"))));
  assert.equal(probe.length, 40 + 24, "no source link-layer option in a DAD probe");
  assert.equal(sent[1].mac, 0x3333ff000002);
  link.poll(999, null);
  assert.equal(ipv6.addresses[0].state, "tentative");
  link.poll(1000, null);
  assert.deepEqual(ipv6.addresses.map((a) => a.state), ["preferred", "preferred"]);
  assert.equal(formatIpv6(ipv6.linkLocal!.address), LINK_LOCAL);
  // Once the link-local address is usable: a report from it and a router solicitation.
  assert.deepEqual(types(sent).slice(3), [143, 133]);
  assert.equal(formatIpv6(sent[4].packet, 8), LINK_LOCAL);
  assert.equal(link.dadPending, false);
});

Deno.test("ipv6 ethernet: DAD conflict — another node's probe, or an advertisement, removes the address", () => {
  const { ipv6, link } = harness({ static6: "fd00::2/64" });
  const conflicts: string[] = [];
  link.onDadConflict = (address) => conflicts.push(formatIpv6(address));
  link.poll(0, null);
  // Another node probes for fd00::2 at the same time (RFC 4862 §5.4.3).
  const probe = ndp(
    ip6("::"),
    solicitedNodeGroup(ip6("fd00::2")),
    (b, o) => writeNeighborSolicitation(b, o, ip6("fd00::2"), -1),
  );
  link.ingress(probe, 100, null, 0, true);
  // And someone advertises our link-local address (§5.4.4).
  const na = ndp(
    ip6("fe80::99"),
    ip6("ff02::1"),
    (b, o) => writeNeighborAdvertisement(b, o, ip6(LINK_LOCAL), NaFlag.OVERRIDE, HOST_MAC),
  );
  link.ingress(na, 200, null, 0, true);
  assert.deepEqual(conflicts, ["fd00::2", LINK_LOCAL]);
  assert.equal(ipv6.addresses.length, 0);
  assert.equal(link.ndp.dadConflicts, 2);
  link.poll(2000, null);
  assert.equal(ipv6.addresses.length, 0, "a removed address does not come back when the timer fires");
});

Deno.test("ipv6 ethernet: a solicitation for our address is answered (S, O, target MAC) and teaches us the sender", () => {
  const { link, sent } = harness({ static6: "fd00::2/64" });
  link.poll(0, null);
  link.poll(1000, null);
  sent.length = 0;
  const ns = ndp(
    ip6("fd00::1"),
    solicitedNodeGroup(ip6("fd00::2")),
    (b, o) => writeNeighborSolicitation(b, o, ip6("fd00::2"), HOST_MAC),
  );
  link.ingress(ns, 1100, null, 0, true);
  assert.equal(sent.length, 1);
  const na = sent[0].packet;
  assert.equal(sent[0].mac, HOST_MAC, "sent to the MAC learnt from the solicitation");
  assert.equal(na[40], 136);
  assert.equal(na[7], 255);
  assert.equal(na[44], NaFlag.SOLICITED | NaFlag.OVERRIDE);
  assert.equal(formatIpv6(na, 48), "fd00::2");
  assert.equal(link.neighbors.get(ip6("fd00::1"))!.state, "DELAY", "STALE from the NS, DELAY once used");
  // A solicitation with a hop limit below 255 was forwarded by a router: ignored (RFC 4861 §7.1.1).
  const forwarded = ns.slice();
  forwarded[7] = 64;
  link.ingress(forwarded, 1200, null, 0, true);
  assert.equal(sent.length, 1);
  assert.equal(link.ndp.drops.get("bad-hop-limit-or-code"), 1);
});

Deno.test("ipv6 ethernet: resolution — a ping reply waits for the neighbour's advertisement", () => {
  const { ipv6, link, sent } = harness({ static6: "fd00::2/64" });
  link.poll(0, null);
  link.poll(1000, null);
  sent.length = 0;
  link.ingress(echoRequest6(ip6("fd00::1"), ip6("fd00::2"), new Uint8Array(4)), 1100, null, 0, false);
  assert.deepEqual(types(sent), [135], "the reply waits; a multicast solicitation goes out");
  assert.equal(sent[0].mac, 0x3333ff000001);
  const na = ndp(
    ip6("fd00::1"),
    ip6("fd00::2"),
    (b, o) => writeNeighborAdvertisement(b, o, ip6("fd00::1"), NaFlag.SOLICITED, HOST_MAC),
  );
  link.ingress(na, 1150, null, 0, false);
  assert.deepEqual(types(sent), [135, 129]);
  assert.equal(sent[1].mac, HOST_MAC);
  assert.equal(link.neighbors.get(ip6("fd00::1"))!.state, "REACHABLE");
  assert.equal(ipv6.icmp6.echoReplies, 1);
});

Deno.test("ipv6 ethernet: SLAAC — an RA prefix makes a tentative address, then preferred, deprecated, removed", () => {
  const { ipv6, link } = harness();
  link.poll(0, null);
  link.poll(1000, null);
  link.ingress(ra([prefix(100, 50)], { mtu: 1400 }), 2000, null, 0, true);
  const address = ipv6.findAddress(ip6("2001:db8:1::ff:fe00:b6"))!;
  assert.equal(address.state, "tentative");
  assert.equal(address.origin, "slaac");
  assert.equal(ipv6.mtu, 1400);
  assert.equal(link.routers.length, 1);
  link.poll(2000, null);
  link.poll(3000, null);
  assert.equal(address.state, "preferred");
  assert.equal(address.preferredUntil, 52_000);
  assert.equal(address.validUntil, 102_000);
  link.poll(52_000, null);
  assert.equal(address.state, "deprecated");
  // An RA refreshing the prefix makes it preferred again.
  link.ingress(ra([prefix(100, 50)]), 60_000, null, 0, true);
  assert.equal(address.state, "preferred");
  link.poll(160_000, null);
  assert.equal(ipv6.findAddress(ip6("2001:db8:1::ff:fe00:b6")), null);
  assert.equal(ipv6.groups.length, 2, "all-nodes and the link-local's solicited-node group remain");
});

Deno.test("ipv6 ethernet: SLAAC two-hour rule — a short valid lifetime does not cut a long one (RFC 4862 §5.5.3(e))", () => {
  const { ipv6, link } = harness();
  link.poll(0, null);
  link.ingress(ra([prefix(86_400, 3600)]), 1000, null, 0, true);
  const address = ipv6.findAddress(ip6("2001:db8:1::ff:fe00:b6"))!;
  assert.equal(address.validUntil, 1000 + 86_400_000);
  link.ingress(ra([prefix(60, 30)]), 2000, null, 0, true);
  assert.equal(address.validUntil, 2000 + 7_200_000, "cut to two hours, not to 60 s");
  link.ingress(ra([prefix(60, 30)]), 3000, null, 0, true);
  assert.equal(address.validUntil, 2000 + 7_200_000, "within two hours: ignored");
  link.ingress(ra([prefix(10_000, 30)]), 4000, null, 0, true);
  assert.equal(address.validUntil, 4000 + 10_000_000, "longer than two hours: taken");
});

Deno.test("ipv6 ethernet: RA checks — link-local source, MTU within bounds, no SLAAC when off; redirect ignored", () => {
  const { ipv6, link } = harness({ slaac: false });
  link.poll(0, null);
  link.ingress(ra([prefix(100, 50)], { mtu: 1000 }), 10, null, 0, true);
  assert.equal(ipv6.mtu, 1500, "an MTU below 1280 is ignored");
  assert.equal(link.ndp.drops.get("bad-mtu-option"), 1);
  assert.equal(ipv6.addresses.length, 1, "SLAAC off: only the link-local address");
  const global = ndp(
    ip6("fd00::1"),
    ip6("ff02::1"),
    (b, o) => writeRouterAdvertisement(b, o, { routerLifetime: 60 }),
  );
  link.ingress(global, 20, null, 0, true);
  assert.equal(link.ndp.drops.get("bad-router-advertisement"), 1);
  const redirect = ndp(ROUTER, ip6(LINK_LOCAL), (b, o) => {
    b[o] = 137;
    b.fill(0, o + 1, o + 40);
    return 40;
  });
  ipv6.findAddress(ip6(LINK_LOCAL))!.state = "preferred";
  link.ingress(redirect, 30, null, 0, false);
  assert.equal(link.ndp.drops.get("redirect-ignored"), 1);
});

Deno.test("ipv6 ethernet: off-link destinations go to the default router; without one they are counted", () => {
  const { ipv6, link, sent } = harness({ static6: "fd00::2/64" });
  link.poll(0, null);
  link.poll(1000, null);
  sent.length = 0;
  link.ingress(echoRequest6(ip6("2001:db8:9::1"), ip6("fd00::2"), new Uint8Array(4)), 1100, null, 0, false);
  assert.equal(link.ndp.drops.get("no-route"), 1);
  link.ingress(ra([], { lifetime: 600 }), 1200, null, 0, true);
  sent.length = 0;
  link.ingress(echoRequest6(ip6("2001:db8:9::1"), ip6("fd00::2"), new Uint8Array(4)), 1300, null, 0, false);
  assert.deepEqual(types(sent), [129]);
  assert.equal(sent[0].mac, HOST_MAC, "to the router's MAC, learnt from its advertisement");
  assert.equal(ipv6.icmp6.echoReplies, 2);
  link.poll(1200 + 600_000, null);
  assert.equal(link.routers.length, 0, "the router expires with its lifetime");
});

/**
 * IPv6 over Ethernet (RFC 2464) with Neighbor Discovery (RFC 4861), stateless address autoconfiguration
 * and duplicate address detection (RFC 4862), and MLDv2 reports (RFC 3810), sans-I/O. It sits between the
 * Ethernet layer and the IPv6 layer: it routes the IPv6 packets the stack sends (on-link or through a
 * router) and resolves next hops in the {@link NeighborCache}; it handles the NDP and MLD messages the IPv6
 * layer hands it.
 *
 * Decisions, with their sources:
 * - Every unicast address starts tentative and is probed once (DupAddrDetectTransmits = 1, RFC 4862 §5.1)
 *   from `::` to its solicited-node group, after an MLDv2 report joining that group (§5.4.2); it becomes
 *   preferred RetransTimer (1 s) later unless a solicitation from `::` or an advertisement for it arrives
 *   (§5.4.3, §5.4.4): then it is removed and {@link Ipv6Ethernet.onDadConflict} reports the conflict. The
 *   initial random delay (§5.4.2, up to 1 s) is left out: the stack starts one interface at a time.
 * - The link-local address is fe80::/64 with the modified EUI-64 identifier of the MAC (RFC 4291 App. A);
 *   SLAAC addresses use the same identifier (RFC 7217 stable identifiers need a keyed hash per prefix, and
 *   a hash needs either crypto.subtle, which is asynchronous, or code of our own: left out).
 * - Router solicitations: up to MAX_RTR_SOLICITATIONS (3), RTR_SOLICITATION_INTERVAL (4 s) apart, once the
 *   link-local address is preferred, until an advertisement arrives (RFC 4861 §6.3.7).
 * - Router advertisements (§6.3.4): accepted from link-local sources with hop limit 255 only; they fill
 *   the default router list and the on-link prefix list, set the MTU (only within [1280, link MTU]) and the
 *   NUD timers; prefixes with the A flag and a 64-bit length make SLAAC addresses, with the two-hour rule
 *   of RFC 4862 §5.5.3(e) against shortened lifetimes.
 * - Redirects are counted and ignored (a host may ignore them; they are a classic spoofing vector).
 * - MLDv2: a report (CHANGE_TO_EXCLUDE, no sources) is sent when groups are joined, and answered queries
 *   get a current-state report at once (the random response delay of RFC 3810 §6.2 is left out: one host).
 *   All-nodes is never reported (RFC 3810 §6).
 *
 * @module
 */

import { EtherType, formatMac, type MacAddress } from "../wire/ethernet.ts";
import {
  ALL_MLDV2_ROUTERS,
  ALL_NODES,
  ALL_ROUTERS,
  eui64InterfaceId,
  formatIpv6,
  inPrefixAt,
  type Ipv6Address,
  ipv6Equals,
  ipv6EqualsAt,
  ipv6MulticastMacAt,
  isLinkLocalAt,
  isMulticastAt,
  isUnspecifiedAt,
  linkLocalFromMac,
  solicitedNodeGroup,
  UNSPECIFIED_IPV6,
  withInterfaceId,
} from "../wire/ipv6_address.ts";
import { IPV6_DST_OFFSET, IPV6_HEADER_LENGTH, NextHeader, writeIpv6Header } from "../wire/ipv6.ts";
import { writeRouterAlertHeader } from "../wire/ipv6_ext.ts";
import { finishIcmpv6Checksum, type Icmpv6Message, Icmpv6Type } from "../wire/icmpv6.ts";
import {
  NaFlag,
  NdpOptions,
  ndpOptionsOffset,
  RouterAdvertisement,
  writeNeighborAdvertisement,
  writeNeighborSolicitation,
  writeRouterSolicitation,
} from "../wire/ndp.ts";
import { MLD_QUERY_ADDRESS_OFFSET, MldRecordType, writeMldv2Report } from "../wire/mld.ts";
import type { Ipv6Interface, NdpHandler } from "./ipv6_interface.ts";
import type { Ipv6Datagram, Ipv6Sink } from "./protocol.ts";
import { LayerCounters, type LayerStats } from "./stats.ts";
import { type NeighborActions, NeighborCache, type NeighborCacheOptions } from "./neighbor_cache.ts";
import { completeTxChecksum, GsoType, type TxOffload } from "../wire/offload.ts";
import { logger } from "../log.ts";

/** Where this layer hands frames: the Ethernet layer's framing and its device sink. */
export interface EthernetSender<Out> {
  /** Sends `payload` in a frame to `dst` with `etherType` through `out`. */
  sendPayload(
    dst: MacAddress,
    etherType: number,
    payload: Uint8Array,
    out: Out,
    offload?: TxOffload | null,
  ): void;
}

/** Options of {@link Ipv6Ethernet}. */
export interface Ipv6EthernetOptions {
  /** The IPv6 layer above. */
  ipv6: Ipv6Interface;
  /** The stack's MAC. */
  mac: MacAddress;
  /** Next hop for destinations off-link; `null`: the routers learnt from advertisements. */
  gateway6?: Ipv6Address | null;
  /** Stateless address autoconfiguration from router advertisements; default true. */
  slaac?: boolean;
  /** Neighbour cache tunables. */
  neighbors?: NeighborCacheOptions;
  /** Router solicitations sent at start; default 3 (RFC 4861 MAX_RTR_SOLICITATIONS). */
  routerSolicitations?: number;
  /** Time between solicitations in ms; default 4000 (RTR_SOLICITATION_INTERVAL). */
  routerSolicitationIntervalMs?: number;
}

/** NDP and MLD counters. */
export class NdpCounters extends LayerCounters {
  /** Neighbor Solicitations sent (resolution, NUD probes, DAD). */
  solicitationsSent = 0;
  /** Neighbor Advertisements sent. */
  advertisementsSent = 0;
  /** Router Solicitations sent. */
  routerSolicitationsSent = 0;
  /** Router Advertisements accepted. */
  routerAdvertisements = 0;
  /** DAD probes sent. */
  dadProbesSent = 0;
  /** Addresses found in use by another node. */
  dadConflicts = 0;
  /** MLDv2 reports sent. */
  mldReportsSent = 0;

  /** The counters as a plain object for JSON. */
  override stats(): LayerStats & Record<string, number | Record<string, number>> {
    return {
      ...super.stats(),
      solicitationsSent: this.solicitationsSent,
      advertisementsSent: this.advertisementsSent,
      routerSolicitationsSent: this.routerSolicitationsSent,
      routerAdvertisements: this.routerAdvertisements,
      dadProbesSent: this.dadProbesSent,
      dadConflicts: this.dadConflicts,
      mldReportsSent: this.mldReportsSent,
    };
  }
}

interface Router {
  address: Ipv6Address;
  expiresAt: number;
}

interface OnLinkPrefix {
  prefix: Ipv6Address;
  prefixLength: number;
  expiresAt: number;
}

interface DadRun {
  address: Ipv6Address;
  /** When the probe goes out (-Infinity: at the next poll), then when the address becomes preferred. */
  at: number;
  probed: boolean;
}

/** RFC 4862 §5.5.3(e): lifetimes below two hours are not shortened by an advertisement. */
const TWO_HOURS_MS = 2 * 3600 * 1000;

const log = logger("ndp");

function lifetimeMs(seconds: number, now: number): number {
  return seconds === 0xffffffff ? Infinity : now + seconds * 1000;
}

/** IPv6 over Ethernet: NDP, NUD, DAD, SLAAC and MLD; see the module comment. */
export class Ipv6Ethernet<Out> implements NdpHandler {
  /** NDP and MLD counters. */
  readonly ndp = new NdpCounters();
  /** The neighbour cache. */
  readonly neighbors: NeighborCache;
  /** The stack's MAC. */
  readonly mac: MacAddress;
  /** Called when DAD finds an address in use (the address has been removed). */
  onDadConflict: ((address: Ipv6Address, by: MacAddress) => void) | null = null;
  readonly #ipv6: Ipv6Interface;
  readonly #link: EthernetSender<Out>;
  readonly #interfaceId: Uint8Array;
  readonly #gateway6: Ipv6Address | null;
  readonly #slaac: boolean;
  readonly #routers: Router[] = [];
  readonly #prefixes: OnLinkPrefix[] = [];
  readonly #dad: DadRun[] = [];
  readonly #options = new NdpOptions();
  readonly #tx = new Uint8Array(IPV6_HEADER_LENGTH + 8 + 8 + 20 * 64 + 64);
  readonly #rsCount: number;
  readonly #rsInterval: number;
  #rsLeft = 0;
  #rsAt = Infinity;
  #reportDue = true;
  #now = 0;
  #out: Out | null = null;
  readonly #actions: NeighborActions = {
    solicit: (target, mac) => this.#solicit(target, mac),
    release: (packet, mac) => this.#link.sendPayload(mac, EtherType.IPV6, packet, this.#out!),
  };
  /** The sink handed to the IPv6 layer: routes and resolves through this layer. */
  readonly #sink: Ipv6Sink = {
    sendIpv6: (packet, offload = null) => this.#route(packet, offload),
    get offloads() {
      return false;
    },
  };

  /** Adds the link-local address and puts every address through DAD, from the first poll on. */
  constructor(link: EthernetSender<Out>, options: Ipv6EthernetOptions) {
    this.#link = link;
    this.#ipv6 = options.ipv6;
    this.mac = options.mac;
    this.#interfaceId = eui64InterfaceId(options.mac);
    this.#gateway6 = options.gateway6 ?? null;
    this.#slaac = options.slaac ?? true;
    this.neighbors = new NeighborCache(this.ndp.drops, options.neighbors);
    this.#rsCount = options.routerSolicitations ?? 3;
    this.#rsInterval = options.routerSolicitationIntervalMs ?? 4000;
    this.#ipv6.ndp = this;
    this.#ipv6.onGroupsChanged = () => (this.#reportDue = true);
    // RFC 4862 §5.4: DAD on every unicast address, static ones included.
    for (const entry of this.#ipv6.addresses) this.#startDad(entry.address);
    this.#startDad(
      this.#ipv6.addAddress(
        { address: linkLocalFromMac(options.mac), prefixLength: 64 },
        "link-local",
        "tentative",
      ).address,
    );
  }

  /** The default routers learnt from advertisements (live entries). */
  get routers(): readonly { address: Ipv6Address; expiresAt: number }[] {
    return this.#routers;
  }

  /** Whether a frame to `mac` is for us: our MAC, or the MAC of a group we joined (RFC 2464 §7). */
  acceptsMulticast(mac: MacAddress): boolean {
    for (const group of this.#ipv6.groups) if (ipv6MulticastMacAt(group, 0) === mac) return true;
    return false;
  }

  /** Handles one IPv6 packet from a frame; `linkMulticast` when the frame went to a group or broadcast. */
  ingress(packet: Uint8Array, now: number, out: Out, rxFlags: number, linkMulticast: boolean): void {
    this.#now = now;
    this.#out = out;
    this.#ipv6.ingress(packet, now, this.#sink, rxFlags, linkMulticast);
  }

  /** Runs DAD, router solicitation, MLD reports, the neighbour timers and the IPv6 layer's poll. */
  poll(now: number, out: Out): number | null {
    this.#now = now;
    this.#out = out;
    let next = this.#ipv6.poll(now, this.#sink);
    const earliest = (t: number | null) => {
      if (t !== null && t !== Infinity && (next === null || t < next)) next = t;
    };
    if (this.#reportDue) {
      this.#reportDue = false;
      this.#sendReport(MldRecordType.CHANGE_TO_EXCLUDE);
    }
    for (const run of [...this.#dad]) {
      if (now < run.at) {
        earliest(run.at);
        continue;
      }
      const entry = this.#ipv6.findAddress(run.address);
      if (entry === null || entry.state !== "tentative") {
        this.#dad.splice(this.#dad.indexOf(run), 1);
        continue;
      }
      if (!run.probed) {
        run.probed = true;
        run.at = now + this.neighbors.retransTimer;
        this.ndp.dadProbesSent++;
        this.#sendNs(UNSPECIFIED_IPV6, solicitedNodeGroup(run.address), -1, run.address, -1);
        earliest(run.at);
        continue;
      }
      // RetransTimer passed without a conflict: the address is ours (RFC 4862 §5.4).
      this.#dad.splice(this.#dad.indexOf(run), 1);
      entry.state = entry.preferredUntil > now ? "preferred" : "deprecated";
      log.info("address {address} is unique on the link", { address: formatIpv6(entry.address) });
      // RFC 3810 §5.2.13: reports sent from `::` during DAD are ignored by routers; send them again now.
      if (isLinkLocalAt(entry.address, 0)) this.#reportDue = true;
      if (isLinkLocalAt(entry.address, 0) && this.#routers.length === 0) {
        this.#rsLeft = this.#rsCount;
        this.#rsAt = now;
      }
    }
    // Again after DAD: a link-local address that just became usable re-sends the report from itself.
    if (this.#reportDue) {
      this.#reportDue = false;
      this.#sendReport(MldRecordType.CHANGE_TO_EXCLUDE);
    }
    if (this.#rsLeft > 0 && now >= this.#rsAt) {
      this.#rsLeft--;
      this.#rsAt = now + this.#rsInterval;
      this.#sendRs();
    }
    if (this.#rsLeft > 0) earliest(this.#rsAt);
    for (let i = this.#routers.length - 1; i >= 0; i--) {
      if (this.#routers[i].expiresAt <= now) this.#routers.splice(i, 1);
      else earliest(this.#routers[i].expiresAt);
    }
    for (let i = this.#prefixes.length - 1; i >= 0; i--) {
      if (this.#prefixes[i].expiresAt <= now) this.#prefixes.splice(i, 1);
      else earliest(this.#prefixes[i].expiresAt);
    }
    earliest(this.neighbors.poll(now, this.#actions));
    return next;
  }

  /** Whether any address is still tentative (DAD running). */
  get dadPending(): boolean {
    return this.#ipv6.addresses.some((a) => a.state === "tentative");
  }

  /** Counters and tables for `/stats`. */
  stats(): Record<string, unknown> {
    const neighbors: Record<string, string> = {};
    for (const n of this.neighbors.entries()) {
      neighbors[formatIpv6(n.address)] = n.mac < 0 ? n.state : `${n.state} ${formatMac(n.mac)}`;
    }
    return {
      ndp: {
        ...this.ndp.stats(),
        neighbors,
        neighborFailures: this.neighbors.failures,
        neighborsUnreachable: this.neighbors.unreachable,
        queuedPackets: this.neighbors.queuedPackets,
        routers: this.#routers.map((r) => formatIpv6(r.address)),
        addresses: this.#ipv6.addresses.map((a) =>
          `${formatIpv6(a.address)}/${a.prefixLength} ${a.state} ${a.origin}`
        ),
        mtu: this.#ipv6.mtu,
      },
    };
  }

  /** Handles an NDP or MLD message validated by the IPv6 layer (RFC 4861 §6.1, §7.1 checks here). */
  ndpIngress(d: Ipv6Datagram, message: Icmpv6Message, now: number, _out: Ipv6Sink): void {
    this.#now = now;
    const m = message.bytes;
    const type = message.type;
    this.ndp.rxPackets++;
    this.ndp.rxBytes += m.length;
    if (type === Icmpv6Type.MLD_QUERY) {
      this.#mldQuery(d, m);
      return;
    }
    if (
      type === Icmpv6Type.MLDV1_REPORT || type === Icmpv6Type.MLDV2_REPORT || type === Icmpv6Type.MLDV1_DONE
    ) {
      this.ndp.drops.count("mld-report-of-another-node");
      return;
    }
    // RFC 4861 §6.1, §7.1: hop limit 255 (not forwarded by a router), code 0, the fixed part present.
    if (d.hopLimit !== 255 || message.code !== 0) {
      this.ndp.drops.count("bad-hop-limit-or-code");
      return;
    }
    const optionsAt = ndpOptionsOffset(type);
    if (m.length < optionsAt) {
      this.ndp.drops.count("truncated");
      return;
    }
    const error = this.#options.parse(m, optionsAt, m.length);
    if (error !== null) {
      this.ndp.drops.count(error);
      return;
    }
    switch (type) {
      case Icmpv6Type.NEIGHBOR_SOLICITATION:
        this.#neighborSolicitation(d, m);
        return;
      case Icmpv6Type.NEIGHBOR_ADVERTISEMENT:
        this.#neighborAdvertisement(d, m);
        return;
      case Icmpv6Type.ROUTER_ADVERTISEMENT:
        this.#routerAdvertisement(d, m);
        return;
      case Icmpv6Type.ROUTER_SOLICITATION:
        this.ndp.drops.count("router-solicitation"); // we are no router
        return;
      default:
        this.ndp.drops.count("redirect-ignored");
    }
  }

  #neighborSolicitation(d: Ipv6Datagram, m: Uint8Array): void {
    const fromUnspecified = isUnspecifiedAt(d.src, 0);
    if (isMulticastAt(m, 8)) {
      this.ndp.drops.count("multicast-target");
      return;
    }
    // RFC 4861 §7.1.1: a DAD probe goes to a solicited-node group and carries no source link-layer option.
    if (
      fromUnspecified &&
      (!d.multicast || d.dst[11] !== 1 || d.dst[12] !== 0xff || this.#options.sourceMac >= 0)
    ) {
      this.ndp.drops.count("bad-dad-solicitation");
      return;
    }
    const entry = this.#ipv6.findAddress(m, 8);
    if (entry === null) {
      this.ndp.drops.count("not-our-target");
      return;
    }
    if (entry.state === "tentative") {
      // RFC 4862 §5.4.3: another node probes for the same address at the same time.
      if (fromUnspecified) this.#conflict(entry.address, -1);
      return;
    }
    if (!fromUnspecified && this.#options.sourceMac >= 0) {
      this.neighbors.learn(d.src, 0, this.#options.sourceMac, this.#now, this.#actions);
    }
    // RFC 4861 §7.2.4: solicited (S) and override (O); to all-nodes without S when the source was `::`.
    const target = entry.address;
    if (fromUnspecified) this.#sendNa(target, ALL_NODES, NaFlag.OVERRIDE);
    else this.#sendNa(target, d.src.slice(), NaFlag.SOLICITED | NaFlag.OVERRIDE);
  }

  #neighborAdvertisement(d: Ipv6Datagram, m: Uint8Array): void {
    const flags = m[4];
    if (isMulticastAt(m, 8) || (d.multicast && (flags & NaFlag.SOLICITED) !== 0)) {
      this.ndp.drops.count("bad-advertisement");
      return;
    }
    const entry = this.#ipv6.findAddress(m, 8);
    if (entry !== null) {
      // RFC 4862 §5.4.4: an advertisement for a tentative address means it is in use; for a preferred one,
      // someone else claims it (§5.4.4 leaves the reaction open: count and warn).
      if (entry.state === "tentative") this.#conflict(entry.address, this.#options.targetMac);
      else {
        this.ndp.drops.count("address-conflict");
        log.warning("{mac} advertises our address {address}", {
          mac: this.#options.targetMac >= 0 ? formatMac(this.#options.targetMac) : "?",
          address: formatIpv6(entry.address),
        });
      }
      return;
    }
    this.neighbors.advertisement(
      m.subarray(8, 24),
      this.#options.targetMac,
      (flags & NaFlag.SOLICITED) !== 0,
      (flags & NaFlag.OVERRIDE) !== 0,
      this.#now,
      this.#actions,
    );
  }

  #routerAdvertisement(d: Ipv6Datagram, m: Uint8Array): void {
    if (!isLinkLocalAt(d.src, 0) || m.length < 16) {
      this.ndp.drops.count("bad-router-advertisement");
      return;
    }
    const now = this.#now;
    const options = this.#options;
    this.ndp.routerAdvertisements++;
    this.#rsLeft = 0;
    if (options.sourceMac >= 0) this.neighbors.learn(d.src, 0, options.sourceMac, now, this.#actions);
    const lifetime = RouterAdvertisement.routerLifetime(m);
    const known = this.#routers.findIndex((r) => ipv6Equals(r.address, d.src));
    if (lifetime === 0) {
      if (known >= 0) this.#routers.splice(known, 1);
    } else if (known >= 0) {
      this.#routers[known].expiresAt = now + lifetime * 1000;
    } else if (this.#routers.length < 8) {
      this.#routers.push({ address: d.src.slice(), expiresAt: now + lifetime * 1000 });
      log.info("default router {router}", { router: formatIpv6(d.src) });
    } else {
      this.ndp.drops.count("router-list-full");
    }
    this.neighbors.setTimers(RouterAdvertisement.reachableTime(m), RouterAdvertisement.retransTimer(m));
    if (options.mtu >= 0 && !this.#ipv6.setMtu(options.mtu)) this.ndp.drops.count("bad-mtu-option");
    if (options.prefixesIgnored > 0) this.ndp.drops.count("too-many-prefixes");
    for (const p of options.prefixes) {
      // RFC 4861 §6.3.4 and RFC 4862 §5.5.3(a, b, c): link-local prefixes and preferred > valid are ignored.
      if (isLinkLocalAt(p.prefix, 0) || p.preferredLifetime > p.validLifetime) {
        this.ndp.drops.count("bad-prefix");
        continue;
      }
      if (p.onLink) this.#onLinkPrefix(p.prefix, p.prefixLength, p.validLifetime);
      if (p.autonomous && this.#slaac) {
        this.#autoconfigure(p.prefix, p.prefixLength, p.validLifetime, p.preferredLifetime);
      }
    }
  }

  #onLinkPrefix(prefix: Ipv6Address, prefixLength: number, valid: number): void {
    const i = this.#prefixes.findIndex((p) =>
      p.prefixLength === prefixLength && inPrefixAt(prefix, 0, p.prefix, prefixLength)
    );
    if (valid === 0) {
      if (i >= 0) this.#prefixes.splice(i, 1);
      return;
    }
    const expiresAt = lifetimeMs(valid, this.#now);
    if (i >= 0) this.#prefixes[i].expiresAt = expiresAt;
    else if (this.#prefixes.length < 16) {
      this.#prefixes.push({ prefix: prefix.slice(), prefixLength, expiresAt });
    } else this.ndp.drops.count("prefix-list-full");
  }

  /** RFC 4862 §5.5.3: form or refresh the address of `prefix` with our interface identifier. */
  #autoconfigure(prefix: Ipv6Address, prefixLength: number, valid: number, preferred: number): void {
    if (prefixLength !== 64) {
      // §5.5.3(d): prefix length plus identifier length must be 128; ours is 64 bits (RFC 4291).
      this.ndp.drops.count("slaac-prefix-length");
      return;
    }
    const now = this.#now;
    const address = withInterfaceId(prefix, this.#interfaceId);
    const held = this.#ipv6.findAddress(address);
    if (held === null) {
      if (valid === 0) return;
      const entry = this.#ipv6.addAddress(
        { address, prefixLength },
        "slaac",
        "tentative",
        lifetimeMs(preferred, now),
        lifetimeMs(valid, now),
      );
      log.info("SLAAC address {address}/64", { address: formatIpv6(address) });
      this.#startDad(entry.address);
      return;
    }
    if (held.origin !== "slaac") return;
    held.preferredUntil = lifetimeMs(preferred, now);
    if (held.state === "deprecated" && held.preferredUntil > now) held.state = "preferred";
    // §5.5.3(e): the two-hour rule keeps a spoofed RA from cutting an address's valid lifetime short.
    const received = lifetimeMs(valid, now);
    const remaining = held.validUntil - now;
    if (received - now > TWO_HOURS_MS || received > held.validUntil) held.validUntil = received;
    else if (remaining > TWO_HOURS_MS) held.validUntil = now + TWO_HOURS_MS;
  }

  #mldQuery(d: Ipv6Datagram, m: Uint8Array): void {
    // RFC 3810 §5.1.14: queries come from link-local sources; §5.1.3 the multicast address at offset 8.
    if (!isLinkLocalAt(d.src, 0) || m.length < 24) {
      this.ndp.drops.count("bad-mld-query");
      return;
    }
    if (isUnspecifiedAt(m, MLD_QUERY_ADDRESS_OFFSET)) {
      this.#sendReport(MldRecordType.MODE_IS_EXCLUDE);
      return;
    }
    const group = this.#ipv6.groups.find((g) => ipv6EqualsAt(m, MLD_QUERY_ADDRESS_OFFSET, g));
    if (group !== undefined && !ipv6Equals(group, ALL_NODES)) {
      this.#sendReport(MldRecordType.MODE_IS_EXCLUDE, [group]);
    }
  }

  #conflict(address: Ipv6Address, by: MacAddress): void {
    this.ndp.dadConflicts++;
    const text = formatIpv6(address);
    log.error("duplicate address detection: {address} is already used on the link{by}; it was removed", {
      address: text,
      by: by >= 0 ? ` by ${formatMac(by)}` : "",
    });
    this.#ipv6.removeAddress(address);
    const i = this.#dad.findIndex((r) => ipv6Equals(r.address, address));
    if (i >= 0) this.#dad.splice(i, 1);
    this.onDadConflict?.(address, by);
  }

  #startDad(address: Ipv6Address): void {
    const entry = this.#ipv6.findAddress(address);
    if (entry === null) return;
    entry.state = "tentative";
    this.#dad.push({ address: entry.address, at: -Infinity, probed: false });
  }

  /** The next hop for a destination at `packet[24..40)`, or `null` (no route). */
  #nextHop(packet: Uint8Array): Uint8Array | null {
    if (this.#ipv6.isOnLink(packet, IPV6_DST_OFFSET)) {
      return packet.subarray(IPV6_DST_OFFSET, IPV6_DST_OFFSET + 16);
    }
    for (const p of this.#prefixes) {
      if (inPrefixAt(packet, IPV6_DST_OFFSET, p.prefix, p.prefixLength)) {
        return packet.subarray(IPV6_DST_OFFSET, IPV6_DST_OFFSET + 16);
      }
    }
    if (this.#gateway6 !== null) return this.#gateway6;
    return this.#routers.length > 0 ? this.#routers[0].address : null;
  }

  /** Routes one IPv6 packet from the IPv6 layer: multicast to its MAC, unicast through the neighbour cache. */
  #route(packet: Uint8Array, offload: TxOffload | null): void {
    const out = this.#out!;
    if (packet.length < IPV6_HEADER_LENGTH) {
      this.ndp.drops.count("short-packet");
      return;
    }
    if (isMulticastAt(packet, IPV6_DST_OFFSET)) {
      this.#link.sendPayload(
        ipv6MulticastMacAt(packet, IPV6_DST_OFFSET),
        EtherType.IPV6,
        packet,
        out,
        offload,
      );
      return;
    }
    const hop = this.#nextHop(packet);
    if (hop === null) {
      this.ndp.drops.count("no-route");
      return;
    }
    const mac = this.neighbors.resolve(hop, 0, this.#now);
    if (mac >= 0) {
      this.#link.sendPayload(mac, EtherType.IPV6, packet, out, offload);
      return;
    }
    if (offload !== null && offload.gsoType !== GsoType.NONE) {
      // A super-segment cannot wait in the queue (it would leave later as a plain frame): TCP resends it.
      this.ndp.drops.count("offload-unresolved");
      return;
    }
    let queued = packet;
    if (offload !== null && offload.checksumPartial) {
      queued = packet.slice();
      completeTxChecksum(queued, offload);
    }
    if (this.neighbors.enqueue(hop, 0, queued, this.#now)) this.#solicit(hop.slice(), -1);
  }

  /** Sends a Neighbor Solicitation for `target` (resolution: multicast; NUD probe: unicast to `mac`). */
  #solicit(target: Uint8Array, mac: MacAddress): void {
    const source = this.#ipv6.sourceFor(target);
    if (source === null) {
      this.ndp.drops.count("no-source-for-solicitation");
      return;
    }
    const dst = mac < 0 ? solicitedNodeGroup(target) : target;
    this.#sendNs(source, dst, mac, target, this.mac);
  }

  #sendNs(
    src: Ipv6Address,
    dst: Ipv6Address,
    dstMac: MacAddress,
    target: Ipv6Address,
    sourceMac: MacAddress,
  ): void {
    const tx = this.#tx;
    const length = writeNeighborSolicitation(tx, IPV6_HEADER_LENGTH, target, sourceMac);
    this.ndp.solicitationsSent++;
    this.#sendIcmp(src, dst, dstMac, length, 255);
  }

  #sendNa(target: Ipv6Address, dst: Ipv6Address, flags: number): void {
    const length = writeNeighborAdvertisement(this.#tx, IPV6_HEADER_LENGTH, target, flags, this.mac);
    this.ndp.advertisementsSent++;
    this.#sendIcmp(target, dst, -1, length, 255);
  }

  #sendRs(): void {
    const source = this.#ipv6.linkLocal;
    const usable = source !== null && source.state !== "tentative";
    // RFC 4861 §4.1: without a usable source, `::` and no source link-layer option.
    const length = writeRouterSolicitation(this.#tx, IPV6_HEADER_LENGTH, usable ? this.mac : -1);
    this.ndp.routerSolicitationsSent++;
    this.#sendIcmp(usable ? source.address : UNSPECIFIED_IPV6, ALL_ROUTERS, -1, length, 255);
  }

  /** Sends an MLDv2 report of the groups joined (all of them, or `only`), all-nodes excepted. */
  #sendReport(recordType: number, only?: Ipv6Address[]): void {
    const groups = (only ?? this.#ipv6.groups).filter((g) => !ipv6Equals(g, ALL_NODES)).slice(0, 64);
    if (groups.length === 0) return;
    const tx = this.#tx;
    const hbh = IPV6_HEADER_LENGTH;
    const icmp = hbh + 8;
    const length = writeMldv2Report(tx, icmp, groups, recordType);
    writeRouterAlertHeader(tx, hbh, NextHeader.ICMPV6, 0);
    // RFC 3810 §5.2.13: a link-local source, or `::` while none is usable yet (during DAD).
    const source = this.#ipv6.linkLocal;
    const src = source !== null && source.state !== "tentative" ? source.address : UNSPECIFIED_IPV6;
    writeIpv6Header(tx, 0, src, ALL_MLDV2_ROUTERS, NextHeader.HOP_BY_HOP, 8 + length, 1);
    finishIcmpv6Checksum(tx, 0, icmp, icmp + length);
    this.ndp.mldReportsSent++;
    this.ndp.txPackets++;
    this.ndp.txBytes += length;
    this.#link.sendPayload(
      ipv6MulticastMacAt(ALL_MLDV2_ROUTERS, 0),
      EtherType.IPV6,
      tx.subarray(0, icmp + length),
      this.#out!,
    );
  }

  /** Finishes and sends the ICMPv6 message at `tx[40..40+length)`. `dstMac` -1: multicast or resolved. */
  #sendIcmp(src: Ipv6Address, dst: Ipv6Address, dstMac: MacAddress, length: number, hopLimit: number): void {
    const tx = this.#tx;
    writeIpv6Header(tx, 0, src, dst, NextHeader.ICMPV6, length, hopLimit);
    finishIcmpv6Checksum(tx, 0, IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + length);
    this.ndp.txPackets++;
    this.ndp.txBytes += length;
    const packet = tx.subarray(0, IPV6_HEADER_LENGTH + length);
    if (dstMac >= 0) this.#link.sendPayload(dstMac, EtherType.IPV6, packet, this.#out!);
    else this.#route(packet, null);
  }
}

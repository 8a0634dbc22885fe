/**
 * The Ethernet layer of the stack, sans-I/O: receives frames for our MAC or broadcast, answers and learns
 * from ARP (RFC 826), hands IPv4 to {@link Ipv4Interface}, and turns the IPv4 packets the stack sends into
 * frames: route (on-link or through the gateway), resolve the next hop, and send — or queue the packet while
 * ARP resolves it (see `arp_cache.ts` for the bounds).
 *
 * The layer keeps no clock and does no I/O: the owner passes `now` (ms) and a {@link FrameSink} on each
 * call, exactly as for the IPv4 layer. Nothing thrown escapes {@link EthernetInterface.ingress}: every
 * frame not used is counted under a named reason.
 *
 * An IPv4 address of 0.0.0.0 means "not configured yet" (e.g. while DHCP runs): then no ARP request is
 * answered, and only broadcast and multicast IPv4 destinations can be sent to (the DHCP client sends from
 * 0.0.0.0 to 255.255.255.255, which maps to the broadcast MAC and needs no ARP).
 *
 * @module
 */

import { ArpCache, type ArpCacheOptions } from "./arp_cache.ts";
import type { Ipv4Interface } from "./ipv4_interface.ts";
import type { Ipv4Sink } from "./protocol.ts";
import { LayerCounters, type LayerStats } from "./stats.ts";
import { ARP_LENGTH, ArpOperation, ArpPacket, writeArp } from "../wire/arp.ts";
import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LENGTH,
  ETHERNET_MIN_FRAME_LENGTH,
  EthernetFrame,
  EtherType,
  formatMac,
  ipv4MulticastMac,
  isMulticastMac,
  type MacAddress,
  readMac,
  writeEthernetHeader,
} from "../wire/ethernet.ts";
import {
  broadcastOf,
  formatIpv4,
  inSubnet,
  type Ipv4Address,
  type Ipv4Cidr,
  readIpv4,
} from "../wire/ipv4_address.ts";
import { IPV4_HEADER_LENGTH } from "../wire/ipv4.ts";
import { logger } from "../log.ts";
import { completeTxChecksum, type TxOffload } from "../wire/offload.ts";

/** Where the Ethernet layer hands complete frames. The sink consumes the bytes before returning. */
export interface FrameSink {
  /**
   * Sends one Ethernet frame (no FCS). `offload` is the device offload request for the IPv4 packet
   * inside (offsets from its IP header, see {@link TxOffload}), passed only where
   * {@link FrameSink.offloads} is true.
   */
  sendFrame(frame: Uint8Array, offload?: TxOffload | null): void;
  /** Whether the device takes checksum-partial frames and TCP super-segments. */
  readonly offloads?: boolean;
}

/**
 * Something besides the transport protocols that sends IPv4 packets on its own schedule, e.g. the DHCP
 * client. Polled by {@link EthernetInterface.poll} with the layer's IPv4 sink.
 */
export interface Ipv4Poller {
  /** Sends what is due at `now` to `out`; returns the next deadline or `null`. */
  poll(now: number, out: Ipv4Sink): number | null;
}

/** The IPv6 side of the link (NDP, see `ipv6_ethernet.ts`), attached with {@link EthernetInterface.attachIpv6}. */
export interface Ipv6Link {
  /** Whether a frame to the multicast `mac` is for a group joined. */
  acceptsMulticast(mac: MacAddress): boolean;
  /** Handles one IPv6 packet from a frame (`linkMulticast`: sent to a group or broadcast MAC). */
  ingress(packet: Uint8Array, now: number, out: FrameSink, rxFlags: number, linkMulticast: boolean): void;
  /** Emits what is due; returns the next deadline or `null`. */
  poll(now: number, out: FrameSink): number | null;
}

/** Options of {@link EthernetInterface}. */
export interface EthernetInterfaceOptions {
  /** The stack's MAC address (see `randomLocalMac`). */
  mac: MacAddress;
  /** The IPv4 layer above; its address 0.0.0.0 means "not configured yet". */
  ipv4: Ipv4Interface;
  /** Next hop for destinations outside the subnet; `null` or omitted: none (they are dropped as `no-route`). */
  gateway?: Ipv4Address | null;
  /** ARP cache bounds and timers. */
  arp?: ArpCacheOptions;
  /** Gratuitous ARP announcements sent per {@link EthernetInterface.announce}; default 2 (RFC 5227 §1.1 ANNOUNCE_NUM). */
  announcements?: number;
  /** Time between announcements in ms; default 2000 (RFC 5227 §1.1 ANNOUNCE_INTERVAL). */
  announceIntervalMs?: number;
  /** ARP probes sent by {@link EthernetInterface.startProbe}; default 2. */
  probes?: number;
  /** Time between probes in ms; default 400 (shorter than RFC 5227's 1–2 s: the DHCP server checked too). */
  probeIntervalMs?: number;
}

/** ARP counters beyond the common ones. */
export class ArpCounters extends LayerCounters {
  /** Requests sent to resolve next hops (retries included). */
  requestsSent = 0;
  /** Replies sent to requests for our address. */
  repliesSent = 0;
  /** Gratuitous ARP announcements sent. */
  announcementsSent = 0;
  /** Address conflict probes sent (RFC 5227). */
  probesSent = 0;

  /** The counters as a plain object for JSON. */
  override stats(): LayerStats & Record<string, number | Record<string, number>> {
    return {
      ...super.stats(),
      requestsSent: this.requestsSent,
      repliesSent: this.repliesSent,
      announcementsSent: this.announcementsSent,
      probesSent: this.probesSent,
    };
  }
}

const log = logger("arp");

function earliest(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null || a <= b ? a : b;
}

/** The IPv4 → Ethernet adapter: one long-lived object retargeted per call, so no per-packet allocation. */
class AdapterSink implements Ipv4Sink {
  now = 0;
  out: FrameSink | null = null;
  constructor(private readonly owner: EthernetInterface) {}
  /** Offloads pass through when the device below has them (a TAP device with virtio_net_hdr). */
  get offloads(): boolean {
    return this.out?.offloads === true;
  }
  sendIpv4(packet: Uint8Array, offload: TxOffload | null = null): void {
    this.owner.sendIpv4(packet, this.now, this.out!, offload);
  }
}

/** The Ethernet layer for one interface: ARP, routing to the next hop, IPv4 above. */
export class EthernetInterface {
  /** Ethernet counters (frames in and out, drops by reason). */
  readonly ethernet: LayerCounters = new LayerCounters();
  /** ARP counters; packets dropped for want of resolution are counted here (`unresolved`, `arp-queue-full`). */
  readonly arp = new ArpCounters();
  /** The ARP cache. */
  readonly cache: ArpCache;
  /** The stack's MAC address. */
  readonly mac: MacAddress;
  readonly #ipv4: Ipv4Interface;
  #gateway: Ipv4Address | null;
  readonly #frameView = new EthernetFrame();
  readonly #arpView = new ArpPacket();
  readonly #tx = new Uint8Array(ETHERNET_HEADER_LENGTH + 65535);
  readonly #adapter: AdapterSink;
  readonly #pollers: Ipv4Poller[] = [];
  #ipv6: Ipv6Link | null = null;
  readonly #announcements: number;
  readonly #announceInterval: number;
  #announcesLeft = 0;
  #announceAt = 0;
  /** Set by {@link EthernetInterface.configure}: announce at the next poll (no sink at hand then). */
  #announceRequested = false;
  /** The address being probed (RFC 5227), or 0. */
  #probeAddress: Ipv4Address = 0;
  #probesLeft = 0;
  #probeAt = 0;
  #probeConflict = false;
  readonly #probes: number;
  readonly #probeInterval: number;

  /** Creates the layer; nothing is sent until it is polled or given frames. */
  constructor(options: EthernetInterfaceOptions) {
    if (isMulticastMac(options.mac)) {
      throw new RangeError(`${formatMac(options.mac)} is not a unicast MAC address`);
    }
    this.mac = options.mac;
    this.#ipv4 = options.ipv4;
    this.#gateway = options.gateway ?? null;
    this.cache = new ArpCache(this.arp.drops, options.arp);
    this.#announcements = options.announcements ?? 2;
    this.#announceInterval = options.announceIntervalMs ?? 2000;
    this.#probes = options.probes ?? 2;
    this.#probeInterval = options.probeIntervalMs ?? 400;
    this.#adapter = new AdapterSink(this);
  }

  /** The IPv4 layer above. */
  get ipv4(): Ipv4Interface {
    return this.#ipv4;
  }

  /** The gateway, or `null`. */
  get gateway(): Ipv4Address | null {
    return this.#gateway;
  }

  /** Sets (or removes, with `null`) the next hop for destinations outside the subnet. */
  setGateway(gateway: Ipv4Address | null): void {
    this.#gateway = gateway;
  }

  /** Whether the IPv4 layer has an address (not 0.0.0.0). */
  get configured(): boolean {
    return this.#ipv4.address.address !== 0;
  }

  /**
   * Sets the address and gateway (e.g. from a DHCP lease) and schedules gratuitous ARP announcements for
   * the next poll. When the address changes, the ARP cache is cleared (its resolutions carried packets
   * from the old address).
   */
  configure(address: Ipv4Cidr, gateway: Ipv4Address | null): void {
    const old = this.#ipv4.address;
    if (old.address !== address.address || old.prefixLength !== address.prefixLength) {
      if (old.address !== 0) this.cache.clear();
      this.#ipv4.setAddress(address);
    }
    this.#gateway = gateway;
    this.#announceRequested = true;
  }

  /** Removes the address (0.0.0.0/0) and gateway, e.g. when a lease is lost, and clears the ARP cache. */
  unconfigure(): void {
    this.#ipv4.setAddress({ address: 0, prefixLength: 0 });
    this.#gateway = null;
    this.cache.clear();
    this.#announcesLeft = 0;
    this.#announceRequested = false;
  }

  /**
   * Starts checking whether `address` is in use (RFC 5227 §2.1.1): ARP probes — requests with sender
   * address 0.0.0.0 and target `address` — go out from the next poll on; a reply from, or a probe by,
   * another host for that address marks a conflict, read with {@link EthernetInterface.probeConflict}.
   * This is the DHCP client's `AddressCheck` (see `lib/dhcp/mod.ts`).
   */
  startProbe(address: Ipv4Address): void {
    this.#probeAddress = address;
    this.#probesLeft = this.#probes;
    this.#probeAt = -Infinity;
    this.#probeConflict = false;
  }

  /** Whether another host answered for (or probed) `address` since {@link EthernetInterface.startProbe}; ends the probe. */
  probeConflict(address: Ipv4Address): boolean {
    const conflict = this.#probeAddress === address && this.#probeConflict;
    this.#probeAddress = 0;
    this.#probesLeft = 0;
    this.#probeConflict = false;
    return conflict;
  }

  /** Attaches the IPv6 side: IPv6 frames and the multicast groups it joined go to it; it is polled. */
  attachIpv6(link: Ipv6Link): void {
    this.#ipv6 = link;
  }

  /** Sends `payload` in a frame to `dst` (padded to the minimum size); for the IPv6 side. */
  sendPayload(
    dst: MacAddress,
    etherType: number,
    payload: Uint8Array,
    out: FrameSink,
    offload: TxOffload | null = null,
  ): void {
    if (payload.length > this.#tx.length - ETHERNET_HEADER_LENGTH) {
      this.ethernet.drops.count("too-big");
      return;
    }
    this.#sendFrame(dst, etherType, payload, out, offload);
  }

  /** Adds something that sends IPv4 on its own schedule (the DHCP client); polled after the IPv4 layer. */
  addPoller(poller: Ipv4Poller): void {
    this.#pollers.push(poller);
  }

  /** The IPv4 sink that routes through this layer into `out`, for code outside the IPv4 layer's protocols. */
  ipv4Sink(now: number, out: FrameSink): Ipv4Sink {
    this.#adapter.now = now;
    this.#adapter.out = out;
    return this.#adapter;
  }

  /**
   * Sends a gratuitous ARP announcement now (RFC 5227 §3: a request with sender and target address both
   * ours) and schedules the remaining ones. Does nothing while unconfigured.
   */
  announce(now: number, out: FrameSink): void {
    this.#announceRequested = false;
    if (!this.configured) return;
    this.#announcesLeft = this.#announcements;
    this.#announceAt = now;
    this.#sendDueAnnouncement(now, out);
  }

  /**
   * Handles one received frame; replies and IPv4 traffic go to `out`. `rxFlags` are the device's
   * `RxFlags` for the frame. Never throws for bad input.
   */
  ingress(frame: Uint8Array, now: number, out: FrameSink, rxFlags = 0): void {
    const view = this.#frameView.wrap(frame);
    const error = view.check();
    if (error !== null) {
      this.ethernet.drops.count(error);
      return;
    }
    const dst = view.dst;
    const groupFrame = dst !== this.mac && dst !== BROADCAST_MAC;
    if (groupFrame && !(isMulticastMac(dst) && this.#ipv6?.acceptsMulticast(dst))) {
      // Multicast for groups not joined (IPv4 multicast, mDNS, other nodes' solicited-node groups).
      this.ethernet.drops.count(isMulticastMac(dst) ? "multicast" : "not-our-mac");
      return;
    }
    const src = view.src;
    if (src === this.mac) {
      // Our own frame looped back (e.g. a capture that sees both directions).
      this.ethernet.drops.count("own-frame");
      return;
    }
    if (isMulticastMac(src)) {
      this.ethernet.drops.count("multicast-source");
      return;
    }
    const etherType = view.etherType;
    if (
      etherType !== EtherType.IPV4 && etherType !== EtherType.ARP &&
      !(etherType === EtherType.IPV6 && this.#ipv6 !== null)
    ) {
      // A drop, not received too: every frame in ends in exactly one counter.
      this.ethernet.drops.count(etherType === EtherType.IPV6 ? "ipv6-disabled" : "unsupported-ethertype");
      return;
    }
    this.ethernet.rxPackets++;
    this.ethernet.rxBytes += frame.length;
    if (etherType === EtherType.IPV4) {
      const adapter = this.#adapter;
      adapter.now = now;
      adapter.out = out;
      this.#ipv4.ingress(frame.subarray(ETHERNET_HEADER_LENGTH), now, adapter, rxFlags);
    } else if (etherType === EtherType.ARP) {
      this.#arpIngress(frame.subarray(ETHERNET_HEADER_LENGTH), now, out);
    } else {
      this.#ipv6!.ingress(frame.subarray(ETHERNET_HEADER_LENGTH), now, out, rxFlags, dst !== this.mac);
    }
  }

  /**
   * Emits what is due: the IPv4 layer's and pollers' packets, announcements, probes, ARP retries; counts
   * failed resolutions. Returns the earliest deadline or `null`.
   */
  poll(now: number, out: FrameSink): number | null {
    const adapter = this.#adapter;
    adapter.now = now;
    adapter.out = out;
    let next = this.#ipv4.poll(now, adapter);
    for (const poller of this.#pollers) {
      adapter.now = now;
      adapter.out = out;
      next = earliest(next, poller.poll(now, adapter));
    }
    // After the pollers: a DHCP lease bound just now is announced in this same poll.
    if (this.#announceRequested) this.announce(now, out);
    if (this.#announcesLeft > 0) {
      if (now >= this.#announceAt) this.#sendDueAnnouncement(now, out);
      if (this.#announcesLeft > 0) next = earliest(next, this.#announceAt);
    }
    if (this.#probesLeft > 0) {
      if (now >= this.#probeAt) {
        this.#probesLeft--;
        this.#probeAt = now + this.#probeInterval;
        this.arp.probesSent++;
        this.#writeArpFrame(BROADCAST_MAC, ArpOperation.REQUEST, 0, this.#probeAddress, out, 0);
      }
      if (this.#probesLeft > 0) next = earliest(next, this.#probeAt);
    }
    if (this.#ipv6 !== null) next = earliest(next, this.#ipv6.poll(now, out));
    // Last, so that resolutions started above are included in the deadline.
    return earliest(next, this.cache.poll(now, this.#requestCallback(out)));
  }

  /**
   * Routes one IPv4 packet and sends it as a frame, or queues it while its next hop is resolved.
   * On-link destinations are their own next hop; others go through the gateway (RFC 1122 §3.3.1.1);
   * limited and subnet broadcasts go to the broadcast MAC, multicast to its mapped MAC (RFC 1112 §6.4).
   */
  sendIpv4(packet: Uint8Array, now: number, out: FrameSink, offload: TxOffload | null = null): void {
    if (packet.length < IPV4_HEADER_LENGTH) {
      this.ethernet.drops.count("short-packet");
      return;
    }
    if (packet.length > this.#tx.length - ETHERNET_HEADER_LENGTH) {
      this.ethernet.drops.count("too-big");
      return;
    }
    const dst = readIpv4(packet, 16);
    const own = this.#ipv4.address;
    let mac: MacAddress | null;
    if (dst === 0xffffffff || (own.address !== 0 && own.prefixLength < 31 && dst === broadcastOf(own))) {
      mac = BROADCAST_MAC;
    } else if ((dst >>> 28) === 0xe) {
      mac = ipv4MulticastMac(dst);
    } else if (own.address === 0) {
      this.ethernet.drops.count("no-address");
      return;
    } else if (dst === own.address) {
      this.ethernet.drops.count("to-self");
      return;
    } else {
      let nextHop: Ipv4Address;
      if (inSubnet(dst, own)) {
        nextHop = dst;
      } else if (this.#gateway !== null) {
        nextHop = this.#gateway;
      } else {
        this.ethernet.drops.count("no-route");
        return;
      }
      mac = this.cache.lookup(nextHop, now);
      if (mac === null) {
        if (offload !== null && offload.gsoSize > 0) {
          // A super-segment cannot wait in the queue (it leaves later as a plain frame): TCP resends it.
          this.ethernet.drops.count("offload-unresolved");
          return;
        }
        let queued = packet;
        if (offload !== null && offload.checksumPartial) {
          queued = packet.slice();
          completeTxChecksum(queued, offload);
        }
        if (this.cache.enqueue(nextHop, queued, now) === "request-now") this.#sendRequest(nextHop, out);
        return;
      }
    }
    this.#sendFrame(mac, EtherType.IPV4, packet, out, offload);
  }

  /** Counters of the Ethernet and ARP layers (the IPv4 layer has its own). */
  stats(): Record<string, unknown> {
    return {
      ethernet: this.ethernet.stats(),
      arp: {
        ...this.arp.stats(),
        cacheEntries: this.cache.size,
        pendingResolutions: this.cache.pendingCount,
        queuedPackets: this.cache.queuedPackets,
        failedResolutions: this.cache.failures,
        evictions: this.cache.evictions,
      },
    };
  }

  #sendFrame(
    dst: MacAddress,
    etherType: number,
    payload: Uint8Array,
    out: FrameSink,
    offload: TxOffload | null = null,
  ): void {
    const tx = this.#tx;
    writeEthernetHeader(tx, 0, dst, this.mac, etherType);
    tx.set(payload, ETHERNET_HEADER_LENGTH);
    let length = ETHERNET_HEADER_LENGTH + payload.length;
    if (length < ETHERNET_MIN_FRAME_LENGTH) {
      tx.fill(0, length, ETHERNET_MIN_FRAME_LENGTH);
      length = ETHERNET_MIN_FRAME_LENGTH;
    }
    this.ethernet.txPackets++;
    this.ethernet.txBytes += length;
    out.sendFrame(tx.subarray(0, length), offload);
  }

  #writeArpFrame(
    dst: MacAddress,
    operation: number,
    targetMac: MacAddress,
    targetIp: Ipv4Address,
    out: FrameSink,
    senderIp: Ipv4Address = this.#ipv4.address.address,
  ): void {
    const tx = this.#tx;
    writeEthernetHeader(tx, 0, dst, this.mac, EtherType.ARP);
    writeArp(tx, ETHERNET_HEADER_LENGTH, operation, this.mac, senderIp, targetMac, targetIp);
    const length = ETHERNET_HEADER_LENGTH + ARP_LENGTH;
    tx.fill(0, length, ETHERNET_MIN_FRAME_LENGTH);
    this.arp.txPackets++;
    this.arp.txBytes += ARP_LENGTH;
    this.ethernet.txPackets++;
    this.ethernet.txBytes += ETHERNET_MIN_FRAME_LENGTH;
    out.sendFrame(tx.subarray(0, ETHERNET_MIN_FRAME_LENGTH));
  }

  /** The ARP cache's request callback, bound once; `out` is retargeted per poll. */
  #requestOut: FrameSink | null = null;
  readonly #requestFn = (ip: Ipv4Address) => this.#sendRequest(ip, this.#requestOut!);
  #requestCallback(out: FrameSink): (ip: Ipv4Address) => void {
    this.#requestOut = out;
    return this.#requestFn;
  }

  #sendRequest(ip: Ipv4Address, out: FrameSink): void {
    this.arp.requestsSent++;
    this.#writeArpFrame(BROADCAST_MAC, ArpOperation.REQUEST, 0, ip, out);
  }

  #sendDueAnnouncement(now: number, out: FrameSink): void {
    if (!this.configured) {
      this.#announcesLeft = 0;
      return;
    }
    const own = this.#ipv4.address.address;
    this.arp.announcementsSent++;
    this.#writeArpFrame(BROADCAST_MAC, ArpOperation.REQUEST, 0, own, out);
    this.#announcesLeft--;
    this.#announceAt = now + this.#announceInterval;
  }

  #arpIngress(bytes: Uint8Array, now: number, out: FrameSink): void {
    const arp = this.#arpView.wrap(bytes);
    const error = arp.check();
    if (error !== null) {
      this.arp.drops.count(error);
      return;
    }
    this.arp.rxPackets++;
    this.arp.rxBytes += ARP_LENGTH;
    const own = this.#ipv4.address.address;
    const senderIp = arp.senderIp;
    const senderMac = readMac(bytes, 8);
    if (isMulticastMac(senderMac)) {
      this.arp.drops.count("multicast-sender");
      return;
    }
    const probed = this.#probeAddress;
    if (probed !== 0 && (senderIp === probed || (senderIp === 0 && arp.targetIp === probed))) {
      // RFC 5227 §2.1.1: someone uses the address, or probes for it at the same time.
      this.#probeConflict = true;
      log.warning("{mac} answers for {address}, which we are probing", {
        mac: formatMac(senderMac),
        address: formatIpv4(probed),
      });
    }
    if (own !== 0 && senderIp === own) {
      // Someone else claims our address (RFC 5227 §2.4 conflict); never cache it.
      this.arp.drops.count("address-conflict");
      log.warning("{mac} claims our address {address}", {
        mac: formatMac(senderMac),
        address: formatIpv4(own),
      });
      return;
    }
    const release = (packet: Uint8Array) => this.#sendFrame(senderMac, EtherType.IPV4, packet, out);
    // RFC 826 "Packet reception": update the sender's entry if we have one (merge flag)...
    const merged = senderIp !== 0 && this.cache.knows(senderIp);
    if (merged) this.cache.insert(senderIp, senderMac, now, release);
    const targetIp = arp.targetIp;
    if (own === 0 || targetIp !== own) {
      if (!merged) this.arp.drops.count("not-for-us");
      return;
    }
    // ...and, when we are the target, add it if it was not there.
    if (!merged && senderIp !== 0) this.cache.insert(senderIp, senderMac, now, release);
    if (arp.operation === ArpOperation.REQUEST) {
      // A probe (sender 0.0.0.0, RFC 5227 §2.1.1) is answered too: the reply tells the prober we hold it.
      this.arp.repliesSent++;
      this.#writeArpFrame(senderMac, ArpOperation.REPLY, senderMac, senderIp, out);
    }
  }
}

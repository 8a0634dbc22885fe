/**
 * The whole stack as a steppable, synchronous core: packets in with {@link StackCore.ingress}, timers run
 * with {@link StackCore.poll}, packets out through one {@link Transmit} function, and the next deadline
 * returned. No I/O, no timers, no clock: the caller passes the time. The I/O loop (lib/stack/loop.ts) drives
 * it with a real device; simulations drive it with a virtual clock.
 *
 * This is the one place where the layers are wired together: IPv4 (ICMP included) and IPv6 (ICMPv6
 * included) over the device or over Ethernet (ARP; NDP, DAD, SLAAC, MLD), UDP and TCP above both families,
 * and the DHCP client on Ethernet.
 *
 * @module
 */

import {
  EthernetInterface,
  type EthernetInterfaceOptions,
  type FrameSink,
} from "../iface/ethernet_interface.ts";
import { Ipv4Interface, type Ipv4InterfaceOptions } from "../iface/ipv4_interface.ts";
import type { Ipv4Sink, Ipv6Sink } from "../iface/protocol.ts";
import { Ipv6Interface } from "../iface/ipv6_interface.ts";
import { Ipv6Ethernet } from "../iface/ipv6_ethernet.ts";
import { NextHeader } from "../wire/ipv6.ts";
import type { Ipv6Address, Ipv6Cidr } from "../wire/ipv6_address.ts";
import { UdpLayer } from "../udp/layer.ts";
import { bindResponder, type DatagramAnswer, type DatagramResponder } from "../udp/responder.ts";
import { TcpLayer } from "../tcp/layer.ts";
import type { TcpLayerOptions } from "../tcp/config.ts";
import { attachDhcpClient, type AttachDhcpOptions, type DhcpClient } from "../dhcp/mod.ts";
import { IpProtocol } from "../wire/ipv4.ts";
import type { Ipv4Address, Ipv4Cidr } from "../wire/ipv4_address.ts";
import { type MacAddress, randomLocalMac } from "../wire/ethernet.ts";
import type { TxOffload } from "../wire/offload.ts";

/**
 * Where the core's packets go: an IP packet (IP medium) or an Ethernet frame, with its offload
 * descriptor (`null`: none; only when the core was told that the output offloads). The packet's bytes
 * and the descriptor are valid only during the call.
 */
export type Transmit = (packet: Uint8Array, offload: TxOffload | null) => void;

/** Options of {@link StackCore}. */
export interface StackCoreOptions {
  /** What one packet holds: IP packets (TUN) or Ethernet frames (TAP, libpcap). */
  medium: "ip" | "ethernet";
  /** The IP MTU. */
  mtu: number;
  /** Whether the output takes checksum-partial packets and TCP super-segments (see `Device.offloads`). */
  offloads?: boolean;
  /** The stack's own address and subnet; with `dhcp`, ignored until a lease provides one. */
  address: Ipv4Cidr;
  /** The stack's own static IPv6 address; none if omitted. */
  address6?: Ipv6Cidr | null;
  /** Run IPv6 (default true); false: IPv4 only, IPv6 packets counted and dropped. */
  ipv6?: boolean;
  /** Ethernet: IPv6 next hop off the prefix; default the routers learnt from advertisements. */
  gateway6?: Ipv6Address | null;
  /** Ethernet: IPv6 addresses from router advertisements (SLAAC, RFC 4862); default true. */
  slaac?: boolean;
  /** Ethernet: the stack's MAC address; default a random locally administered one. */
  mac?: MacAddress;
  /** Ethernet: next hop for destinations outside the subnet. */
  gateway?: Ipv4Address | null;
  /** Ethernet: obtain address, prefix and gateway by DHCPv4 (RFC 2131). */
  dhcp?: boolean | AttachDhcpOptions;
  /**
   * TCP tunables. TCP's MTU (its MSS is MTU − 40) defaults to {@link StackCoreOptions.mtu}; a simulation
   * may give TCP a smaller one than its link carries.
   */
  tcp?: TcpLayerOptions;
  /** IPv4 tunables (ICMP error rate, reassembly bounds). */
  ipv4?: Omit<Ipv4InterfaceOptions, "address" | "mtu">;
  /** UDP tunables: datagrams queued for the next poll at most. */
  udp?: { maxQueued?: number };
  /**
   * Ethernet with a static address: announce it by gratuitous ARP at creation (RFC 5227 §2.3); default
   * true. Protocol tests turn it off to start from a quiet link.
   */
  announce?: boolean;
  /** Ethernet tunables (ARP cache bounds and timers, announcements, probes). */
  ethernet?: Omit<EthernetInterfaceOptions, "mac" | "ipv4" | "gateway">;
}

/** The protocol layers of one stack, wired together, stepped by its driver. */
export class StackCore implements DatagramResponder {
  /** The IPv4 layer (ICMP included). */
  readonly ipv4: Ipv4Interface;
  /** The Ethernet layer (ARP, next hops) on Ethernet media; `null` on IP media. */
  readonly ethernet: EthernetInterface | null;
  /** The IPv6 layer (ICMPv6 included), or `null` with `ipv6: false`. */
  readonly ipv6: Ipv6Interface | null;
  /** IPv6 over Ethernet (NDP, DAD, SLAAC, MLD) on Ethernet media with IPv6; `null` otherwise. */
  readonly ipv6Link: Ipv6Ethernet<FrameSink> | null;
  /** The UDP layer. */
  readonly udp: UdpLayer;
  /** The TCP layer. */
  readonly tcp: TcpLayer;
  /** The DHCP client, when the address comes from DHCP. */
  readonly dhcp: DhcpClient | null;
  /**
   * Called when the application queued output outside {@link ingress} and {@link poll} (a send, a read
   * that opens the window, a close): the driver should {@link poll} soon.
   */
  onWake: (() => void) | null = null;
  /** Packets from the protocols, to the output (IP media). */
  readonly #packets: Ipv4Sink & Ipv6Sink;
  /** IPv6 packets received on an IP medium while IPv6 is off. */
  #ipv6Disabled = 0;
  /** Frames from the Ethernet layer, to the output. */
  readonly #frames: FrameSink;

  /** Wires the layers; `now` starts DHCP, or the gratuitous ARP announcement of a static address. */
  constructor(options: StackCoreOptions, transmit: Transmit, now: number) {
    const offloads = options.offloads === true;
    this.#packets = {
      offloads,
      sendIpv4: (packet, offload = null) => transmit(packet, offload),
      sendIpv6: (packet, offload = null) => transmit(packet, offload),
    };
    this.#frames = {
      offloads,
      sendFrame: (frame, offload = null) => transmit(frame, offload),
    };
    const unconfigured = { address: 0, prefixLength: 0 };
    this.ipv4 = new Ipv4Interface({
      ...options.ipv4,
      address: options.dhcp ? unconfigured : options.address,
      mtu: options.mtu,
    });
    this.ethernet = options.medium === "ethernet"
      ? new EthernetInterface({
        ...options.ethernet,
        mac: options.mac ?? randomLocalMac(),
        ipv4: this.ipv4,
        gateway: options.gateway ?? null,
      })
      : null;
    this.udp = new UdpLayer(this.ipv4, options.udp);
    this.ipv4.register(IpProtocol.UDP, this.udp);
    this.ipv6 = options.ipv6 === false ? null : new Ipv6Interface({
      mtu: options.mtu,
      addresses: options.address6 ? [options.address6] : [],
    });
    if (this.ipv6 !== null) {
      this.udp.attachIpv6(this.ipv6);
      this.ipv6.register(NextHeader.UDP, this.udp);
    }
    let ipv6Link: Ipv6Ethernet<FrameSink> | null = null;
    if (this.ethernet !== null && this.ipv6 !== null) {
      // On Ethernet: link-local address, DAD, NDP, SLAAC (RFC 4862) and MLD, see ipv6_ethernet.ts.
      ipv6Link = new Ipv6Ethernet<FrameSink>(this.ethernet, {
        ipv6: this.ipv6,
        mac: this.ethernet.mac,
        gateway6: options.gateway6 ?? null,
        slaac: options.slaac ?? true,
      });
      this.ethernet.attachIpv6(ipv6Link);
    }
    this.ipv6Link = ipv6Link;
    this.tcp = new TcpLayer({ mtu: options.mtu, ...options.tcp, mtu6: this.ipv6?.mtu ?? 0 });
    this.tcp.onPollRequested = () => this.onWake?.();
    this.ipv4.register(IpProtocol.TCP, this.tcp);
    // One TCP layer for both families: listeners take connections over either (a dual-stack socket).
    this.ipv6?.register(NextHeader.TCP, this.tcp);
    let dhcp: DhcpClient | null = null;
    if (options.dhcp) {
      if (this.ethernet === null) throw new Error("DHCP needs an Ethernet device (TAP or libpcap)");
      dhcp = attachDhcpClient(this.ethernet, this.udp, now, options.dhcp === true ? {} : options.dhcp);
    } else if (this.ethernet !== null && options.announce !== false) {
      this.ethernet.announce(now, this.#frames); // gratuitous ARP for the static address
    }
    this.dhcp = dhcp;
  }

  /** Handles one received packet (or frame) with its `RxFlags`; its bytes are not kept. Never throws on bad input. */
  ingress(packet: Uint8Array, now: number, rxFlags = 0): void {
    if (this.ethernet !== null) {
      this.ethernet.ingress(packet, now, this.#frames, rxFlags);
    } else if (packet.length > 0 && packet[0] >> 4 === 6) {
      // An IP medium (TUN) carries both families: the version nibble tells them apart.
      if (this.ipv6 !== null) this.ipv6.ingress(packet, now, this.#packets, rxFlags);
      else this.#ipv6Disabled++;
    } else {
      this.ipv4.ingress(packet, now, this.#packets, rxFlags);
    }
  }

  /**
   * Sends what is due at `now` (queued output, retransmissions, ARP, DHCP) and returns the next deadline,
   * or `null` when nothing is scheduled. On Ethernet the Ethernet layer polls IPv4 and everything above.
   */
  poll(now: number): number | null {
    if (this.ethernet !== null) return this.ethernet.poll(now, this.#frames);
    const next4 = this.ipv4.poll(now, this.#packets);
    const next6 = this.ipv6 === null ? null : this.ipv6.poll(now, this.#packets);
    return next4 === null ? next6 : next6 === null ? next4 : Math.min(next4, next6);
  }

  /**
   * Answers each datagram to UDP `port` with `answer`'s reply (or none), from inside the receive path:
   * no copy, no queue (UDP echo). Returns a function that unbinds the port.
   */
  answerDatagrams(port: number, answer: DatagramAnswer): () => void {
    return bindResponder(this.udp, () => this.ipv4.address.address, port, answer);
  }

  /**
   * Shutdown: resets every open TCP connection (the RSTs go out at the next poll) and gives back a DHCP
   * lease (RFC 2131 §4.4.6). Returns whether a DHCP release was sent, which may need a few more polls
   * (ARP first) to get out: see {@link settling}.
   */
  shutdown(now: number): boolean {
    for (const connection of this.tcp.connections()) connection.abort();
    if (this.dhcp?.lease && this.ethernet) {
      this.dhcp.release(now, this.ethernet.ipv4Sink(now, this.#frames));
      return true;
    }
    return false;
  }

  /** Whether packets still wait for address resolution (so a driver shutting down may poll a little longer). */
  get settling(): boolean {
    return (this.ethernet?.cache.pendingCount ?? 0) > 0;
  }

  /** The layers' counters as a JSON-able object: Ethernet/ARP, NDP, IPv4, ICMP, IPv6, ICMPv6, UDP, TCP, DHCP. */
  stats(): Record<string, unknown> {
    return {
      ...(this.ethernet?.stats() ?? {}),
      ...(this.ipv6Link?.stats() ?? {}),
      ...this.ipv4.stats(),
      ...(this.ipv6?.stats() ??
        { ipv6: { disabled: true, drops: { "ipv6-disabled": this.#ipv6Disabled } } }),
      udp: this.udp.stats(),
      tcp: this.tcp.stats(),
      ...(this.dhcp ? { dhcp: this.dhcp.stats() } : {}),
    };
  }
}

/**
 * The stack's shell: it owns a device, a clock and the sans-I/O protocol core, and runs the I/O loop.
 * Everything with time or I/O lives here; everything protocol lives below `lib/iface`, `lib/udp`, `lib/tcp`.
 *
 * The loop waits for readiness once (one awaited non-blocking `poll`), then drains every ready packet
 * synchronously, yielding to the event loop between batches so application code runs; no Promise per packet.
 *
 * @module
 */

import type { Device } from "../phy/device.ts";
import type { TxOffload } from "../wire/offload.ts";
import { Ipv4Interface } from "../iface/ipv4_interface.ts";
import type { Ipv4Sink } from "../iface/protocol.ts";
import { UdpLayer } from "../udp/layer.ts";
import { IpProtocol } from "../wire/ipv4.ts";
import { formatIpv4Cidr, type Ipv4Address, type Ipv4Cidr } from "../wire/ipv4_address.ts";
import { DatagramEndpoint } from "./datagram.ts";
import { type RunningServices, type ServiceName, startServices } from "../services/mod.ts";
import { TcpLayer } from "../tcp/layer.ts";
import type { TcpLayerOptions } from "../tcp/config.ts";
import { TcpConn, TcpConnListener } from "./tcp_conn.ts";
import { formatIpv4, parseIpv4 } from "../wire/ipv4_address.ts";
import { EthernetInterface, type FrameSink } from "../iface/ethernet_interface.ts";
import { attachDhcpClient, type AttachDhcpOptions, type DhcpClient, type DhcpLease } from "../dhcp/mod.ts";
import { type MacAddress, randomLocalMac } from "../wire/ethernet.ts";
import { logger } from "../log.ts";
import { Ipv6Interface } from "../iface/ipv6_interface.ts";
import { Ipv6Ethernet } from "../iface/ipv6_ethernet.ts";
import type { Ipv6Sink } from "../iface/protocol.ts";
import { NextHeader } from "../wire/ipv6.ts";
import { formatIpv6Cidr, type Ipv6Address, type Ipv6Cidr, parseIpv6 } from "../wire/ipv6_address.ts";

export { SERVICE_NAMES as AVAILABLE_SERVICES, type ServiceName } from "../services/mod.ts";

/** Options of {@link Stack}. */
export interface StackOptions {
  /** The device the stack runs on: TUN (IP packets), TAP or libpcap (Ethernet), or an in-memory one. */
  device: Device;
  /** The stack's own address and subnet; with `dhcp`, ignored until a lease provides one. */
  address: Ipv4Cidr;
  /** The stack's own static IPv6 address (TUN/TAP default `fd00::2/64` comes from the CLI); none if omitted. */
  address6?: Ipv6Cidr | null;
  /** Run IPv6 (default true); false: IPv4 only, IPv6 packets counted and dropped. */
  ipv6?: boolean;
  /** Ethernet devices: IPv6 next hop off the prefix; default the routers learnt from advertisements. */
  gateway6?: Ipv6Address | null;
  /** Ethernet devices: addresses from router advertisements (SLAAC, RFC 4862); default true. */
  slaac?: boolean;
  /** Ethernet devices: the stack's MAC address; default a random locally administered one. */
  mac?: MacAddress;
  /** Ethernet devices: next hop for destinations outside the subnet. */
  gateway?: Ipv4Address | null;
  /**
   * Ethernet devices: obtain address, prefix and gateway by DHCPv4 (RFC 2131); `onBound` and the other
   * callbacks of {@link AttachDhcpOptions} report the lease.
   */
  dhcp?: boolean | AttachDhcpOptions;
  /** Services to start; default none. */
  services?: readonly ServiceName[];
  /** Monotonic clock in milliseconds; default `performance.now`. Tests may pass a virtual one. */
  clock?: () => number;
  /**
   * Packets drained per batch before yielding to the event loop; default 512. Each read is one syscall
   * (~2–5 µs), so a batch holds the loop for ~1–3 ms at most; larger batches drain a flood faster (each
   * yield, poll and event-loop turn is paid once per batch), smaller ones let application code run sooner.
   */
  batchSize?: number;
  /** TCP tunables (buffer sizes, congestion control, timers…); the MTU comes from the device. */
  tcp?: TcpLayerOptions;
  /**
   * How the loop waits for packets when idle. `async` (default): an awaited poll on a pool thread, so the
   * event loop stays free; fits any program. `block`: the thread blocks in the kernel (a synchronous poll)
   * after one event-loop turn found nothing to do, for at most {@link BLOCK_SLICE_MS} at a time
   * ({@link BLOCK_IDLE_SLICE_MS} when idle); about half the round trip, for a program the stack owns (the
   * CLI): other event-loop work (timers, async I/O completions) waits up to a slice, signals interrupt the
   * wait. Falls back to `async` on devices that cannot block.
   */
  wait?: "async" | "block";
}

/**
 * Longest synchronous wait of a `block` loop before the event loop gets a turn, while packets flow: it
 * bounds how late timers and async I/O of the program run.
 */
export const BLOCK_SLICE_MS = 25;
/** The slice once no packet came for {@link BLOCK_IDLE_AFTER_MS}: an idle stack wakes 5 times a second. */
export const BLOCK_IDLE_SLICE_MS = 200;
/** How long without packets makes the loop idle. */
export const BLOCK_IDLE_AFTER_MS = 1000;

/** Device-level counters kept by the shell. */
export interface DeviceCounters {
  /** Packets read from the device. */
  rxPackets: number;
  /** Bytes read. */
  rxBytes: number;
  /** Packets written to the device. */
  txPackets: number;
  /** Bytes written. */
  txBytes: number;
  /** Writes the device refused. */
  txErrors: number;
  /** Readiness waits (awaited FFI calls, or synchronous ones in `block` mode). */
  waits: number;
  /** Of {@link DeviceCounters.waits}, those that blocked the thread (`block` mode). */
  blockingWaits: number;
}

const log = logger("stack");

/** Yields to the event loop for about 5 µs (setTimeout(0) would cost ~2 ms; see DENO-FFI-NOTES). */
function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** How long shutdown waits for a DHCP release to get out (it may need ARP first). */
const RELEASE_DRAIN_MS = 1000;

/** A running user-space TCP/IP stack on one device. */
export class Stack {
  /** The IPv4 layer (ICMP included). */
  readonly iface: Ipv4Interface;
  /** The Ethernet layer (ARP, next hops) on Ethernet devices; `null` on TUN. */
  readonly ethernet: EthernetInterface | null;
  /** The DHCP client, when the address comes from DHCP. */
  readonly dhcp: DhcpClient | null;
  /** The IPv6 layer (ICMPv6 included), or `null` with `ipv6: false`. */
  readonly ipv6: Ipv6Interface | null;
  /** IPv6 over Ethernet (NDP, DAD, SLAAC, MLD) on Ethernet devices with IPv6; `null` otherwise. */
  readonly ipv6Link: Ipv6Ethernet<FrameSink> | null;
  /** The UDP layer. */
  readonly udp: UdpLayer;
  /** The TCP layer. */
  readonly tcp: TcpLayer;
  /** Resolves when the I/O loop has stopped and the device is closed. */
  readonly closed: Promise<void>;
  readonly #device: Device;
  readonly #clock: () => number;
  readonly #batchSize: number;
  readonly #counters: DeviceCounters = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txErrors: 0,
    waits: 0,
    blockingWaits: 0,
  };
  readonly #block: boolean;
  readonly #startedAt: number;
  readonly #services: RunningServices;
  /** Packets from the protocols, to the device (through the Ethernet layer on Ethernet devices). */
  readonly #out: Ipv4Sink & Ipv6Sink;
  /** IPv6 packets received while IPv6 is off. */
  #ipv6Disabled = 0;
  /** Frames from the Ethernet layer, to the device. */
  readonly #frames: FrameSink;
  /** Counters of components added on top (e.g. the forwarding relay), by name. */
  readonly #extraStats = new Map<string, () => unknown>();
  #stopping = false;
  /** During shutdown, the time until which the loop keeps running for a DHCP release. */
  #drainUntil = 0;

  /** Creates the stack on `options.device` and starts its I/O loop. */
  constructor(options: StackOptions) {
    this.#device = options.device;
    this.#clock = options.clock ?? (() => performance.now());
    this.#batchSize = options.batchSize ?? 512;
    this.#block = options.wait === "block" && options.device.waitSync !== undefined;
    this.#startedAt = this.#clock();
    const ethernet = options.device.medium === "ethernet";
    const unconfigured = { address: 0, prefixLength: 0 };
    this.iface = new Ipv4Interface({
      address: options.dhcp ? unconfigured : options.address,
      mtu: options.device.mtu,
    });
    const device = options.device;
    const counters = this.#counters;
    /** Writes one packet or frame to the device and counts it. */
    const transmit = (packet: Uint8Array, offload: TxOffload | null = null): void => {
      if (device.send(packet, offload)) {
        counters.txPackets++;
        counters.txBytes += packet.length;
      } else {
        counters.txErrors++;
      }
    };
    this.#out = { offloads: device.offloads === true, sendIpv4: transmit, sendIpv6: transmit };
    this.#frames = { offloads: device.offloads === true, sendFrame: transmit };
    this.ethernet = ethernet
      ? new EthernetInterface({
        mac: options.mac ?? randomLocalMac(),
        ipv4: this.iface,
        gateway: options.gateway ?? null,
      })
      : null;
    this.udp = new UdpLayer(this.iface);
    this.iface.register(IpProtocol.UDP, this.udp);
    this.ipv6 = options.ipv6 === false ? null : new Ipv6Interface({
      mtu: options.device.mtu,
      addresses: options.address6 ? [options.address6] : [],
    });
    if (this.ipv6 !== null) {
      this.udp.attachIpv6(this.ipv6);
      this.ipv6.register(NextHeader.UDP, this.udp);
    }
    this.ipv6Link = null;
    if (this.ethernet !== null && this.ipv6 !== null) {
      // On Ethernet: link-local address, DAD, NDP, SLAAC (RFC 4862) and MLD, see ipv6_ethernet.ts.
      const link = new Ipv6Ethernet<FrameSink>(this.ethernet, {
        ipv6: this.ipv6,
        mac: this.ethernet.mac,
        gateway6: options.gateway6 ?? null,
        slaac: options.slaac ?? true,
      });
      this.ethernet.attachIpv6(link);
      this.ipv6Link = link;
    }
    this.tcp = new TcpLayer({ ...options.tcp, mtu: options.device.mtu, mtu6: this.ipv6?.mtu ?? 0 });
    // Application calls (send, read, close) make output due: wake the loop so that it polls now.
    this.tcp.onPollRequested = () => this.kick();
    this.iface.register(IpProtocol.TCP, this.tcp);
    // One TCP layer for both families: listeners take connections over either (a dual-stack socket).
    this.ipv6?.register(NextHeader.TCP, this.tcp);
    this.dhcp = null;
    if (options.dhcp) {
      if (this.ethernet === null) throw new Error("DHCP needs an Ethernet device (TAP or libpcap)");
      const dhcpOptions = options.dhcp === true ? {} : options.dhcp;
      this.dhcp = attachDhcpClient(this.ethernet, this.udp, this.#clock(), dhcpOptions);
    } else if (this.ethernet !== null) {
      this.ethernet.announce(this.#clock(), this.#frames); // gratuitous ARP for the static address
    }
    this.closed = this.#run();
    this.#services = startServices(this, options.services ?? []);
  }

  /** The device's name. */
  get deviceName(): string {
    return this.#device.name;
  }

  /** The stack's address and prefix. */
  get address(): Ipv4Cidr {
    return this.iface.address;
  }

  /** The stack's main IPv6 address (the first preferred one that is not link-local), or `null`. */
  get address6(): Ipv6Cidr | null {
    const entry = this.ipv6?.primaryAddress ?? null;
    return entry === null ? null : { address: entry.address, prefixLength: entry.prefixLength };
  }

  /**
   * Opens a UDP port, like `Deno.listenDatagram`: without `hostname` (or with `::`) for both families,
   * with `0.0.0.0` for IPv4 only, with one of the stack's addresses for datagrams to it only.
   */
  listenDatagram(options: { port: number; hostname?: string }): DatagramEndpoint {
    return new DatagramEndpoint(
      { udp: this.udp, localAddress: (): Ipv4Address => this.iface.address.address, kick: () => this.kick() },
      options.port,
      undefined,
      options.hostname,
    );
  }

  /** Listens on a TCP port, like `Deno.listen`; iterate over the listener to accept connections. */
  listen(options: { port: number; backlog?: number }): TcpConnListener {
    const listener = this.tcp.listen(options.port, options.backlog);
    return new TcpConnListener(
      listener,
      formatIpv4(this.iface.address.address),
      (a) => this.tcp.formatAddress(a),
    );
  }

  /**
   * Opens a TCP connection, like `Deno.connect`. Rejects with `Deno.errors.ConnectionRefused` (RST),
   * `Deno.errors.TimedOut` (no answer) or `TypeError` (bad address).
   */
  async connect(options: { hostname: string; port: number }): Promise<TcpConn> {
    const remote = parseIpv4(options.hostname);
    const remote6 = remote === null ? parseIpv6(options.hostname.replace(/^\[(.*)\]$/, "$1")) : null;
    if (remote === null && remote6 === null) {
      throw new TypeError(`'${options.hostname}' is not an IPv4 or IPv6 address`);
    }
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new RangeError(`invalid TCP port ${options.port}`);
    }
    let connection;
    if (remote6 !== null) {
      // RFC 6724: the source address towards the destination (link-local for link-local, ...).
      const source = this.ipv6?.sourceFor(remote6) ?? null;
      if (source === null) {
        throw new Deno.errors.AddrNotAvailable(
          this.ipv6 === null
            ? "IPv6 is off (--no-ipv6)"
            : `no IPv6 address to reach ${options.hostname} from`,
        );
      }
      connection = this.tcp.connect6(source, remote6, options.port, this.#clock());
    } else {
      connection = this.tcp.connect(this.iface.address.address, remote!, options.port, this.#clock());
    }
    const conn = new TcpConn(connection, (a) => this.tcp.formatAddress(a));
    this.kick();
    await conn.opened();
    return conn;
  }

  /** Asks the I/O loop to run now (after the application queued something to send). */
  kick(): void {
    this.#device.wake();
  }

  /** The current DHCP lease, if any. */
  get lease(): DhcpLease | null {
    return this.dhcp?.lease ?? null;
  }

  /**
   * Adds the counters of a component built on the stack (e.g. `forward`) to {@link stats} under `name`;
   * `stats` calls `source` each time.
   */
  addStats(name: string, source: () => unknown): void {
    this.#extraStats.set(name, source);
  }

  /** All counters: device, Ethernet/ARP, IPv4, ICMP, UDP, TCP, DHCP, with drops by reason. */
  stats(): Record<string, unknown> {
    return {
      address: formatIpv4Cidr(this.iface.address),
      ...(this.address6 ? { address6: formatIpv6Cidr(this.address6) } : {}),
      device: { name: this.#device.name, ...this.#counters, ...this.#device.counters?.() },
      uptimeSeconds: Math.round((this.#clock() - this.#startedAt) / 100) / 10,
      ...(this.ethernet?.snapshot() ?? {}),
      ...(this.ipv6Link?.snapshot() ?? {}),
      ...this.iface.snapshot(),
      ...(this.ipv6?.snapshot() ??
        { ipv6: { disabled: true, drops: { "ipv6-disabled": this.#ipv6Disabled } } }),
      udp: this.udp.snapshot(),
      tcp: {
        connections: this.tcp.countByState(),
        ...this.tcp.stats,
        drops: { ...this.tcp.stats.drops },
        memory: this.tcp.memory.stats(),
      },
      ...(this.dhcp ? { dhcp: this.dhcp.snapshot() } : {}),
      services: this.#services?.snapshot() ?? {},
      ...Object.fromEntries([...this.#extraStats].map(([name, source]) => [name, source()])),
    };
  }

  /** Stops the loop, closes the device (a created TUN device disappears) and resolves when done. */
  async close(): Promise<void> {
    if (!this.#stopping) {
      // Reset what is still open so that peers learn at once; the loop's last poll sends the RSTs.
      for (const connection of this.tcp.connections()) connection.abort();
      const now = this.#clock();
      if (this.dhcp?.lease && this.ethernet) {
        // RFC 2131 §4.4.6: give the lease back; the loop runs on briefly so the RELEASE (and ARP) get out.
        this.dhcp.release(now, this.ethernet.ipv4Sink(now, this.#frames));
        this.#drainUntil = now + RELEASE_DRAIN_MS;
      }
      this.#stopping = true;
      this.#device.wake();
    }
    await this.closed;
    await this.#services.close();
  }

  /** Whether shutdown is done: stopping, and nothing (a DHCP release awaiting ARP) asks for more time. */
  #finished(now: number): boolean {
    if (!this.#stopping) return false;
    return now >= this.#drainUntil || (this.ethernet?.cache.pendingCount ?? 0) === 0;
  }

  async #run(): Promise<void> {
    const device = this.#device;
    const counters = this.#counters;
    const out = this.#out;
    const frames = this.#frames;
    let now = this.#clock();
    let lastPacketAt = now;
    const iface = this.iface;
    const ipv6 = this.ipv6;
    const ethernet = this.ethernet;
    const onPacket = ethernet === null
      ? (packet: Uint8Array, flags = 0) => {
        counters.rxPackets++;
        counters.rxBytes += packet.length;
        // TUN carries both families: the version nibble tells them apart.
        if (packet.length > 0 && packet[0] >> 4 === 6) {
          if (ipv6 !== null) ipv6.ingress(packet, now, out, flags);
          else this.#ipv6Disabled++;
        } else {
          iface.ingress(packet, now, out, flags);
        }
      }
      : (frame: Uint8Array, flags = 0) => {
        counters.rxPackets++;
        counters.rxBytes += frame.length;
        ethernet.ingress(frame, now, frames, flags);
      };
    // On Ethernet the Ethernet layer polls IPv4 and everything above it (and ARP, DHCP).
    const poll = ethernet === null
      ? (at: number) => {
        const next4 = iface.poll(at, out);
        const next6 = ipv6 === null ? null : ipv6.poll(at, out);
        return next4 === null ? next6 : next6 === null ? next4 : Math.min(next4, next6);
      }
      : (at: number) => ethernet.poll(at, frames);
    try {
      // Yield once so the constructor returns before any packet is handled.
      await yieldNow();
      while (true) {
        if (this.#finished(this.#clock())) {
          poll(this.#clock()); // flush what closing queued (RSTs)
          break;
        }
        now = this.#clock();
        const received = device.receive(onPacket, this.#batchSize);
        now = this.#clock();
        const deadline = poll(now);
        if (received > 0) {
          lastPacketAt = now;
          // More may be ready: a read returning EAGAIN (~1 µs) is far cheaper than an awaited poll.
          await yieldNow();
          continue;
        }
        const limit = this.#stopping ? 20 : 1000; // while draining, look again soon
        const timeout = deadline === null ? limit : Math.min(limit, Math.max(0, deadline - this.#clock()));
        if (timeout > 0 && this.#block) {
          // Block only once the event loop is idle: one turn runs the microtasks and callbacks the batch
          // caused (an application answering), which may queue output (kick makes the wait return).
          await yieldNow();
          counters.waits++;
          counters.blockingWaits++;
          const slice = now - lastPacketAt > BLOCK_IDLE_AFTER_MS ? BLOCK_IDLE_SLICE_MS : BLOCK_SLICE_MS;
          device.waitSync!(Math.min(timeout, slice));
        } else if (timeout > 0) {
          counters.waits++;
          await device.wait(timeout);
        } else {
          await yieldNow();
        }
      }
    } catch (error) {
      log.error("the I/O loop stopped: {error}", { error });
      throw error;
    } finally {
      device.close();
    }
  }
}

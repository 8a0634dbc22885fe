/**
 * The stack as applications use it: a {@link StackCore} (the protocol layers, stepped synchronously) driven
 * by a {@link DeviceLoop} (the device, the clock and the I/O loop), with `Deno.listen`/`Deno.connect`-like
 * calls on top. Everything with time or I/O lives in the loop; everything protocol in the core.
 *
 * @module
 */

import type { Device } from "../phy/device.ts";
import type { TcpLayerOptions } from "../tcp/config.ts";
import type { AttachDhcpOptions, DhcpLease } from "../dhcp/mod.ts";
import type { DatagramAnswer } from "../udp/responder.ts";
import type { MacAddress } from "../wire/ethernet.ts";
import {
  formatIpv4,
  formatIpv4Cidr,
  type Ipv4Address,
  type Ipv4Cidr,
  parseIpv4,
} from "../wire/ipv4_address.ts";
import { formatIpv6Cidr, type Ipv6Address, type Ipv6Cidr, parseIpv6 } from "../wire/ipv6_address.ts";
import { Forwarder, type ForwardOptions } from "../forward/forwarder.ts";
import { StackCore } from "./core.ts";
import { DeviceLoop } from "./loop.ts";
import { DatagramEndpoint } from "./datagram.ts";
import { TcpConn, TcpConnListener } from "./tcp_conn.ts";

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
   * after one event-loop turn found nothing to do, for at most `BLOCK_SLICE_MS` at a time after activity,
   * growing to `BLOCK_IDLE_SLICE_MS` when idle (both in lib/stack/loop.ts); about half the round trip, for
   * a program the stack owns (the CLI): other event-loop work (timers, async I/O completions) waits up to
   * a slice, signals interrupt the wait. Falls back to `async` on devices that cannot block.
   */
  wait?: "async" | "block";
  /**
   * Forwarding mode (lib/forward): relay every TCP and UDP flow (and ping) to other hosts through host
   * sockets, as slirp4netns and pasta do; `true` for the default limits.
   */
  forward?: boolean | ForwardOptions;
}

/** How long shutdown waits for a DHCP release to get out (it may need ARP first). */
const RELEASE_DRAIN_MS = 1000;

/** A running user-space TCP/IP stack on one device. */
export class Stack {
  /** Resolves when the I/O loop has stopped and the device is closed. */
  readonly closed: Promise<void>;
  readonly #core: StackCore;
  readonly #loop: DeviceLoop;
  readonly #device: Device;
  readonly #clock: () => number;
  readonly #startedAt: number;
  /** The relay, in forwarding mode. */
  readonly #forwarder: Forwarder | null;
  #forwarderClosed: Promise<void> | null = null;
  /** Counters of components added on top (e.g. the forwarding relay), by name. */
  readonly #extraStats = new Map<string, () => unknown>();
  #stopping = false;
  /** During shutdown, the time until which the loop keeps running for a DHCP release. */
  #drainUntil = 0;

  /** Creates the stack on `options.device` and starts its I/O loop. */
  constructor(options: StackOptions) {
    const device = options.device;
    this.#device = device;
    this.#clock = options.clock ?? (() => performance.now());
    this.#startedAt = this.#clock();
    this.#loop = new DeviceLoop(device, { batchSize: options.batchSize, wait: options.wait });
    this.#core = new StackCore(
      {
        medium: device.medium,
        mtu: device.mtu,
        offloads: device.offloads === true,
        address: options.address,
        address6: options.address6,
        ipv6: options.ipv6,
        gateway6: options.gateway6,
        slaac: options.slaac,
        mac: options.mac,
        gateway: options.gateway,
        dhcp: options.dhcp,
        tcp: { ...options.tcp, mtu: device.mtu },
      },
      this.#loop.transmit,
      this.#startedAt,
    );
    // The relay works on the layers themselves (transit traffic, a SYN gate in front of TCP); made before
    // the loop starts, so that a failure leaves nothing running.
    const core = this.#core;
    this.#forwarder = options.forward
      ? new Forwarder(
        {
          iface: core.ipv4,
          udp: core.udp,
          tcp: core.tcp,
          kick: () => this.#kick(),
          addStats: (name, source) => this.addStats(name, source),
        },
        options.forward === true ? {} : options.forward,
      )
      : null;
    // Application calls (send, read, close) make output due: the core wakes the loop so that it polls now.
    this.#loop.attach(this.#core);
    this.closed = this.#loop.run(this.#clock, (now) => this.#finished(now), () => this.#stopping);
  }

  /** The device's name. */
  get deviceName(): string {
    return this.#device.name;
  }

  /** The stack's address and prefix. */
  get address(): Ipv4Cidr {
    return this.#core.ipv4.address;
  }

  /** The stack's MAC address on Ethernet devices; `null` on TUN. */
  get mac(): MacAddress | null {
    return this.#core.ethernet?.mac ?? null;
  }

  /** The next hop outside the subnet (static or from DHCP) on Ethernet devices; `null` when none. */
  get gateway(): Ipv4Address | null {
    return this.#core.ethernet?.gateway ?? null;
  }

  /** The IP MTU. */
  get mtu(): number {
    return this.#core.ipv4.mtu;
  }

  /** The stack's main IPv6 address (the first preferred one that is not link-local), or `null`. */
  get address6(): Ipv6Cidr | null {
    const entry = this.#core.ipv6?.primaryAddress ?? null;
    return entry === null ? null : { address: entry.address, prefixLength: entry.prefixLength };
  }

  /** The stack's link-local IPv6 address (fe80::/64), or `null` (IPv6 off, or none yet). */
  get linkLocal6(): Ipv6Cidr | null {
    const entry = this.#core.ipv6?.linkLocal ?? null;
    return entry === null ? null : { address: entry.address, prefixLength: entry.prefixLength };
  }

  /** Whether an IPv6 address is still tentative: duplicate address detection (RFC 4862 §5.4) is running. */
  get dadPending(): boolean {
    return this.#core.ipv6Link?.dadPending ?? false;
  }

  /**
   * Called when duplicate address detection finds one of the stack's IPv6 addresses in use by `by` (a MAC
   * address) on an Ethernet device; the address is removed. `null`: not reported.
   */
  set onDadConflict(callback: ((address: Ipv6Address, by: MacAddress) => void) | null) {
    if (this.#core.ipv6Link !== null) this.#core.ipv6Link.onDadConflict = callback;
  }

  /**
   * Opens a UDP port, like `Deno.listenDatagram`: without `hostname` (or with `::`) for both families,
   * with `0.0.0.0` for IPv4 only, with one of the stack's addresses for datagrams to it only.
   */
  listenDatagram(options: { port: number; hostname?: string }): DatagramEndpoint {
    return new DatagramEndpoint(
      {
        udp: this.#core.udp,
        localAddress: (): Ipv4Address => this.#core.ipv4.address.address,
        kick: () => this.#kick(),
      },
      options.port,
      undefined,
      options.hostname,
    );
  }

  /**
   * Answers each datagram to UDP `port` with `answer`'s reply (or none), from inside the receive path:
   * no copy, no queue (UDP echo). Returns a function that unbinds the port.
   */
  answerDatagrams(port: number, answer: DatagramAnswer): () => void {
    return this.#core.answerDatagrams(port, answer);
  }

  /** Listens on a TCP port, like `Deno.listen`; iterate over the listener to accept connections. */
  listen(options: { port: number; backlog?: number }): TcpConnListener {
    const tcp = this.#core.tcp;
    const listener = tcp.listen(options.port, options.backlog);
    return new TcpConnListener(
      listener,
      formatIpv4(this.#core.ipv4.address.address),
      (a) => tcp.formatAddress(a),
    );
  }

  /**
   * Opens a TCP connection to an IPv4 or IPv6 address, like `Deno.connect`. Rejects with
   * `Deno.errors.ConnectionRefused` (RST), `Deno.errors.TimedOut` (no answer),
   * `Deno.errors.AddrNotAvailable` (no IPv6 address to send from) or `TypeError` (bad address).
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
    const tcp = this.#core.tcp;
    const ipv6 = this.#core.ipv6;
    let connection;
    if (remote6 !== null) {
      // RFC 6724: the source address towards the destination (link-local for link-local, ...).
      const source = ipv6?.sourceFor(remote6) ?? null;
      if (source === null) {
        throw new Deno.errors.AddrNotAvailable(
          ipv6 === null ? "IPv6 is off (--no-ipv6)" : `no IPv6 address to reach ${options.hostname} from`,
        );
      }
      connection = tcp.connect6(source, remote6, options.port, this.#clock());
    } else {
      connection = tcp.connect(this.#core.ipv4.address.address, remote!, options.port, this.#clock());
    }
    const conn = new TcpConn(connection, (a) => tcp.formatAddress(a));
    this.#kick();
    await conn.opened();
    return conn;
  }

  /** Asks the I/O loop to run now (after the application queued something to send). */
  #kick(): void {
    this.#loop.wake();
  }

  /** The current DHCP lease, if any. */
  get lease(): DhcpLease | null {
    return this.#core.dhcp?.lease ?? null;
  }

  /**
   * TCP connections held now (every state) and bytes of buffer store allocated for them: two numbers,
   * cheap to read often (memory housekeeping such as `lib/stack/reclaim.ts`).
   */
  tcpUsage(): { connections: number; bufferBytes: number } {
    const tcp = this.#core.tcp;
    return { connections: tcp.connectionCount, bufferBytes: tcp.memory.used };
  }

  /**
   * Adds the counters of a component built on the stack (e.g. `forward`) to {@link stats} under `name`;
   * `stats` calls `source` each time.
   */
  addStats(name: string, source: () => unknown): void {
    this.#extraStats.set(name, source);
  }

  /**
   * All counters as a JSON-able object: device, Ethernet/ARP, NDP, IPv4, ICMP, IPv6, ICMPv6, UDP, TCP,
   * DHCP, drops by reason.
   */
  stats(): Record<string, unknown> {
    const address6 = this.address6;
    return {
      address: formatIpv4Cidr(this.#core.ipv4.address),
      ...(address6 ? { address6: formatIpv6Cidr(address6) } : {}),
      device: this.#loop.stats(),
      uptimeSeconds: Math.round((this.#clock() - this.#startedAt) / 100) / 10,
      ...this.#core.stats(),
      ...Object.fromEntries([...this.#extraStats].map(([name, source]) => [name, source()])),
    };
  }

  /** Stops the loop, closes the device (a created TUN device disappears) and resolves when done. */
  async close(): Promise<void> {
    // The relay first: it resets the relayed connections (the loop sends the RSTs) and closes host sockets.
    if (this.#forwarder !== null) {
      this.#forwarderClosed ??= this.#forwarder.close();
      await this.#forwarderClosed;
    }
    if (!this.#stopping) {
      // Reset what is still open so that peers learn at once; the loop's last poll sends the RSTs.
      const now = this.#clock();
      // A DHCP release (RFC 2131 §4.4.6) may need ARP first: the loop runs on briefly to get it out.
      if (this.#core.shutdown(now)) this.#drainUntil = now + RELEASE_DRAIN_MS;
      this.#stopping = true;
      this.#device.wake();
    }
    await this.closed;
  }

  /** Whether shutdown is done: stopping, and nothing (a DHCP release awaiting ARP) asks for more time. */
  #finished(now: number): boolean {
    if (!this.#stopping) return false;
    return now >= this.#drainUntil || !this.#core.settling;
  }
}

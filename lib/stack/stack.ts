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
import { logger } from "../log.ts";

export { SERVICE_NAMES as AVAILABLE_SERVICES, type ServiceName } from "../services/mod.ts";

/** Options of {@link Stack}. */
export interface StackOptions {
  /** The device the stack runs on (a TUN device, or an in-memory one in tests). */
  device: Device;
  /** The stack's own address and subnet. */
  address: Ipv4Cidr;
  /** Services to start; default none. */
  services?: readonly ServiceName[];
  /** Monotonic clock in milliseconds; default `performance.now`. Tests may pass a virtual one. */
  clock?: () => number;
  /** Packets drained per batch before yielding to the event loop; default 64. */
  batchSize?: number;
  /** TCP tunables (buffer sizes, congestion control, timers…); the MTU comes from the device. */
  tcp?: TcpLayerOptions;
}

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
  /** Readiness waits (each one awaited FFI call). */
  waits: number;
}

const log = logger("stack");

/** Yields to the event loop for about 5 µs (setTimeout(0) would cost ~2 ms; see DENO-FFI-NOTES). */
function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A running user-space TCP/IP stack on one device. */
export class Stack {
  /** The IPv4 layer (ICMP included). */
  readonly iface: Ipv4Interface;
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
  };
  readonly #startedAt: number;
  readonly #services: RunningServices;
  #stopping = false;

  /** Creates the stack on `options.device` and starts its I/O loop. */
  constructor(options: StackOptions) {
    if (options.device.medium !== "ip") {
      throw new Error("Ethernet devices (TAP, libpcap) are not available yet: use a TUN device");
    }
    this.#device = options.device;
    this.#clock = options.clock ?? (() => performance.now());
    this.#batchSize = options.batchSize ?? 64;
    this.#startedAt = this.#clock();
    this.iface = new Ipv4Interface({ address: options.address, mtu: options.device.mtu });
    this.udp = new UdpLayer(this.iface, options.device.mtu);
    this.iface.register(IpProtocol.UDP, this.udp);
    this.tcp = new TcpLayer({ ...options.tcp, mtu: options.device.mtu });
    // Application calls (send, read, close) make output due: wake the loop so that it polls now.
    this.tcp.onPollRequested = () => this.kick();
    this.iface.register(IpProtocol.TCP, this.tcp);
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

  /** Opens a UDP port, like `Deno.listenDatagram`. */
  listenDatagram(options: { port: number }): DatagramEndpoint {
    return new DatagramEndpoint(
      { udp: this.udp, localAddress: (): Ipv4Address => this.iface.address.address, kick: () => this.kick() },
      options.port,
    );
  }

  /** Listens on a TCP port, like `Deno.listen`; iterate over the listener to accept connections. */
  listen(options: { port: number; backlog?: number }): TcpConnListener {
    const listener = this.tcp.listen(options.port, options.backlog);
    return new TcpConnListener(listener, formatIpv4(this.iface.address.address));
  }

  /**
   * Opens a TCP connection, like `Deno.connect`. Rejects with `Deno.errors.ConnectionRefused` (RST),
   * `Deno.errors.TimedOut` (no answer) or `TypeError` (bad address).
   */
  async connect(options: { hostname: string; port: number }): Promise<TcpConn> {
    const remote = parseIpv4(options.hostname);
    if (remote === null) throw new TypeError(`'${options.hostname}' is not an IPv4 address`);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new RangeError(`invalid TCP port ${options.port}`);
    }
    const connection = this.tcp.connect(this.iface.address.address, remote, options.port, this.#clock());
    const conn = new TcpConn(connection);
    this.kick();
    await conn.opened();
    return conn;
  }

  /** Asks the I/O loop to run now (after the application queued something to send). */
  kick(): void {
    this.#device.wake();
  }

  /** All counters: device, IPv4, ICMP, UDP, TCP, with drops by reason. */
  stats(): Record<string, unknown> {
    return {
      address: formatIpv4Cidr(this.iface.address),
      device: { name: this.#device.name, ...this.#counters },
      uptimeSeconds: Math.round((this.#clock() - this.#startedAt) / 100) / 10,
      ...this.iface.snapshot(),
      udp: this.udp.snapshot(),
      tcp: { connections: this.tcp.countByState(), ...this.tcp.stats, drops: { ...this.tcp.stats.drops } },
    };
  }

  /** Stops the loop, closes the device (a created TUN device disappears) and resolves when done. */
  async close(): Promise<void> {
    if (!this.#stopping) {
      // Reset what is still open so that peers learn at once; the loop's last poll sends the RSTs.
      for (const connection of this.tcp.connections()) connection.abort();
      this.#stopping = true;
      this.#device.wake();
    }
    await this.closed;
    await this.#services.close();
  }

  async #run(): Promise<void> {
    const device = this.#device;
    const counters = this.#counters;
    const out: Ipv4Sink = {
      offloads: device.offloads === true,
      sendIpv4(packet: Uint8Array, txFlags = 0, gsoSize = 0): void {
        if (device.send(packet, txFlags, gsoSize)) {
          counters.txPackets++;
          counters.txBytes += packet.length;
        } else {
          counters.txErrors++;
        }
      },
    };
    let now = this.#clock();
    const iface = this.iface;
    const onPacket = (packet: Uint8Array, flags = 0) => {
      counters.rxPackets++;
      counters.rxBytes += packet.length;
      iface.ingress(packet, now, out, flags);
    };
    try {
      // Yield once so the constructor returns before any packet is handled.
      await yieldNow();
      while (true) {
        if (this.#stopping) {
          iface.poll(this.#clock(), out); // flush what closing queued (RSTs)
          break;
        }
        now = this.#clock();
        const received = device.receive(onPacket, this.#batchSize);
        now = this.#clock();
        const deadline = iface.poll(now, out);
        if (received > 0) {
          // More may be ready: a read returning EAGAIN (~1 µs) is far cheaper than an awaited poll.
          await yieldNow();
          continue;
        }
        const timeout = deadline === null ? 1000 : Math.min(1000, Math.max(0, deadline - this.#clock()));
        if (timeout > 0) {
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

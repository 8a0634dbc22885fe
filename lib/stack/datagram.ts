/**
 * The UDP socket API of the stack, shaped like `Deno.DatagramConn`: receive, send, close, and async
 * iteration over received datagrams.
 *
 * @module
 */

import { formatIpv4, type Ipv4Address, parseIpv4 } from "../wire/ipv4_address.ts";
import { formatIpv6, parseIpv6 } from "../wire/ipv6_address.ts";
import type { UdpLayer, UdpReceived } from "../udp/layer.ts";

/** An IPv4 or IPv6 address and port, as in `Deno.NetAddr`. */
export interface NetAddr {
  /** Always `udp` or `tcp`. */
  transport: "udp" | "tcp";
  /** Dotted-quad IPv4 address, or an IPv6 address in RFC 5952 form (no brackets). */
  hostname: string;
  /** Port number. */
  port: number;
}

/** A datagram with its sender. */
export type ReceivedDatagram = [data: Uint8Array, remote: NetAddr];

/** Hooks of the stack a datagram endpoint needs. */
export interface DatagramHost {
  /** The UDP layer. */
  udp: UdpLayer;
  /** The stack's own address now. */
  localAddress(): Ipv4Address;
  /** Asks the I/O loop to run soon (queued datagrams wait for it). */
  kick(): void;
}

/** A bound UDP port of the stack. Datagrams beyond `maxQueued` unread ones are dropped and counted. */
export class DatagramEndpoint implements AsyncIterable<ReceivedDatagram> {
  /** The local address and port. */
  readonly addr: NetAddr;
  /** Datagrams dropped because the application did not read fast enough. */
  dropped = 0;
  readonly #host: DatagramHost;
  readonly #queue: ReceivedDatagram[] = [];
  readonly #waiters: { resolve: (d: ReceivedDatagram) => void; reject: (e: Error) => void }[] = [];
  readonly #maxQueued: number;
  #closed = false;

  /**
   * Binds `port` on the stack's UDP layer, for both families. With `hostname` (an IPv4 or IPv6 literal,
   * like `Deno.listenDatagram`'s), `0.0.0.0` takes IPv4 only, `::` both families (Linux's default dual-stack
   * socket), and a specific address only datagrams sent to it.
   */
  constructor(host: DatagramHost, port: number, maxQueued = 1024, hostname?: string) {
    this.#host = host;
    this.#maxQueued = maxQueued;
    const bound = hostname === undefined ? null : parseBoundAddress(hostname);
    host.udp.bind(port, (d) => {
      if (bound !== null && !accepts(bound, d)) {
        host.udp.countDrop("not-bound-address");
        return;
      }
      const datagram: ReceivedDatagram = [
        d.data.slice(),
        {
          transport: "udp",
          hostname: d.family === 6 ? formatIpv6(d.src6!) : formatIpv4(d.src),
          port: d.srcPort,
        },
      ];
      const waiter = this.#waiters.shift();
      if (waiter) waiter.resolve(datagram);
      else if (this.#queue.length < this.#maxQueued) this.#queue.push(datagram);
      else {
        this.dropped++;
        host.udp.countDrop("receive-queue-full");
      }
    });
    const shown = bound === null
      ? formatIpv4(host.localAddress())
      : bound.address === null
      ? (bound.family === 6 ? "::" : "0.0.0.0")
      : bound.family === 6
      ? formatIpv6(bound.address as Uint8Array)
      : formatIpv4(bound.address as number);
    this.addr = { transport: "udp", hostname: shown, port };
  }

  /** Waits for the next datagram; rejects once the endpoint is closed. */
  receive(): Promise<ReceivedDatagram> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(new Error("the datagram endpoint is closed"));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Queues `data` for `remote` (an IPv4 or IPv6 address); returns the number of bytes queued (0 when the
   * send queue was full, or, over IPv6, when the stack has no address to send from).
   */
  send(data: Uint8Array, remote: { hostname: string; port: number }): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("the datagram endpoint is closed"));
    const address = parseIpv4(remote.hostname);
    if (address === null) {
      const address6 = parseIpv6(remote.hostname.replace(/^\[(.*)\]$/, "$1"));
      if (address6 === null) {
        return Promise.reject(new TypeError(`'${remote.hostname}' is not an IPv4 or IPv6 address`));
      }
      try {
        const queued6 = this.#host.udp.enqueue6(null, this.addr.port, address6, remote.port, data);
        this.#host.kick();
        return Promise.resolve(queued6 ? data.length : 0);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const queued = this.#host.udp.enqueue(
      this.#host.localAddress(),
      this.addr.port,
      address,
      remote.port,
      data,
    );
    this.#host.kick();
    return Promise.resolve(queued ? data.length : 0);
  }

  /** Unbinds the port; pending receives reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.udp.unbind(this.addr.port);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new Error("the datagram endpoint is closed"));
  }

  /** Receives datagrams until the endpoint is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<ReceivedDatagram> {
    while (!this.#closed || this.#queue.length > 0) {
      try {
        yield await this.receive();
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }
}

/** A bound address: one family, and a specific address or any (`0.0.0.0`, `::`). */
interface BoundAddress {
  family: 4 | 6;
  /** The address, or `null` for any. */
  address: number | Uint8Array | null;
}

/** Parses a listening hostname; throws a `TypeError` for anything that is not an IP literal. */
function parseBoundAddress(hostname: string): BoundAddress {
  const v4 = parseIpv4(hostname);
  if (v4 !== null) return { family: 4, address: v4 === 0 ? null : v4 };
  const v6 = parseIpv6(hostname.replace(/^\[(.*)\]$/, "$1"));
  if (v6 === null) throw new TypeError(`'${hostname}' is not an IPv4 or IPv6 address`);
  return { family: 6, address: v6.every((b) => b === 0) ? null : v6 };
}

function accepts(bound: BoundAddress, d: UdpReceived): boolean {
  const family = d.family ?? 4;
  if (bound.address === null) return bound.family === 6 || family === 4;
  if (family !== bound.family) return false;
  if (family === 4) return d.dst === bound.address;
  const want = bound.address as Uint8Array;
  for (let i = 0; i < 16; i++) if (d.dst6![i] !== want[i]) return false;
  return true;
}

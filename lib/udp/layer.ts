/**
 * UDP (RFC 768) over the IPv4 and IPv6 layers, sans-I/O: demultiplexes datagrams of both families to bound
 * ports (a bound port receives both, like a dual-stack socket), answers closed ports with ICMP or ICMPv6
 * port unreachable, and sends what the application queued when polled.
 *
 * @module
 */

import type { Ipv4Address } from "../wire/ipv4_address.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import { UDP_HEADER_LENGTH, UdpDatagram, writeUdpHeader, writeUdpHeaderIpv6 } from "../wire/udp.ts";
import type {
  Ipv4Datagram,
  Ipv4Sink,
  Ipv6Datagram,
  Ipv6Services,
  Ipv6Sink,
  TransportProtocol,
  TransportProtocol6,
  UnreachableReporter,
} from "../iface/protocol.ts";
import { IPV6_HEADER_LENGTH, NextHeader, writeIpv6Header } from "../wire/ipv6.ts";
import { LayerCounters, type LayerStats } from "../iface/stats.ts";

/**
 * A received datagram as handed to a port's handler. The object and `data` are reused for the next
 * datagram: copy what must outlive the call.
 */
export interface UdpReceived {
  /** The IP version it came over (4 or 6); the IPv6 addresses are in `src6`/`dst6`. */
  family?: 4 | 6;
  /** IPv6 only: the sender's address (16 bytes, reused). */
  src6?: Uint8Array;
  /** IPv6 only: our address it was sent to (or a multicast group). */
  dst6?: Uint8Array;
  /** Sender's IPv4 address (0 over IPv6). */
  src: Ipv4Address;
  /** Sender's port. */
  srcPort: number;
  /** Our address it was sent to (ours, or a broadcast address). */
  dst: Ipv4Address;
  /** Our port. */
  dstPort: number;
  /** The datagram's data. */
  data: Uint8Array;
}

/**
 * Handles the datagrams of one bound port. `out` may be used to reply at once through
 * {@link UdpLayer.reply} (or {@link UdpLayer.sendNow} over IPv4, {@link UdpLayer.sendNow6} over IPv6).
 */
export type UdpHandler = (datagram: UdpReceived, now: number, out: Ipv4Sink & Ipv6Sink) => void;

/** Largest UDP payload in one IPv4 datagram. */
export const MAX_UDP_PAYLOAD = 65535 - IPV4_HEADER_LENGTH - UDP_HEADER_LENGTH;

/** Largest UDP payload in one IPv6 packet (the payload length excludes the fixed header, RFC 8200 §3). */
export const MAX_UDP6_PAYLOAD = 65535 - UDP_HEADER_LENGTH;

interface QueuedDatagram6 {
  src: Uint8Array;
  srcPort: number;
  dst: Uint8Array;
  dstPort: number;
  data: Uint8Array;
}

interface QueuedDatagram {
  src: Ipv4Address;
  srcPort: number;
  dst: Ipv4Address;
  dstPort: number;
  data: Uint8Array;
}

/** The UDP layer: a handler per bound port, and a bounded queue of datagrams to send. */
export class UdpLayer implements TransportProtocol, TransportProtocol6 {
  /** UDP counters (read them with {@link UdpLayer.stats}). */
  readonly #counters = new LayerCounters();
  readonly #handlers = new Map<number, UdpHandler>();
  readonly #view = new UdpDatagram();
  readonly #received: UdpReceived = {
    family: 4,
    src6: new Uint8Array(16),
    dst6: new Uint8Array(16),
    src: 0,
    srcPort: 0,
    dst: 0,
    dstPort: 0,
    data: new Uint8Array(0),
  };
  readonly #queue: QueuedDatagram[] = [];
  readonly #queue6: QueuedDatagram6[] = [];
  #ipv6: Ipv6Services | null = null;
  readonly #scratch = new Uint8Array(65536);
  readonly #scratch6 = new Uint8Array(65536 + IPV6_HEADER_LENGTH);
  readonly #unreachable: UnreachableReporter;
  readonly #maxQueued: number;
  #transitHandler: UdpHandler | null = null;

  /**
   * Creates the layer. `unreachable` sends ICMP for closed ports; `maxQueued` bounds the send queue.
   * Datagrams larger than the link MTU are fragmented by the IPv4 layer below.
   */
  constructor(unreachable: UnreachableReporter, options: { maxQueued?: number } = {}) {
    this.#unreachable = unreachable;
    this.#maxQueued = options.maxQueued ?? 1024;
  }

  /** The largest datagram payload: what fits one IPv4 datagram (RFC 768 over RFC 791). */
  get maxPayload(): number {
    return MAX_UDP_PAYLOAD;
  }

  /** Connects the layer to the IPv6 layer (ICMPv6 errors and source addresses). */
  attachIpv6(ipv6: Ipv6Services): void {
    this.#ipv6 = ipv6;
  }

  /** The source address towards an IPv6 destination, or `null` without IPv6 or a usable address. */
  sourceFor6(dst: Uint8Array): Uint8Array | null {
    return this.#ipv6?.sourceFor(dst) ?? null;
  }

  /** Binds `port` to `handler`; throws when the port is taken. */
  bind(port: number, handler: UdpHandler): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid UDP port ${port}`);
    if (this.#handlers.has(port)) throw new Error(`UDP port ${port} is already in use`);
    this.#handlers.set(port, handler);
  }

  /**
   * Forwarding mode: `handler` receives every datagram addressed to another host (`Ipv4Datagram.transit`),
   * whatever its port; `dst`/`dstPort` of what it receives name the host the application meant. `null`
   * removes it (transit datagrams are then dropped and counted).
   */
  bindTransit(handler: UdpHandler | null): void {
    this.#transitHandler = handler;
  }

  /** Releases `port`. */
  unbind(port: number): void {
    this.#handlers.delete(port);
  }

  /** Whether `port` is bound. */
  isBound(port: number): boolean {
    return this.#handlers.has(port);
  }

  /** A free port in the dynamic range (RFC 6335), or throws when none is left. */
  ephemeralPort(): number {
    const start = 49152 + Math.floor(Math.random() * 16384);
    for (let i = 0; i < 16384; i++) {
      const port = 49152 + ((start - 49152 + i) % 16384);
      if (!this.#handlers.has(port)) return port;
    }
    throw new Error("no free UDP port is left");
  }

  /** Handles one datagram addressed to us. */
  ingress(d: Ipv4Datagram, now: number, out: Ipv4Sink): void {
    const udp = this.#view.wrap(d.bytes.subarray(d.payloadOffset, d.payloadEnd));
    const error = udp.check(d.src, d.dst, !d.checksumTrusted);
    if (error !== null) {
      this.#counters.drops.count(error);
      return;
    }
    if (d.transit === true) {
      const transit = this.#transitHandler;
      if (transit === null) {
        this.#counters.drops.count("no-transit-handler");
        return;
      }
      this.#deliver(d, udp, transit, now, out);
      return;
    }
    const handler = this.#handlers.get(udp.dstPort);
    if (handler === undefined) {
      // A drop, not received too: every datagram in ends in exactly one counter.
      this.#counters.drops.count("port-closed");
      this.#unreachable.portUnreachable(d, now, out);
      return;
    }
    this.#deliver(d, udp, handler, now, out);
  }

  /** Hands a datagram to its handler, counting it received (only now: every datagram in ends once). */
  #deliver(d: Ipv4Datagram, udp: UdpDatagram, handler: UdpHandler, now: number, out: Ipv4Sink): void {
    this.#counters.rxPackets++;
    this.#counters.rxBytes += udp.length;
    const r = this.#received;
    r.family = 4;
    r.src = d.src;
    r.srcPort = udp.srcPort;
    r.dst = d.dst;
    r.dstPort = udp.dstPort;
    r.data = udp.bytes.subarray(UDP_HEADER_LENGTH, udp.length);
    handler(r, now, out as Ipv4Sink & Ipv6Sink);
  }

  /** Handles one datagram that came over IPv6 (RFC 8200 §8.1: the checksum is mandatory). */
  ingress6(d: Ipv6Datagram, now: number, out: Ipv6Sink): void {
    const udp = this.#view.wrap(d.bytes.subarray(d.payloadOffset, d.payloadEnd));
    const error = udp.checkIpv6(d.bytes, !d.checksumTrusted);
    if (error !== null) {
      this.#counters.drops.count(error);
      return;
    }
    const handler = this.#handlers.get(udp.dstPort);
    if (handler === undefined) {
      // A drop, not received too (as over IPv4): every datagram in ends in exactly one counter.
      this.#counters.drops.count("port-closed");
      if (!d.multicast) this.#ipv6?.portUnreachable6(d, now, out);
      return;
    }
    this.#counters.rxPackets++;
    this.#counters.rxBytes += udp.length;
    const r = this.#received;
    r.family = 6;
    r.src = 0;
    r.dst = 0;
    r.src6!.set(d.src);
    r.dst6!.set(d.dst);
    r.srcPort = udp.srcPort;
    r.dstPort = udp.dstPort;
    r.data = udp.bytes.subarray(UDP_HEADER_LENGTH, udp.length);
    handler(r, now, out as Ipv4Sink & Ipv6Sink);
  }

  /**
   * Replies to a received datagram at once with `data`, over its family, from the address it was sent to
   * (or, for a broadcast or multicast one, from `source4` / the IPv6 layer's choice).
   */
  reply(out: Ipv4Sink & Ipv6Sink, d: UdpReceived, data: Uint8Array, source4: Ipv4Address = d.dst): void {
    if (d.family === 6) {
      const source = d.dst6![0] === 0xff ? this.sourceFor6(d.src6!) : d.dst6!;
      if (source === null) {
        this.#counters.drops.count("no-source-address");
        return;
      }
      this.sendNow6(out, source, d.dstPort, d.src6!, d.srcPort, data);
      return;
    }
    this.sendNow(out, source4, d.dstPort, d.src, d.srcPort, data);
  }
  /**
   * Queues a datagram to send at the next poll (the data is copied). Returns false, and counts a drop,
   * when the queue is full; throws when the payload does not fit the MTU.
   */
  enqueue(src: Ipv4Address, srcPort: number, dst: Ipv4Address, dstPort: number, data: Uint8Array): boolean {
    if (data.length > this.maxPayload) {
      throw new RangeError(
        `a UDP payload of ${data.length} bytes exceeds the ${this.maxPayload} bytes an IPv4 datagram holds`,
      );
    }
    if (this.#queue.length >= this.#maxQueued) {
      this.#counters.drops.count("send-queue-full");
      return false;
    }
    this.#queue.push({ src, srcPort, dst, dstPort, data: data.slice() });
    return true;
  }

  /**
   * Queues a datagram to send over IPv6 at the next poll (the data is copied); `src` null picks the source
   * address at send time. Returns false, and counts a drop, when the queue is full; throws when the payload
   * exceeds what an IPv6 packet holds.
   */
  enqueue6(
    src: Uint8Array | null,
    srcPort: number,
    dst: Uint8Array,
    dstPort: number,
    data: Uint8Array,
  ): boolean {
    if (data.length > MAX_UDP6_PAYLOAD) {
      throw new RangeError(
        `a UDP payload of ${data.length} bytes exceeds the ${MAX_UDP6_PAYLOAD} bytes IPv6 holds`,
      );
    }
    if (this.#queue.length + this.#queue6.length >= this.#maxQueued) {
      this.#counters.drops.count("send-queue-full");
      return false;
    }
    const source = src ?? this.sourceFor6(dst);
    if (source === null) {
      this.#counters.drops.count("no-source-address");
      return false;
    }
    this.#queue6.push({ src: source.slice(), srcPort, dst: dst.slice(), dstPort, data: data.slice() });
    return true;
  }

  /** Number of datagrams waiting to be sent. */
  get queued(): number {
    return this.#queue.length + this.#queue6.length;
  }

  /** Sends one datagram over IPv6 at once (from inside a handler, or from poll). */
  sendNow6(
    out: Ipv6Sink,
    src: Uint8Array,
    srcPort: number,
    dst: Uint8Array,
    dstPort: number,
    data: Uint8Array,
  ): void {
    if (data.length > MAX_UDP6_PAYLOAD) {
      this.#counters.drops.count("too-big");
      return;
    }
    const buf = this.#scratch6;
    const udpLength = UDP_HEADER_LENGTH + data.length;
    buf.set(data, IPV6_HEADER_LENGTH + UDP_HEADER_LENGTH);
    writeIpv6Header(buf, 0, src, dst, NextHeader.UDP, udpLength);
    writeUdpHeaderIpv6(buf, IPV6_HEADER_LENGTH, 0, srcPort, dstPort, data.length);
    this.#counters.txPackets++;
    this.#counters.txBytes += udpLength;
    out.sendIpv6(buf.subarray(0, IPV6_HEADER_LENGTH + udpLength));
  }

  /** Sends everything queued for IPv6. */
  poll6(_now: number, out: Ipv6Sink): number | null {
    if (this.#queue6.length === 0) return null;
    for (const q of this.#queue6) this.sendNow6(out, q.src, q.srcPort, q.dst, q.dstPort, q.data);
    this.#queue6.length = 0;
    return null;
  }

  /** Sends one datagram at once (from inside a handler, or from poll). */
  sendNow(
    out: Ipv4Sink,
    src: Ipv4Address,
    srcPort: number,
    dst: Ipv4Address,
    dstPort: number,
    data: Uint8Array,
  ): void {
    if (data.length > this.maxPayload) {
      this.#counters.drops.count("too-big");
      return;
    }
    const buf = this.#scratch;
    const udpLength = UDP_HEADER_LENGTH + data.length;
    buf.set(data, IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH);
    writeUdpHeader(buf, IPV4_HEADER_LENGTH, src, dst, srcPort, dstPort, data.length);
    writeIpv4Header(buf, 0, src, dst, IpProtocol.UDP, udpLength);
    this.#counters.txPackets++;
    this.#counters.txBytes += udpLength;
    out.sendIpv4(buf.subarray(0, IPV4_HEADER_LENGTH + udpLength));
  }

  /** Sends everything queued. UDP keeps no timers: always returns `null`. */
  poll(_now: number, out: Ipv4Sink): number | null {
    if (this.#queue.length === 0) return null;
    for (const q of this.#queue) this.sendNow(out, q.src, q.srcPort, q.dst, q.dstPort, q.data);
    this.#queue.length = 0;
    return null;
  }

  /**
   * Counts a datagram dropped above this layer under `reason` (e.g. an application's full receive queue),
   * so that every UDP drop shows in one place.
   */
  countDrop(reason: string): void {
    this.#counters.drops.count(reason);
  }

  /** UDP counters as a JSON-able object. */
  stats(): LayerStats {
    return this.#counters.stats();
  }
}

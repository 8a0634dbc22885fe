/**
 * UDP (RFC 768) over the IPv4 layer, sans-I/O: demultiplexes datagrams to bound ports, answers closed
 * ports with ICMP port unreachable, and sends what the application queued when polled.
 *
 * @module
 */

import type { Ipv4Address } from "../wire/ipv4_address.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import { UDP_HEADER_LENGTH, UdpDatagram, writeUdpHeader } from "../wire/udp.ts";
import type { Ipv4Datagram, Ipv4Sink, TransportProtocol, UnreachableReporter } from "../iface/protocol.ts";
import { LayerCounters } from "../iface/stats.ts";

/**
 * A received datagram as handed to a port's handler. The object and `data` are reused for the next
 * datagram: copy what must outlive the call.
 */
export interface UdpReceived {
  /** Sender's address. */
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

/** Handles the datagrams of one bound port. `out` may be used to reply at once through {@link UdpLayer.sendNow}. */
export type UdpHandler = (datagram: UdpReceived, now: number, out: Ipv4Sink) => void;

/** Largest UDP payload in one IPv4 datagram. */
export const MAX_UDP_PAYLOAD = 65535 - IPV4_HEADER_LENGTH - UDP_HEADER_LENGTH;

interface QueuedDatagram {
  src: Ipv4Address;
  srcPort: number;
  dst: Ipv4Address;
  dstPort: number;
  data: Uint8Array;
}

/** The UDP layer: a handler per bound port, and a bounded queue of datagrams to send. */
export class UdpLayer implements TransportProtocol {
  /** UDP counters. */
  readonly counters = new LayerCounters();
  readonly #handlers = new Map<number, UdpHandler>();
  readonly #view = new UdpDatagram();
  readonly #received: UdpReceived = { src: 0, srcPort: 0, dst: 0, dstPort: 0, data: new Uint8Array(0) };
  readonly #queue: QueuedDatagram[] = [];
  readonly #scratch = new Uint8Array(65536);
  readonly #unreachable: UnreachableReporter;
  readonly #maxQueued: number;

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

  /** Binds `port` to `handler`; throws when the port is taken. */
  bind(port: number, handler: UdpHandler): void {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`invalid UDP port ${port}`);
    if (this.#handlers.has(port)) throw new Error(`UDP port ${port} is already in use`);
    this.#handlers.set(port, handler);
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
      this.counters.drops.count(error);
      return;
    }
    this.counters.rxPackets++;
    this.counters.rxBytes += udp.length;
    const handler = this.#handlers.get(udp.dstPort);
    if (handler === undefined) {
      this.counters.drops.count("port-closed");
      this.#unreachable.portUnreachable(d, now, out);
      return;
    }
    const r = this.#received;
    r.src = d.src;
    r.srcPort = udp.srcPort;
    r.dst = d.dst;
    r.dstPort = udp.dstPort;
    r.data = udp.bytes.subarray(UDP_HEADER_LENGTH, udp.length);
    handler(r, now, out);
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
      this.counters.drops.count("send-queue-full");
      return false;
    }
    this.#queue.push({ src, srcPort, dst, dstPort, data: data.slice() });
    return true;
  }

  /** Number of datagrams waiting to be sent. */
  get queued(): number {
    return this.#queue.length;
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
      this.counters.drops.count("too-big");
      return;
    }
    const buf = this.#scratch;
    const udpLength = UDP_HEADER_LENGTH + data.length;
    buf.set(data, IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH);
    writeUdpHeader(buf, IPV4_HEADER_LENGTH, src, dst, srcPort, dstPort, data.length);
    writeIpv4Header(buf, 0, src, dst, IpProtocol.UDP, udpLength);
    this.counters.txPackets++;
    this.counters.txBytes += udpLength;
    out.sendIpv4(buf.subarray(0, IPV4_HEADER_LENGTH + udpLength));
  }

  /** Sends everything queued. UDP keeps no timers: always returns `null`. */
  poll(_now: number, out: Ipv4Sink): number | null {
    if (this.#queue.length === 0) return null;
    for (const q of this.#queue) this.sendNow(out, q.src, q.srcPort, q.dst, q.dstPort, q.data);
    this.#queue.length = 0;
    return null;
  }

  /** UDP counters as a plain object. */
  snapshot(): Record<string, unknown> {
    return this.counters.snapshot();
  }
}

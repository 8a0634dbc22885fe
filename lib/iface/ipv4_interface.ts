/**
 * The IPv4 layer of the stack, sans-I/O: validates received packets, answers ICMP echo, dispatches to the
 * transport protocols, and sends ICMP errors on their behalf. Drops are counted under named reasons;
 * nothing thrown escapes ingress.
 *
 * @module
 */

import { broadcastOf, type Ipv4Address, type Ipv4Cidr } from "../wire/ipv4_address.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, Ipv4Packet, writeIpv4Header } from "../wire/ipv4.ts";
import {
  Icmpv4Message,
  Icmpv4Type,
  UnreachableCode,
  writeIcmpv4Echo,
  writeIcmpv4Unreachable,
} from "../wire/icmpv4.ts";
import {
  emptyIpv4Datagram,
  type Ipv4Datagram,
  type Ipv4Sink,
  type TransportProtocol,
  type UnreachableReporter,
} from "./protocol.ts";
import { DropCounters, LayerCounters, type LayerStats } from "./stats.ts";
import { TokenBucket } from "./rate_limiter.ts";
import { logger } from "../log.ts";
import { completePartialChecksum, completeTxChecksum, RxFlags, type TxOffload } from "../wire/offload.ts";
import { fragmentIpv4, Ipv4Reassembler, type ReassemblyOptions } from "./ipv4_reassembly.ts";

/** Options of {@link Ipv4Interface}. */
export interface Ipv4InterfaceOptions {
  /** The stack's own address and subnet. */
  address: Ipv4Cidr;
  /** Link MTU: the largest IPv4 packet sent. */
  mtu: number;
  /** ICMP errors allowed per second (token bucket rate); default 100. */
  icmpErrorsPerSecond?: number;
  /** ICMP error burst; default 50. */
  icmpErrorBurst?: number;
  /** Bounds and timeout of fragment reassembly. */
  reassembly?: ReassemblyOptions;
}

/** ICMP counters beyond the common ones. */
export class IcmpCounters extends LayerCounters {
  /** Echo requests answered. */
  echoReplies = 0;
  /** Destination unreachable messages sent. */
  unreachableSent = 0;
  /** ICMP errors not sent because of the rate limit. */
  errorsRateLimited = 0;

  /** The counters as a plain object for JSON. */
  override stats(): LayerStats & Record<string, number | Record<string, number>> {
    return {
      ...super.stats(),
      echoReplies: this.echoReplies,
      unreachableSent: this.unreachableSent,
      errorsRateLimited: this.errorsRateLimited,
    };
  }
}

/** RFC 1812 §4.3.2.3: an ICMP error holds at most 576 bytes of IP packet in all. */
const MAX_ICMP_ERROR_QUOTE = 576 - IPV4_HEADER_LENGTH - 8;

const log = logger("ipv4");

/**
 * Counts what protocols send and forwards it to the device sink of the current call; one long-lived
 * object, retargeted per call, so no per-packet allocation.
 */
class CountingSink implements Ipv4Sink {
  target: Ipv4Sink | null = null;
  readonly #fragment: Uint8Array;
  readonly #emitFragment = (fragment: Uint8Array) => this.#forward(fragment, null);
  constructor(private readonly owner: Ipv4Interface) {
    this.#fragment = new Uint8Array(owner.mtu);
  }
  get offloads(): boolean {
    return this.target?.offloads === true;
  }
  sendIpv4(packet: Uint8Array, offload: TxOffload | null = null): void {
    if (packet.length <= this.owner.mtu || (offload !== null && offload.gsoSize > 0)) {
      this.#forward(packet, offload);
      return;
    }
    // Larger than the link: fragment (RFC 791 §3.2). A partial checksum must be whole before splitting.
    let whole = packet;
    if (offload !== null && offload.checksumPartial) {
      whole = packet.slice();
      completeTxChecksum(whole, offload);
    }
    this.owner.ipv4.fragmentsOut += fragmentIpv4(
      whole,
      this.owner.mtu,
      this.owner.nextIdentification(),
      this.#fragment,
      this.#emitFragment,
    );
  }
  #forward(packet: Uint8Array, offload: TxOffload | null): void {
    this.owner.ipv4.txPackets++;
    this.owner.ipv4.txBytes += packet.length;
    this.target!.sendIpv4(packet, offload);
  }
}

/** IPv4 counters beyond the common ones. */
export class Ipv4Counters extends LayerCounters {
  /** Fragments received (valid, for us). */
  fragmentsIn = 0;
  /** Datagrams reassembled from fragments. */
  reassembled = 0;
  /** Fragments sent for datagrams larger than the MTU. */
  fragmentsOut = 0;

  /** The counters as a plain object for JSON. */
  override stats(): LayerStats & Record<string, number | Record<string, number>> {
    return {
      ...super.stats(),
      fragmentsIn: this.fragmentsIn,
      reassembled: this.reassembled,
      fragmentsOut: this.fragmentsOut,
    };
  }
}

/** The IPv4 layer: one address, ICMP built in, transport protocols registered by number. */
export class Ipv4Interface implements UnreachableReporter {
  /** IPv4 counters. */
  readonly ipv4 = new Ipv4Counters();
  /** ICMP counters. */
  readonly icmp = new IcmpCounters();
  readonly #protocols = new Map<number, TransportProtocol>();
  readonly #view = new Ipv4Packet();
  readonly #icmpView = new Icmpv4Message();
  readonly #datagram: Ipv4Datagram = emptyIpv4Datagram();
  readonly #scratch = new Uint8Array(65536);
  readonly #sink: CountingSink;
  readonly #reassembler: Ipv4Reassembler;
  readonly #errorLimiter: TokenBucket;
  #address: Ipv4Cidr;
  #broadcast: Ipv4Address;
  readonly #mtu: number;
  #identification = 0;
  /**
   * Forwarding mode: unicast TCP and UDP addressed to any host is taken in (marked `transit`) and handed
   * to the transports, whose transit handlers terminate it; ICMP echo to other hosts goes to
   * {@link Ipv4Interface.onTransitEcho} when set. Off by default: a host drops what is not addressed to
   * it (RFC 1122 §3.2.1.3).
   */
  acceptTransit = false;
  /**
   * Forwarding mode: called with each valid ICMP echo request addressed to another host (the datagram is
   * reused after the call: copy what must outlive it). Unset: such requests are dropped and counted.
   */
  onTransitEcho: ((datagram: Ipv4Datagram, now: number) => void) | null = null;
  /** Echo replies queued by {@link queueEchoReply}, sent at the next poll. */
  readonly #echoReplies: { src: Ipv4Address; dst: Ipv4Address; id: number; seq: number; data: Uint8Array }[] =
    [];

  /** Creates the layer for one address. */
  constructor(options: Ipv4InterfaceOptions) {
    this.#address = options.address;
    this.#broadcast = broadcastOf(options.address);
    this.#mtu = options.mtu;
    this.#sink = new CountingSink(this);
    this.#reassembler = new Ipv4Reassembler(this.ipv4.drops, options.reassembly);
    this.#errorLimiter = new TokenBucket(options.icmpErrorsPerSecond ?? 100, options.icmpErrorBurst ?? 50);
  }

  /** The stack's address and prefix. */
  get address(): Ipv4Cidr {
    return this.#address;
  }

  /** Changes the stack's address (e.g. when a DHCP lease is obtained). */
  setAddress(address: Ipv4Cidr): void {
    this.#address = address;
    this.#broadcast = broadcastOf(address);
  }

  /** The link MTU. */
  get mtu(): number {
    return this.#mtu;
  }

  /** Registers the handler of an IP protocol number (TCP, UDP). */
  register(protocol: number, handler: TransportProtocol): void {
    this.#protocols.set(protocol, handler);
  }

  /**
   * Handles one received packet (an IPv4 packet without link header); replies go to `out`.
   * `rxFlags` are the device's `RxFlags` for the packet.
   */
  ingress(packet: Uint8Array, now: number, out: Ipv4Sink, rxFlags = 0): void {
    const ip = this.#view.wrap(packet);
    const error = ip.check();
    if (error !== null) {
      // IPv6 never gets here: the stack hands it to the IPv6 layer by version.
      this.#drop(this.ipv4.drops, error, packet);
      return;
    }
    const dst = ip.dst;
    const isBroadcast = dst === 0xffffffff || dst === this.#broadcast;
    const transit = dst !== this.#address.address && !isBroadcast;
    if (transit && (!this.acceptTransit || dst === 0 || (dst >>> 28) >= 0xe)) {
      this.ipv4.drops.count("not-ours");
      return;
    }
    if (ip.isFragment) {
      this.ipv4.fragmentsIn++;
      const whole = this.#reassembler.add(ip, now);
      if (whole === null) return;
      this.ipv4.reassembled++;
      // The whole datagram goes through the checks again; its transport checksum is verified in full.
      this.ingress(whole, now, out);
      return;
    }
    const protocol = ip.protocol;
    const handler = protocol === IpProtocol.ICMP ? undefined : this.#protocols.get(protocol);
    const unsupported = protocol !== IpProtocol.ICMP &&
      (handler === undefined || (isBroadcast && protocol !== IpProtocol.UDP));
    // Counted as a drop, not as received: every packet in ends in exactly one counter.
    if (!unsupported) {
      this.ipv4.rxPackets++;
      this.ipv4.rxBytes += ip.totalLength;
    }
    const d = this.#datagram;
    d.src = ip.src;
    d.dst = dst;
    d.protocol = ip.protocol;
    d.ttl = ip.ttl;
    d.bytes = packet;
    d.payloadOffset = ip.headerLength;
    d.payloadEnd = ip.totalLength;
    d.checksumTrusted = (rxFlags & RxFlags.CHECKSUM_TRUSTED) !== 0;
    d.checksumPartial = (rxFlags & RxFlags.CHECKSUM_PARTIAL) !== 0;
    d.transit = transit;
    this.#sink.target = out;
    if (transit && d.protocol !== IpProtocol.TCP && d.protocol !== IpProtocol.UDP) {
      this.#transitOther(d, now);
      return;
    }
    if (d.protocol === IpProtocol.ICMP) {
      if (isBroadcast) {
        // Linux ignores broadcast echo by default (icmp_echo_ignore_broadcasts); so do we.
        this.icmp.drops.count("broadcast");
        return;
      }
      this.#icmpIngress(d);
      return;
    }
    if (unsupported || handler === undefined) {
      this.ipv4.drops.count("unsupported-protocol");
      if (!isBroadcast) this.#sendUnreachable(d, UnreachableCode.PROTOCOL, now, this.#sink);
      return;
    }
    try {
      handler.ingress(d, now, this.#sink);
    } catch (cause) {
      // A bug in a protocol must not take the stack down with one bad packet; it is counted and logged.
      this.ipv4.drops.count("protocol-error");
      log.error("protocol {protocol} failed on a packet: {cause}", { protocol: d.protocol, cause });
    }
  }

  /**
   * Forwarding mode: queues an ICMP echo reply from `src` (the host that answered a relayed echo) to `dst`,
   * sent at the next {@link poll}; the data is copied. Returns false (and counts a drop) when 64 are
   * queued already.
   */
  queueEchoReply(
    src: Ipv4Address,
    dst: Ipv4Address,
    identifier: number,
    sequence: number,
    data: Uint8Array,
  ): boolean {
    if (this.#echoReplies.length >= 64) {
      this.icmp.drops.count("echo-reply-queue-full");
      return false;
    }
    this.#echoReplies.push({ src, dst, id: identifier, seq: sequence, data: data.slice() });
    return true;
  }

  /** Polls every protocol (and expires stale reassemblies); returns the earliest deadline or `null`. */
  poll(now: number, out: Ipv4Sink): number | null {
    this.#sink.target = out;
    if (this.#echoReplies.length > 0) {
      const buf = this.#scratch;
      for (const r of this.#echoReplies) {
        const length = writeIcmpv4Echo(buf, IPV4_HEADER_LENGTH, Icmpv4Type.ECHO_REPLY, r.id, r.seq, r.data);
        writeIpv4Header(buf, 0, r.src, r.dst, IpProtocol.ICMP, length);
        this.icmp.txPackets++;
        this.icmp.txBytes += length;
        this.#sink.sendIpv4(buf.subarray(0, IPV4_HEADER_LENGTH + length));
      }
      this.#echoReplies.length = 0;
    }
    let next: number | null = this.#reassembler.poll(now);
    for (const handler of this.#protocols.values()) {
      const deadline = handler.poll(now, this.#sink);
      if (deadline !== null && (next === null || deadline < next)) next = deadline;
    }
    return next;
  }

  /** Sends ICMP port unreachable for `datagram` (rate-limited; never for broadcasts). */
  portUnreachable(datagram: Ipv4Datagram, now: number, out: Ipv4Sink): void {
    if (datagram.dst !== this.#address.address) return;
    this.#sendUnreachable(datagram, UnreachableCode.PORT, now, out);
  }

  /** The next identification value for packets sent without DF. */
  nextIdentification(): number {
    this.#identification = (this.#identification + 1) & 0xffff;
    return this.#identification;
  }

  /** Counters of the IPv4 and ICMP layers. */
  stats(): Record<string, unknown> {
    return {
      ipv4: this.ipv4.stats(),
      icmp: this.icmp.stats(),
    };
  }

  #drop(drops: DropCounters, reason: string, packet: Uint8Array): void {
    drops.count(reason);
    log.debug("dropped a packet of {length} bytes: {reason}", { length: packet.length, reason });
  }

  /** Transit traffic other than TCP and UDP: echo requests to the hook, the rest dropped and counted. */
  #transitOther(d: Ipv4Datagram, now: number): void {
    if (d.protocol === IpProtocol.ICMP && this.onTransitEcho !== null) {
      const message = this.#icmpView.wrap(d.bytes.subarray(d.payloadOffset, d.payloadEnd));
      if (message.check() === null && message.type === Icmpv4Type.ECHO_REQUEST) {
        this.icmp.rxPackets++;
        this.icmp.rxBytes += message.bytes.length;
        this.onTransitEcho(d, now);
        return;
      }
    }
    this.ipv4.drops.count(d.protocol === IpProtocol.ICMP ? "transit-icmp" : "transit-protocol");
  }

  /**
   * Sends an ICMP destination unreachable with `code` about `datagram` (rate-limited), from the address
   * it was sent to when it was transit (the relay answers for the host it stands in for), else from ours.
   */
  sendUnreachable(datagram: Ipv4Datagram, code: number, now: number, out: Ipv4Sink): void {
    this.#sendUnreachable(datagram, code, now, out);
  }

  #icmpIngress(d: Ipv4Datagram): void {
    const message = this.#icmpView.wrap(d.bytes.subarray(d.payloadOffset, d.payloadEnd));
    const error = message.check();
    if (error !== null) {
      this.#drop(this.icmp.drops, error, d.bytes);
      return;
    }
    if (message.type !== Icmpv4Type.ECHO_REQUEST) {
      // Errors and replies addressed to us have no consumer yet; count them by type (as drops only, so
      // that every message in ends in exactly one counter).
      this.icmp.drops.count(`unhandled-type-${message.type}`);
      return;
    }
    this.icmp.rxPackets++;
    this.icmp.rxBytes += message.bytes.length;
    const buf = this.#scratch;
    const length = writeIcmpv4Echo(
      buf,
      IPV4_HEADER_LENGTH,
      Icmpv4Type.ECHO_REPLY,
      message.identifier,
      message.sequence,
      message.bytes.subarray(8),
    );
    writeIpv4Header(buf, 0, d.dst, d.src, IpProtocol.ICMP, length);
    this.icmp.txPackets++;
    this.icmp.txBytes += length;
    this.icmp.echoReplies++;
    this.#sink.sendIpv4(buf.subarray(0, IPV4_HEADER_LENGTH + length));
  }

  #sendUnreachable(d: Ipv4Datagram, code: number, now: number, out: Ipv4Sink): void {
    // RFC 1122 §3.2.2: no ICMP error about a datagram from a broadcast, multicast or zero source.
    if (d.src === 0 || d.src === 0xffffffff || d.src === this.#broadcast || (d.src >>> 28) === 0xe) return;
    if (!this.#errorLimiter.take(now)) {
      this.icmp.errorsRateLimited++;
      return;
    }
    const quoteLength = Math.min(d.payloadEnd, MAX_ICMP_ERROR_QUOTE, this.#mtu - IPV4_HEADER_LENGTH - 8);
    let quoted = d.bytes.subarray(0, quoteLength);
    if (d.checksumPartial) {
      // RFC 792: the quote is the datagram as sent. The sender's kernel left its checksum to offload (the
      // wire would have carried the whole one), so complete it, over the whole datagram, in a copy. Rare and
      // rate-limited: the copy costs nothing that matters.
      const whole = d.bytes.slice(0, d.payloadEnd);
      if (completePartialChecksum(whole)) quoted = whole.subarray(0, quoteLength);
    }
    const buf = this.#scratch;
    const length = writeIcmpv4Unreachable(buf, IPV4_HEADER_LENGTH, code, quoted);
    writeIpv4Header(buf, 0, d.transit ? d.dst : this.#address.address, d.src, IpProtocol.ICMP, length);
    this.icmp.txPackets++;
    this.icmp.txBytes += length;
    this.icmp.unreachableSent++;
    out.sendIpv4(buf.subarray(0, IPV4_HEADER_LENGTH + length));
  }
}

/**
 * The IPv6 layer of the stack, sans-I/O: validates received packets and walks their extension headers,
 * reassembles fragments, answers echo (ping -6), hands NDP to the link layer above it (Ethernet) and the
 * transports their datagrams, and sends ICMPv6 errors on their behalf, rate-limited (RFC 4443 §2.4(f)) and
 * never where RFC 4443 §2.4(e) forbids. It holds the addresses, with their states (tentative, preferred,
 * deprecated) and lifetimes, and the multicast groups joined. Drops are counted under named reasons;
 * nothing thrown escapes ingress.
 *
 * @module
 */

import {
  IPV6_DST_OFFSET,
  IPV6_HEADER_LENGTH,
  IPV6_MIN_MTU,
  Ipv6Packet,
  NextHeader,
  writeIpv6Header,
} from "../wire/ipv6.ts";
import { Ipv6HeaderChain, ParameterProblemCode } from "../wire/ipv6_ext.ts";
import {
  ALL_NODES,
  formatIpv6,
  inPrefixAt,
  type Ipv6Address,
  type Ipv6Cidr,
  ipv6Equals,
  ipv6EqualsAt,
  isLinkLocalAt,
  isMulticastAt,
  isUnspecifiedAt,
  solicitedNodeGroup,
} from "../wire/ipv6_address.ts";
import {
  finishIcmpv6Checksum,
  ICMPV6_HEADER_LENGTH,
  Icmpv6Message,
  Icmpv6Type,
  MAX_ICMPV6_ERROR_QUOTE,
  TimeExceededCode,
  Unreachable6Code,
  writeIcmpv6Echo,
  writeIcmpv6Error,
} from "../wire/icmpv6.ts";
import {
  emptyIpv6Datagram,
  type Ipv6Datagram,
  type Ipv6Services,
  type Ipv6Sink,
  type TransportProtocol6,
} from "./protocol.ts";
import { LayerCounters, type LayerStats } from "./stats.ts";
import { TokenBucket } from "./rate_limiter.ts";
import { fragmentIpv6, Ipv6Reassembler } from "./ipv6_reassembly.ts";
import type { ReassemblyOptions } from "./ipv4_reassembly.ts";
import { completeTxChecksum, GsoType, RxFlags, type TxOffload } from "../wire/offload.ts";
import { logger } from "../log.ts";

/** The state of an address (RFC 4862 §2): tentative until DAD passed, deprecated after its preferred lifetime. */
export type Ipv6AddressState = "tentative" | "preferred" | "deprecated";

/** Where an address came from. */
export type Ipv6AddressOrigin = "static" | "link-local" | "slaac";

/** One address of the interface. */
export interface Ipv6AddressEntry {
  /** The address. */
  address: Ipv6Address;
  /** Its prefix length (on-link prefix). */
  prefixLength: number;
  /** Its state. */
  state: Ipv6AddressState;
  /** Where it came from. */
  origin: Ipv6AddressOrigin;
  /** When it becomes deprecated (ms, same clock as `now`); `Infinity` for never. */
  preferredUntil: number;
  /** When it is removed; `Infinity` for never. */
  validUntil: number;
}

/** Options of {@link Ipv6Interface}. */
export interface Ipv6InterfaceOptions {
  /** Link MTU (at least 1280, RFC 8200 §5). */
  mtu: number;
  /** Static addresses, usable at once (no DAD: on TUN there is no one to ask; on Ethernet see `dad`). */
  addresses?: readonly Ipv6Cidr[];
  /** ICMPv6 errors allowed per second (token bucket rate); default 100. */
  icmpErrorsPerSecond?: number;
  /** ICMPv6 error burst; default 50. */
  icmpErrorBurst?: number;
  /** Bounds and timeout of fragment reassembly (timeout default 60 s, RFC 8200 §4.5). */
  reassembly?: ReassemblyOptions;
}

/** ICMPv6 counters beyond the common ones. */
export class Icmp6Counters extends LayerCounters {
  /** Echo requests answered. */
  echoReplies = 0;
  /** Error messages sent (all types). */
  errorsSent = 0;
  /** Errors not sent because of the rate limit. */
  errorsRateLimited = 0;
  /** Errors not sent because RFC 4443 §2.4(e) forbids them (about errors, multicast, bad sources). */
  errorsSuppressed = 0;

  /** The counters as a plain object for JSON. */
  override stats(): LayerStats & Record<string, number | Record<string, number>> {
    return {
      ...super.stats(),
      echoReplies: this.echoReplies,
      errorsSent: this.errorsSent,
      errorsRateLimited: this.errorsRateLimited,
      errorsSuppressed: this.errorsSuppressed,
    };
  }
}

/** IPv6 counters beyond the common ones. */
export class Ipv6Counters extends LayerCounters {
  /** Fragments received (valid, for us). */
  fragmentsIn = 0;
  /** Packets reassembled from fragments. */
  reassembled = 0;
  /** Atomic fragments received and processed in isolation (RFC 6946). */
  atomicFragments = 0;
  /** Fragments sent for packets larger than the MTU. */
  fragmentsOut = 0;

  /** The counters as a plain object for JSON. */
  override stats(): LayerStats & Record<string, number | Record<string, number>> {
    return {
      ...super.stats(),
      fragmentsIn: this.fragmentsIn,
      reassembled: this.reassembled,
      atomicFragments: this.atomicFragments,
      fragmentsOut: this.fragmentsOut,
    };
  }
}

/**
 * The link layer's part of IPv6 (NDP on Ethernet): receives the NDP and MLD messages the IPv6 layer
 * validated (checksum, addressing), and is told when the groups joined change.
 */
export interface NdpHandler {
  /** Handles an NDP or MLD message (types 130–137, 143) received at `now`. */
  ndpIngress(datagram: Ipv6Datagram, message: Icmpv6Message, now: number, out: Ipv6Sink): void;
}

const log = logger("ipv6");

/** Counts what is sent and fragments what exceeds the MTU; one long-lived object retargeted per call. */
class CountingSink implements Ipv6Sink {
  target: Ipv6Sink | null = null;
  readonly #fragment: Uint8Array;
  readonly #emitFragment = (fragment: Uint8Array) => this.#forward(fragment, null);
  constructor(private readonly owner: Ipv6Interface) {
    this.#fragment = new Uint8Array(Math.max(owner.mtu, IPV6_MIN_MTU));
  }
  get offloads(): boolean {
    return this.target?.offloads === true;
  }
  sendIpv6(packet: Uint8Array, offload: TxOffload | null = null): void {
    if (packet.length <= this.owner.mtu || (offload !== null && offload.gsoType !== GsoType.NONE)) {
      this.#forward(packet, offload);
      return;
    }
    // Larger than the link: the source fragments (RFC 8200 §4.5). A partial checksum must be whole first.
    let whole = packet;
    if (offload !== null && offload.checksumPartial) {
      whole = packet.slice();
      completeTxChecksum(whole, offload);
    }
    this.owner.ipv6.fragmentsOut += fragmentIpv6(
      whole,
      this.owner.mtu,
      this.owner.nextIdentification(),
      this.#fragment,
      this.#emitFragment,
    );
  }
  #forward(packet: Uint8Array, offload: TxOffload | null): void {
    this.owner.ipv6.txPackets++;
    this.owner.ipv6.txBytes += packet.length;
    this.target!.sendIpv6(packet, offload);
  }
}

/** The IPv6 layer: addresses, multicast groups, ICMPv6 built in, transports registered by protocol. */
export class Ipv6Interface implements Ipv6Services {
  /** IPv6 counters. */
  readonly ipv6 = new Ipv6Counters();
  /** ICMPv6 counters. */
  readonly icmp6 = new Icmp6Counters();
  /** The link layer's NDP handler (Ethernet), or `null` (TUN: NDP messages are counted and dropped). */
  ndp: NdpHandler | null = null;
  /** Called when the multicast groups joined change (MLD reports are due). */
  onGroupsChanged: (() => void) | null = null;
  readonly #addresses: Ipv6AddressEntry[] = [];
  readonly #groups: Ipv6Address[] = [ALL_NODES];
  readonly #protocols = new Map<number, TransportProtocol6>();
  readonly #view = new Ipv6Packet();
  readonly #chain = new Ipv6HeaderChain();
  readonly #icmpView = new Icmpv6Message();
  readonly #datagram: Ipv6Datagram = emptyIpv6Datagram();
  readonly #scratch = new Uint8Array(65536 + IPV6_HEADER_LENGTH);
  readonly #sink: CountingSink;
  readonly #reassembler: Ipv6Reassembler;
  readonly #errorLimiter: TokenBucket;
  #mtu: number;
  readonly #linkMtu: number;
  #identification = Math.floor(Math.random() * 0x1_0000_0000) >>> 0; // RFC 7739: not predictable from outside
  /** The out sink of the current call, for errors sent from poll. */
  #out: Ipv6Sink | null = null;
  #now = 0;

  /** Creates the layer. */
  constructor(options: Ipv6InterfaceOptions) {
    this.#linkMtu = Math.max(options.mtu, IPV6_MIN_MTU);
    this.#mtu = this.#linkMtu;
    this.#sink = new CountingSink(this);
    this.#reassembler = new Ipv6Reassembler(this.ipv6.drops, options.reassembly);
    this.#errorLimiter = new TokenBucket(options.icmpErrorsPerSecond ?? 100, options.icmpErrorBurst ?? 50);
    for (const cidr of options.addresses ?? []) this.addAddress(cidr, "static", "preferred");
  }

  /** The MTU in use (the link's, or lower when a router advertised one, RFC 4861 §6.3.4). */
  get mtu(): number {
    return this.#mtu;
  }

  /** Sets the MTU from a router's MTU option; values outside [1280, link MTU] are ignored (RFC 4861 §6.3.4). */
  setMtu(mtu: number): boolean {
    if (mtu < IPV6_MIN_MTU || mtu > this.#linkMtu) return false;
    this.#mtu = mtu;
    return true;
  }

  /** The addresses (live entries: do not modify). */
  get addresses(): readonly Ipv6AddressEntry[] {
    return this.#addresses;
  }

  /** The multicast groups joined (all-nodes and a solicited-node group per address). */
  get groups(): readonly Ipv6Address[] {
    return this.#groups;
  }

  /** The first preferred address that is not link-local (the "main" address, shown in the ready line). */
  get primaryAddress(): Ipv6AddressEntry | null {
    return this.#addresses.find((a) => a.state === "preferred" && !isLinkLocalAt(a.address, 0)) ??
      this.#addresses.find((a) => a.state !== "tentative" && !isLinkLocalAt(a.address, 0)) ?? null;
  }

  /** The link-local address, if any. */
  get linkLocal(): Ipv6AddressEntry | null {
    return this.#addresses.find((a) => isLinkLocalAt(a.address, 0)) ?? null;
  }

  /**
   * Adds an address (or refreshes the lifetimes of one held) and joins its solicited-node group; returns
   * the entry. Lifetimes are absolute times in the caller's clock.
   */
  addAddress(
    cidr: Ipv6Cidr,
    origin: Ipv6AddressOrigin,
    state: Ipv6AddressState,
    preferredUntil = Infinity,
    validUntil = Infinity,
  ): Ipv6AddressEntry {
    const held = this.findAddress(cidr.address);
    if (held !== null) {
      held.preferredUntil = preferredUntil;
      held.validUntil = validUntil;
      if (held.state === "deprecated" && preferredUntil > this.#now) held.state = "preferred";
      return held;
    }
    const entry: Ipv6AddressEntry = {
      address: cidr.address.slice(),
      prefixLength: cidr.prefixLength,
      state,
      origin,
      preferredUntil,
      validUntil,
    };
    this.#addresses.push(entry);
    // RFC 4862 §5.4.2: join the solicited-node group before DAD, so that conflicting probes are heard.
    this.joinGroup(solicitedNodeGroup(entry.address));
    return entry;
  }

  /** Removes an address (DAD conflict, lifetime over) and leaves its group when no other address needs it. */
  removeAddress(address: Ipv6Address): void {
    const index = this.#addresses.findIndex((a) => ipv6Equals(a.address, address));
    if (index < 0) return;
    this.#addresses.splice(index, 1);
    const group = solicitedNodeGroup(address);
    if (!this.#addresses.some((a) => ipv6Equals(solicitedNodeGroup(a.address), group))) {
      const g = this.#groups.findIndex((x) => ipv6Equals(x, group));
      if (g >= 0) {
        this.#groups.splice(g, 1);
        this.onGroupsChanged?.();
      }
    }
  }

  /** The entry holding `address`, or `null`. */
  findAddress(address: Uint8Array, offset = 0): Ipv6AddressEntry | null {
    for (const a of this.#addresses) if (ipv6EqualsAt(address, offset, a.address)) return a;
    return null;
  }

  /** Joins a multicast group (no-op when joined). */
  joinGroup(group: Ipv6Address): void {
    if (this.#groups.some((g) => ipv6Equals(g, group))) return;
    this.#groups.push(group);
    this.onGroupsChanged?.();
  }

  /** Whether the packet's destination is a group joined (a loop: no closure per packet). */
  #joined(packet: Uint8Array): boolean {
    const groups = this.#groups;
    for (let i = 0; i < groups.length; i++) if (ipv6EqualsAt(packet, IPV6_DST_OFFSET, groups[i])) return true;
    return false;
  }

  /** Whether the address at `bytes[offset..]` is on-link: in the prefix of one of our addresses, or link-local. */
  isOnLink(bytes: Uint8Array, offset = 0): boolean {
    if (isLinkLocalAt(bytes, offset) || isMulticastAt(bytes, offset)) return true;
    for (const a of this.#addresses) if (inPrefixAt(bytes, offset, a.address, a.prefixLength)) return true;
    return false;
  }

  /**
   * The source address towards `dst` (RFC 6724 §5, simplified to what matters with a handful of addresses):
   * never a tentative address; same scope first (link-local for link-local and link-scope multicast
   * destinations), then the longest matching prefix, preferred before deprecated.
   */
  sourceFor(dst: Uint8Array, offset = 0): Uint8Array | null {
    const linkScope = isLinkLocalAt(dst, offset) ||
      (isMulticastAt(dst, offset) && (dst[offset + 1] & 0x0f) <= 2);
    let best: Ipv6AddressEntry | null = null;
    let bestScore = -1;
    for (const a of this.#addresses) {
      if (a.state === "tentative") continue;
      const sameScope = isLinkLocalAt(a.address, 0) === linkScope;
      let common = 0;
      while (common < 128 && inPrefixAt(dst, offset, a.address, common + 1)) common++;
      const score = (sameScope ? 1 << 10 : 0) + (a.state === "preferred" ? 1 << 9 : 0) + common;
      if (score > bestScore) {
        best = a;
        bestScore = score;
      }
    }
    return best?.address ?? null;
  }

  /** Registers the handler of an upper-layer protocol (TCP, UDP). */
  register(protocol: number, handler: TransportProtocol6): void {
    this.#protocols.set(protocol, handler);
  }

  /** The next Fragment header identification (RFC 7739: per-packet, starting at a random value). */
  nextIdentification(): number {
    this.#identification = (this.#identification + 1) >>> 0;
    return this.#identification;
  }

  /** A sink that counts and fragments, forwarding to `out` (for senders outside the transports, e.g. NDP). */
  sinkFor(out: Ipv6Sink): Ipv6Sink {
    if (out !== this.#sink) this.#sink.target = out;
    return this.#sink;
  }

  /**
   * Handles one received IPv6 packet (no link header); replies go to `out`. `rxFlags` are the device's
   * `RxFlags`. `linkMulticast` says the frame was sent to a link-layer multicast or broadcast address
   * (RFC 4443 §2.4(e.4): no error message then).
   */
  ingress(packet: Uint8Array, now: number, out: Ipv6Sink, rxFlags = 0, linkMulticast = false): void {
    this.#now = now;
    const ip = this.#view.wrap(packet);
    const error = ip.check();
    if (error !== null) {
      this.ipv6.drops.count(error);
      return;
    }
    const end = ip.end;
    // RFC 4291 §2.7: a multicast source is never valid.
    if (isMulticastAt(packet, 8)) {
      this.ipv6.drops.count("bad-source");
      return;
    }
    const multicast = isMulticastAt(packet, IPV6_DST_OFFSET);
    let tentative = false;
    if (multicast) {
      if (!this.#joined(packet)) {
        this.ipv6.drops.count("not-joined");
        return;
      }
    } else {
      const entry = this.findAddress(packet, IPV6_DST_OFFSET);
      if (entry === null) {
        this.ipv6.drops.count("not-ours");
        return;
      }
      tentative = entry.state === "tentative";
    }
    this.#sink.target = out;
    const chain = this.#chain;
    if (!chain.walk(packet, end)) {
      this.ipv6.drops.count(chain.error!);
      if (chain.icmpCode >= 0 && !tentative) {
        // Code 2 reaches this point for a multicast destination only for the "10" action bits, which
        // RFC 4443 §2.4(e.3) allows; the walk already suppressed the "11" ones.
        const allowMulticast = chain.icmpCode === ParameterProblemCode.UNRECOGNIZED_OPTION;
        this.#sendError(
          Icmpv6Type.PARAMETER_PROBLEM,
          chain.icmpCode,
          chain.icmpPointer,
          packet,
          end,
          now,
          allowMulticast,
          linkMulticast,
        );
      }
      return;
    }
    if (chain.fragmentHeader >= 0 && !chain.atomicFragment) {
      this.ipv6.fragmentsIn++;
      const whole = this.#reassembler.add(packet, end, chain, now);
      if (whole === null) {
        const problem = this.#reassembler.problem;
        if (problem !== null) {
          this.#sendError(
            Icmpv6Type.PARAMETER_PROBLEM,
            problem[0],
            problem[1],
            packet,
            end,
            now,
            false,
            linkMulticast,
          );
        }
        return;
      }
      this.ipv6.reassembled++;
      // The whole packet goes through the checks again (its options, its transport checksum in full).
      this.ingress(whole, now, out, 0, linkMulticast);
      return;
    }
    if (chain.atomicFragment) this.ipv6.atomicFragments++;
    this.ipv6.rxPackets++;
    this.ipv6.rxBytes += end;
    const d = this.#datagram;
    for (let i = 0; i < 16; i++) {
      d.src[i] = packet[8 + i];
      d.dst[i] = packet[IPV6_DST_OFFSET + i];
    }
    d.protocol = chain.upperProtocol;
    d.hopLimit = packet[7];
    d.bytes = packet;
    d.payloadOffset = chain.upperOffset;
    d.payloadEnd = end;
    d.checksumTrusted = (rxFlags & RxFlags.CHECKSUM_TRUSTED) !== 0;
    d.multicast = multicast;
    if (d.protocol === NextHeader.ICMPV6) {
      this.#icmpIngress(d, tentative, now);
      return;
    }
    if (tentative) {
      // RFC 4862 §5.4: packets to a tentative address are silently discarded (except NDP for DAD).
      this.ipv6.drops.count("tentative-address");
      return;
    }
    if (d.protocol === NextHeader.NO_NEXT_HEADER) {
      this.ipv6.drops.count("no-next-header");
      return;
    }
    const handler = this.#protocols.get(d.protocol);
    if (handler === undefined) {
      this.ipv6.drops.count("unsupported-protocol");
      // RFC 8200 §4: unrecognised Next Header → Parameter Problem code 1 at the field that named it.
      this.#sendError(
        Icmpv6Type.PARAMETER_PROBLEM,
        ParameterProblemCode.UNRECOGNIZED_NEXT_HEADER,
        chain.upperNextHeaderField,
        packet,
        end,
        now,
        false,
        linkMulticast,
      );
      return;
    }
    try {
      handler.ingress6(d, now, this.#sink);
    } catch (cause) {
      this.ipv6.drops.count("protocol-error");
      log.error("protocol {protocol} failed on a packet: {cause}", { protocol: d.protocol, cause });
    }
  }

  /**
   * Ages addresses (preferred → deprecated → removed), expires reassemblies (Time Exceeded for those whose
   * first fragment came) and polls the transports; returns the earliest deadline or `null`.
   */
  poll(now: number, out: Ipv6Sink): number | null {
    this.#now = now;
    this.#sink.target = out;
    this.#out = out;
    let next: number | null = this.#reassembler.poll(now, this.#onReassemblyTimeout);
    for (const a of [...this.#addresses]) {
      if (a.validUntil <= now) {
        log.info("address {address} expired", { address: formatIpv6(a.address) });
        this.removeAddress(a.address);
        continue;
      }
      if (a.state === "preferred" && a.preferredUntil <= now) a.state = "deprecated";
      const due = a.state === "preferred" ? a.preferredUntil : a.validUntil;
      if (due !== Infinity && (next === null || due < next)) next = due;
    }
    for (const handler of this.#protocols.values()) {
      const deadline = handler.poll6(now, this.#sink);
      if (deadline !== null && (next === null || deadline < next)) next = deadline;
    }
    return next;
  }

  /** Sends ICMPv6 port unreachable for `datagram` (RFC 4443 §3.1 code 4; rate-limited; never for multicast). */
  portUnreachable6(datagram: Ipv6Datagram, now: number, out: Ipv6Sink): void {
    // Transports call this with the sink they were given, which is usually ours already.
    if (out !== this.#sink) this.#sink.target = out;
    this.#sendError(
      Icmpv6Type.DESTINATION_UNREACHABLE,
      Unreachable6Code.PORT,
      0,
      datagram.bytes,
      datagram.payloadEnd,
      now,
      false,
      false,
    );
  }

  /** Counters of the IPv6 and ICMPv6 layers. */
  stats(): Record<string, unknown> {
    return { ipv6: this.ipv6.stats(), icmp6: this.icmp6.stats() };
  }

  readonly #onReassemblyTimeout = (first: Uint8Array): void => {
    if (this.#out === null) return;
    this.#sendError(
      Icmpv6Type.TIME_EXCEEDED,
      TimeExceededCode.REASSEMBLY,
      0,
      first,
      first.length,
      this.#now,
      false,
      false,
    );
  };

  #icmpIngress(d: Ipv6Datagram, tentative: boolean, now: number): void {
    const message = this.#icmpView.wrap(d.bytes.subarray(d.payloadOffset, d.payloadEnd));
    const error = message.check(d.bytes, !d.checksumTrusted);
    if (error !== null) {
      this.icmp6.drops.count(error);
      return;
    }
    this.icmp6.rxPackets++;
    this.icmp6.rxBytes += message.bytes.length;
    const type = message.type;
    if (
      (type >= Icmpv6Type.MLD_QUERY && type <= Icmpv6Type.REDIRECT) || type === Icmpv6Type.MLDV2_REPORT
    ) {
      if (this.ndp === null) {
        // TUN is point-to-point with no link layer: NDP and MLD have nothing to do there.
        this.icmp6.drops.count("ndp-without-link-layer");
        return;
      }
      this.ndp.ndpIngress(d, message, now, this.#sink);
      return;
    }
    if (tentative) {
      this.ipv6.drops.count("tentative-address");
      return;
    }
    if (type !== Icmpv6Type.ECHO_REQUEST) {
      // Errors and replies addressed to us have no consumer yet; count them by type.
      this.icmp6.drops.count(`unhandled-type-${type}`);
      return;
    }
    const source = d.multicast ? this.sourceFor(d.src) : d.dst;
    if (source === null) {
      this.icmp6.drops.count("no-source-address");
      return;
    }
    const buf = this.#scratch;
    const length = writeIcmpv6Echo(
      buf,
      IPV6_HEADER_LENGTH,
      Icmpv6Type.ECHO_REPLY,
      message.identifier,
      message.sequence,
      message.bytes.subarray(ICMPV6_HEADER_LENGTH),
    );
    writeIpv6Header(buf, 0, source, d.src, NextHeader.ICMPV6, length);
    finishIcmpv6Checksum(buf, 0, IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + length);
    this.icmp6.txPackets++;
    this.icmp6.txBytes += length;
    this.icmp6.echoReplies++;
    this.#sink.sendIpv6(buf.subarray(0, IPV6_HEADER_LENGTH + length));
  }

  /**
   * Sends an ICMPv6 error about `invoking[0..end)` through the current sink, within the rules of RFC 4443
   * §2.4(e) and the rate limit of §2.4(f).
   */
  #sendError(
    type: number,
    code: number,
    parameter: number,
    invoking: Uint8Array,
    end: number,
    now: number,
    allowMulticast: boolean,
    linkMulticast: boolean,
  ): void {
    const multicastDst = isMulticastAt(invoking, IPV6_DST_OFFSET);
    if (
      isErrorOrRedirect(invoking, end) || (multicastDst && !allowMulticast) ||
      (linkMulticast && !allowMulticast) ||
      isUnspecifiedAt(invoking, 8) || isMulticastAt(invoking, 8)
    ) {
      this.icmp6.errorsSuppressed++;
      return;
    }
    const source = multicastDst
      ? this.sourceFor(invoking, 8)
      : invoking.subarray(IPV6_DST_OFFSET, IPV6_DST_OFFSET + 16);
    if (source === null) {
      this.icmp6.errorsSuppressed++;
      return;
    }
    if (!this.#errorLimiter.take(now)) {
      this.icmp6.errorsRateLimited++;
      return;
    }
    const quote = Math.min(
      end,
      MAX_ICMPV6_ERROR_QUOTE,
      this.#mtu - IPV6_HEADER_LENGTH - ICMPV6_HEADER_LENGTH,
    );
    const buf = this.#scratch;
    // The quote may alias the scratch buffer (an echo being answered never errs, but be safe): copy first.
    const length = writeIcmpv6Error(buf, IPV6_HEADER_LENGTH, type, code, parameter, invoking.slice(0, quote));
    writeIpv6Header(buf, 0, source, invoking.subarray(8, 24), NextHeader.ICMPV6, length);
    finishIcmpv6Checksum(buf, 0, IPV6_HEADER_LENGTH, IPV6_HEADER_LENGTH + length);
    this.icmp6.txPackets++;
    this.icmp6.txBytes += length;
    this.icmp6.errorsSent++;
    this.#sink.sendIpv6(buf.subarray(0, IPV6_HEADER_LENGTH + length));
  }
}

/**
 * Whether the packet carries an ICMPv6 error or a Redirect (RFC 4443 §2.4(e.1, e.2)): then no error is
 * sent about it. The chain is followed structurally (options are not judged: the packet may be the one
 * being refused for an option), bounded like the walk.
 */
function isErrorOrRedirect(packet: Uint8Array, end: number): boolean {
  let next = packet[6];
  let offset = IPV6_HEADER_LENGTH;
  for (let i = 0; i <= 8 && offset + 8 <= end; i++) {
    if (next === NextHeader.ICMPV6) {
      const type = packet[offset];
      return type < 128 || type === Icmpv6Type.REDIRECT;
    }
    if (next === NextHeader.FRAGMENT) {
      if (((packet[offset + 2] << 8) | (packet[offset + 3] & 0xf8)) !== 0) return false;
      next = packet[offset];
      offset += 8;
    } else if (
      next === NextHeader.HOP_BY_HOP || next === NextHeader.DESTINATION_OPTIONS || next === NextHeader.ROUTING
    ) {
      next = packet[offset];
      offset += (packet[offset + 1] + 1) * 8;
    } else {
      return false;
    }
  }
  return next === NextHeader.ICMPV6 && offset < end &&
    (packet[offset] < 128 || packet[offset] === Icmpv6Type.REDIRECT);
}

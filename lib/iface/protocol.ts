/**
 * The contract between the IPv4 layer and the transport protocols above it (UDP, TCP), sans-I/O:
 * protocols receive datagrams with the current time and hand packets to a sink; nothing here does I/O.
 *
 * @module
 */

import type { Ipv4Address } from "../wire/ipv4_address.ts";
import type { TxOffload } from "../wire/offload.ts";

/**
 * Where protocols hand complete IPv4 packets (header included, checksums filled in).
 * The sink consumes the bytes before returning, so callers may reuse their buffer at once.
 */
export interface Ipv4Sink {
  /**
   * Sends one IPv4 packet. `offload` asks the device for checksum completion and segmentation (see
   * {@link TxOffload}); protocols pass one only where {@link Ipv4Sink.offloads} is true. It is valid
   * only during the call: layers that keep the packet complete the checksum instead.
   */
  sendIpv4(packet: Uint8Array, offload?: TxOffload | null): void;
  /** Whether the link below takes checksum-partial packets and TCP super-segments. */
  readonly offloads?: boolean;
}

/**
 * A received IPv4 datagram after the IP layer validated it. The object is reused for the next packet:
 * copy what must outlive the call.
 */
export interface Ipv4Datagram {
  /** Source address. */
  src: Ipv4Address;
  /** Destination address (ours). */
  dst: Ipv4Address;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP). */
  protocol: number;
  /** Time to live as received. */
  ttl: number;
  /** The whole packet; the transport payload is `bytes[payloadOffset..payloadEnd)`. */
  bytes: Uint8Array;
  /** Offset of the transport header in `bytes`. */
  payloadOffset: number;
  /** End of the IP payload in `bytes` (the IP total length; link padding excluded). */
  payloadEnd: number;
  /** The transport checksum need not be verified (the device vouched for it, see `RxFlags` in lib/wire/offload.ts). */
  checksumTrusted?: boolean;
  /**
   * The transport checksum field holds only the pseudo-header sum (the local sender left it to offload,
   * see `RxFlags.CHECKSUM_PARTIAL`): complete it before quoting the header to anyone.
   */
  checksumPartial?: boolean;
  /**
   * Addressed to another host, and accepted only because the interface takes transit traffic
   * (forwarding mode: `Ipv4Interface.acceptTransit`): transports hand it to their transit handler,
   * never to the stack's own ports.
   */
  transit?: boolean;
}

/** A blank {@link Ipv4Datagram}, to be filled in and reused for every packet by its owner. */
export function emptyIpv4Datagram(): Ipv4Datagram {
  return {
    src: 0,
    dst: 0,
    protocol: 0,
    ttl: 0,
    bytes: new Uint8Array(0),
    payloadOffset: 0,
    payloadEnd: 0,
    checksumTrusted: false,
    checksumPartial: false,
    transit: false,
  };
}

/** A transport protocol driven by the IPv4 layer. */
export interface TransportProtocol {
  /** Handles one datagram addressed to us; replies go to `out`. Never throws for bad input. */
  ingress(datagram: Ipv4Datagram, now: number, out: Ipv4Sink): void;
  /**
   * Emits whatever is due at `now` (retransmissions, queued application data) and returns the next
   * time, in the same clock, at which it wants to be polled; `null` when it waits only for input.
   */
  poll(now: number, out: Ipv4Sink): number | null;
}

/** Reports an unreachable port for a datagram, so a protocol can ask the IP layer to send ICMP. */
export interface UnreachableReporter {
  /** Sends ICMP destination unreachable, port unreachable, quoting `datagram` (rate-limited). */
  portUnreachable(datagram: Ipv4Datagram, now: number, out: Ipv4Sink): void;
}

/**
 * Where protocols hand complete IPv6 packets (header included, checksums filled in); the IPv6 counterpart
 * of {@link Ipv4Sink}. The sink consumes the bytes before returning.
 */
export interface Ipv6Sink {
  /** Sends one IPv6 packet; `offload` as for {@link Ipv4Sink.sendIpv4}. */
  sendIpv6(packet: Uint8Array, offload?: TxOffload | null): void;
  /** Whether the link below takes checksum-partial packets and TCP super-segments. */
  readonly offloads?: boolean;
}

/**
 * A received IPv6 datagram after the IPv6 layer validated it and walked its extension headers. The object
 * (and its address arrays) is reused for the next packet: copy what must outlive the call.
 */
export interface Ipv6Datagram {
  /** Source address (16 bytes, reused). */
  src: Uint8Array;
  /** Destination address (16 bytes, reused): ours, or a multicast group we joined. */
  dst: Uint8Array;
  /** Upper-layer protocol (6 TCP, 17 UDP, 58 ICMPv6). */
  protocol: number;
  /** Hop limit as received. */
  hopLimit: number;
  /** The whole packet; the upper-layer header and data are `bytes[payloadOffset..payloadEnd)`. */
  bytes: Uint8Array;
  /** Offset of the upper-layer header in `bytes` (after the extension headers). */
  payloadOffset: number;
  /** End of the packet in `bytes` (link padding excluded). */
  payloadEnd: number;
  /** The transport checksum need not be verified (the device vouched for it). */
  checksumTrusted?: boolean;
  /** The destination was a multicast group. */
  multicast: boolean;
}

/** A blank {@link Ipv6Datagram}, to be filled in and reused for every packet by its owner. */
export function emptyIpv6Datagram(): Ipv6Datagram {
  return {
    src: new Uint8Array(16),
    dst: new Uint8Array(16),
    protocol: 0,
    hopLimit: 0,
    bytes: new Uint8Array(0),
    payloadOffset: 0,
    payloadEnd: 0,
    checksumTrusted: false,
    multicast: false,
  };
}

/** A transport protocol driven by the IPv6 layer (the IPv6 side of {@link TransportProtocol}). */
export interface TransportProtocol6 {
  /** Handles one datagram addressed to us; replies go to `out`. Never throws for bad input. */
  ingress6(datagram: Ipv6Datagram, now: number, out: Ipv6Sink): void;
  /** Emits what is due at `now` over IPv6; returns the next deadline or `null`. */
  poll6(now: number, out: Ipv6Sink): number | null;
}

/** What a transport protocol needs of the IPv6 layer: ICMPv6 errors and source address selection. */
export interface Ipv6Services {
  /** Sends ICMPv6 port unreachable quoting `datagram` (rate-limited; never for multicast). */
  portUnreachable6(datagram: Ipv6Datagram, now: number, out: Ipv6Sink): void;
  /** The source address to use towards `dst` (RFC 6724, simplified), or `null` when there is none. */
  sourceFor(dst: Uint8Array): Uint8Array | null;
}

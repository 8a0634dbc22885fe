/**
 * A DHCPv4 client (RFC 2131), sans-I/O: the owner passes time and datagrams in and gets packets out, and
 * learns about the lease through callbacks. No clock, no timers, no sockets inside.
 *
 * States (RFC 2131 §4.4, figure 5): INIT → SELECTING (DISCOVER sent) → REQUESTING (REQUEST for an offer)
 * → [CHECKING: the new address is probed for a conflict when an {@link AddressCheck} is given; in use →
 * DHCPDECLINE and INIT again after 10 s] → BOUND → RENEWING at T1 (REQUEST unicast to the server) →
 * REBINDING at T2 (REQUEST broadcast) → lease expiry: the address is given up and the client starts over
 * in INIT. NAK in REQUESTING/RENEWING/REBINDING → INIT. INIT-REBOOT is not implemented: a previous
 * address can only be hinted in DISCOVER (option 50). The random 1–10 s wait before the first DISCOVER
 * (RFC 2131 §4.4.1) is not applied: one client per interface, started by the user.
 *
 * How its packets get out: the client writes whole IPv4/UDP packets itself and hands them to an
 * {@link Ipv4Sink} — in the stack, the Ethernet layer's sink (`EthernetInterface.addPoller` / its ingress
 * path). Without an address it sends from 0.0.0.0 to 255.255.255.255, which the Ethernet layer maps to the
 * broadcast MAC with no ARP. It sets the BROADCAST flag (RFC 2131 §4.1) so that servers broadcast their
 * replies too, which the IPv4 layer accepts without an address. Replies come in through
 * {@link DhcpClient.ingress}, bound to UDP port 68 on the UDP layer (see `lib/dhcp/mod.ts`).
 *
 * @module
 */

import type { Ipv4Sink } from "../iface/protocol.ts";
import { LayerCounters, type LayerStats } from "../iface/stats.ts";
import type { UdpReceived } from "../udp/layer.ts";
import {
  BootpOp,
  DHCP_CLIENT_PORT,
  DHCP_FLAG_BROADCAST,
  DHCP_SERVER_PORT,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  DhcpOptions,
  DhcpOptionWriter,
  writeDhcpHeader,
} from "../wire/dhcp.ts";
import { type MacAddress, writeMac } from "../wire/ethernet.ts";
import { formatIpv4, type Ipv4Address, prefixToMask } from "../wire/ipv4_address.ts";
import { IpProtocol, IPV4_HEADER_LENGTH, writeIpv4Header } from "../wire/ipv4.ts";
import { UDP_HEADER_LENGTH, writeUdpHeader } from "../wire/udp.ts";
import { logger } from "../log.ts";

/** States of the client (RFC 2131 §4.4), plus `stopped` after {@link DhcpClient.release} or before start. */
export type DhcpState =
  | "stopped"
  | "init"
  | "selecting"
  | "requesting"
  | "checking"
  | "bound"
  | "renewing"
  | "rebinding";

/**
 * Checks whether an assigned address is already in use before the client binds it (RFC 2131 §4.4.1: the
 * client SHOULD probe the address, e.g. with ARP). The Ethernet layer implements it with RFC 5227 probes.
 */
export interface AddressCheck {
  /** Starts checking `address` (e.g. sends ARP probes); the verdict is read after the check time. */
  start(address: Ipv4Address, now: number): void;
  /** Whether anyone else answered for `address` since {@link AddressCheck.start}. Ends the check. */
  inUse(address: Ipv4Address): boolean;
}

/** A lease as granted by a server. */
export interface DhcpLease {
  /** The address assigned (yiaddr). */
  address: Ipv4Address;
  /** Prefix length from the subnet mask (option 1), or the classful default when absent or not contiguous. */
  prefixLength: number;
  /** The first router of option 3, or `null`. */
  router: Ipv4Address | null;
  /** DNS servers (option 6), possibly empty. */
  dns: Ipv4Address[];
  /** Lease duration in seconds (option 51); `Infinity` for an infinite lease (0xffffffff). */
  leaseSeconds: number;
  /** Renewal time T1 in seconds (option 58, default lease × 0.5). */
  renewalSeconds: number;
  /** Rebinding time T2 in seconds (option 59, default lease × 0.875). */
  rebindingSeconds: number;
  /** The server identifier (option 54). */
  server: Ipv4Address;
  /** When the lease started, in the owner's clock (ms): when the REQUEST that got it was first sent. */
  startedAt: number;
}

/** Why a lease was given up. */
export type DhcpLossReason = "expired" | "nak" | "released";

/** Options of {@link DhcpClient}. */
export interface DhcpClientOptions {
  /** The interface's MAC: chaddr and client identifier. */
  mac: MacAddress;
  /** Random numbers in [0, 1) for transaction ids and retransmission jitter; default `Math.random`. */
  random?: () => number;
  /** Host name sent in option 12, if any. */
  hostname?: string;
  /** An address to ask for in DISCOVER (option 50), e.g. the previous lease. */
  requestedAddress?: Ipv4Address | null;
  /**
   * Conflict check of a new address before binding it; when it reports the address in use, the client
   * sends DHCPDECLINE and starts over after 10 s (RFC 2131 §3.1.5). Omitted: no check.
   */
  addressCheck?: AddressCheck;
  /** How long the check listens, in ms; default 1000. */
  addressCheckMs?: number;
  /** REQUEST transmissions in REQUESTING before starting over; default 4 (4+8+16+32 s ± 1 s). */
  maxRequestAttempts?: number;
  /** A lease was obtained (also when a renewal changed the address). */
  onBound?: (lease: DhcpLease, now: number) => void;
  /** A lease was extended by RENEWING/REBINDING with the same address. */
  onRenewed?: (lease: DhcpLease, now: number) => void;
  /** The address must no longer be used. */
  onLost?: (reason: DhcpLossReason, lease: DhcpLease, now: number) => void;
}

/** What {@link DhcpClient.stats} returns: the state, the lease and the counters. */
export interface DhcpClientStats extends LayerStats {
  /** The client's state (RFC 2131 §4.4, Figure 5). */
  state: string;
  /** The current lease, in text form. */
  lease: {
    address: string;
    prefixLength: number;
    router: string | null;
    leaseSeconds: number;
    server: string;
  } | null;
  /** DISCOVERs sent (retransmissions included). */
  discovers: number;
  /** REQUESTs sent. */
  requests: number;
  /** OFFERs accepted. */
  offers: number;
  /** ACKs accepted. */
  acks: number;
  /** NAKs accepted. */
  naks: number;
  /** RELEASEs sent. */
  releases: number;
  /** DECLINEs sent. */
  declines: number;
}

/** DHCP counters beyond the common ones. */
export class DhcpCounters extends LayerCounters {
  /** DISCOVERs sent (retransmissions included). */
  discovers = 0;
  /** REQUESTs sent (all states, retransmissions included). */
  requests = 0;
  /** OFFERs accepted. */
  offers = 0;
  /** ACKs accepted. */
  acks = 0;
  /** NAKs accepted. */
  naks = 0;
  /** RELEASEs sent. */
  releases = 0;
  /** DECLINEs sent (the address was found in use). */
  declines = 0;

  /** The counters as a plain object for JSON. */
  override stats(): Omit<DhcpClientStats, "state" | "lease"> {
    return {
      ...super.stats(),
      discovers: this.discovers,
      requests: this.requests,
      offers: this.offers,
      acks: this.acks,
      naks: this.naks,
      releases: this.releases,
      declines: this.declines,
    };
  }
}

const log = logger("dhcp");

/** RFC 2131 §4.1: the first retransmission after 4 s, doubling up to 64 s, randomized by ±1 s. */
const FIRST_BACKOFF_S = 4;
const MAX_BACKOFF_S = 64;
/** RFC 2131 §4.4.5: in RENEWING/REBINDING, retransmit after half the remaining time, but at least 60 s. */
const MIN_RENEW_RETRANSMIT_MS = 60_000;
/** RFC 2131 §3.1.5 asks for ≥ 10 s before restarting after a failed configuration; used after repeated NAKs. */
const RESTART_DELAY_MS = 10_000;
const INFINITE_LEASE = 0xffffffff;
const PARAMETER_REQUEST_LIST = new Uint8Array([
  DhcpOption.SUBNET_MASK,
  DhcpOption.ROUTER,
  DhcpOption.DNS_SERVERS,
  DhcpOption.LEASE_TIME,
  DhcpOption.SERVER_ID,
  DhcpOption.RENEWAL_TIME,
  DhcpOption.REBINDING_TIME,
]);

/** The prefix length of a contiguous netmask, or `null`. */
export function maskToPrefix(mask: Ipv4Address): number | null {
  for (let prefix = 0; prefix <= 32; prefix++) if (prefixToMask(prefix) === mask >>> 0) return prefix;
  return null;
}

/** The classful prefix of an address (RFC 2131 §4.4.1 leaves the default to the client; RFC 1122 §3.3.1.1). */
function classfulPrefix(address: Ipv4Address): number {
  if (address >>> 31 === 0) return 8;
  if (address >>> 30 === 2) return 16;
  return 24;
}

function isUsableUnicast(address: Ipv4Address): boolean {
  const first = address >>> 24;
  return address !== 0 && first !== 0 && first !== 127 && first < 224;
}

/** The DHCPv4 client of one interface. */
export class DhcpClient {
  /** Message counters and drops by reason. */
  readonly #counters = new DhcpCounters();
  readonly #mac: MacAddress;
  readonly #random: () => number;
  readonly #hostname: Uint8Array | null;
  readonly #clientId: Uint8Array;
  readonly #maxRequestAttempts: number;
  readonly #addressCheck: AddressCheck | null;
  readonly #addressCheckMs: number;
  /** The lease being checked in CHECKING, bound when no one else claims its address. */
  #checking: DhcpLease | null = null;
  readonly #events: Pick<DhcpClientOptions, "onBound" | "onRenewed" | "onLost">;
  readonly #view = new DhcpMessage();
  readonly #buf = new Uint8Array(1024);
  #requestedHint: Ipv4Address | null;
  #state: DhcpState = "stopped";
  #xid = 0;
  /** When the current exchange began (for `secs`). */
  #exchangeStartedAt = 0;
  /** When the first REQUEST of the current exchange was sent: the lease's start (RFC 2131 §4.4.1). */
  #requestSentAt = 0;
  #attempts = 0;
  #nextAt = 0;
  #offeredAddress = 0;
  #offerServer = 0;
  #consecutiveNaks = 0;
  #lease: DhcpLease | null = null;
  #t1At = Infinity;
  #t2At = Infinity;
  #expiresAt = Infinity;

  /** Creates a stopped client; call {@link DhcpClient.start}. */
  constructor(options: DhcpClientOptions) {
    this.#mac = options.mac;
    this.#random = options.random ?? Math.random;
    this.#hostname = options.hostname ? new TextEncoder().encode(options.hostname).subarray(0, 255) : null;
    this.#requestedHint = options.requestedAddress ?? null;
    this.#maxRequestAttempts = options.maxRequestAttempts ?? 4;
    this.#addressCheck = options.addressCheck ?? null;
    this.#addressCheckMs = options.addressCheckMs ?? 1000;
    this.#events = options;
    // RFC 2132 §9.14: client identifier = hardware type 1 followed by the MAC.
    this.#clientId = new Uint8Array(7);
    this.#clientId[0] = 1;
    writeMac(this.#clientId, 1, this.#mac);
  }

  /** The current state. */
  get state(): DhcpState {
    return this.#state;
  }

  /** The current lease (BOUND, RENEWING, REBINDING), else `null`. */
  get lease(): DhcpLease | null {
    return this.#lease;
  }

  /** Enters INIT: the first DISCOVER goes out at the next poll. */
  start(now: number): void {
    this.#enterInit(now);
  }

  /**
   * Handles one datagram received on port 68. Replies to other transactions or clients, and messages the
   * state does not expect, are counted as drops. Never throws for bad input.
   */
  ingress(datagram: UdpReceived, now: number, out: Ipv4Sink): void {
    if (datagram.srcPort !== DHCP_SERVER_PORT) {
      this.#counters.drops.count("bad-source-port");
      return;
    }
    const message = this.#view.wrap(datagram.data);
    const error = message.check();
    if (error !== null) {
      this.#counters.drops.count(error);
      return;
    }
    if (message.op !== BootpOp.REPLY) {
      this.#counters.drops.count("not-reply");
      return;
    }
    if (message.xid !== this.#xid) {
      this.#counters.drops.count("wrong-xid");
      return;
    }
    if (message.chaddr !== this.#mac) {
      this.#counters.drops.count("wrong-chaddr");
      return;
    }
    const options = new DhcpOptions(message.options());
    if (options.malformed) {
      this.#counters.drops.count("malformed-options");
      return;
    }
    const type = options.messageType;
    if (type === null) {
      this.#counters.drops.count("no-message-type");
      return;
    }
    this.#counters.rxPackets++;
    this.#counters.rxBytes += datagram.data.length;
    const state = this.#state;
    if (state === "selecting" && type === DhcpMessageType.OFFER) {
      this.#acceptOffer(message, options, now, out);
    } else if (
      (state === "requesting" || state === "renewing" || state === "rebinding") &&
      (type === DhcpMessageType.ACK || type === DhcpMessageType.NAK)
    ) {
      const server = options.serverId;
      // In REQUESTING the reply must come from the server we chose (RFC 2131 §4.3.2: the others release).
      if (state === "requesting" && server !== null && server !== this.#offerServer) {
        this.#counters.drops.count("other-server");
        return;
      }
      if (type === DhcpMessageType.ACK) this.#acceptAck(message, options, now);
      else this.#acceptNak(options, now);
    } else {
      this.#counters.drops.count(`unexpected-type-${type}-in-${state}`);
    }
  }

  /** Sends what is due at `now` (transmissions, retransmissions, state changes at T1/T2/expiry). */
  poll(now: number, out: Ipv4Sink): number | null {
    // A late poll may cross several deadlines (e.g. T1 and T2): loop until nothing more is due.
    for (let guard = 0; guard < 8; guard++) {
      if (!this.#step(now, out)) break;
    }
    return this.#deadline();
  }

  /**
   * Gives the lease back (RFC 2131 §4.4.6: DHCPRELEASE unicast to the server, with ciaddr) and stops.
   * `onLost("released")` is called. Without a lease it just stops.
   */
  release(now: number, out: Ipv4Sink): void {
    const lease = this.#lease;
    if (lease !== null) {
      this.#xid = this.#newXid();
      const w = this.#message(now, lease.address, 0, DhcpMessageType.RELEASE);
      w.u32(DhcpOption.SERVER_ID, lease.server);
      this.#counters.releases++;
      this.#send(w, lease.address, lease.server, out);
      log.info("released {address}", { address: formatIpv4(lease.address) });
    }
    this.#state = "stopped";
    this.#lease = null;
    if (lease !== null) this.#events.onLost?.("released", lease, now);
  }

  /** Stops without telling the server (the lease simply runs out). */
  stop(): void {
    this.#state = "stopped";
  }

  /** Counters and state as a JSON-able object. */
  stats(): DhcpClientStats {
    return {
      state: this.#state,
      lease: this.#lease === null ? null : {
        address: formatIpv4(this.#lease.address),
        prefixLength: this.#lease.prefixLength,
        router: this.#lease.router === null ? null : formatIpv4(this.#lease.router),
        leaseSeconds: this.#lease.leaseSeconds,
        server: formatIpv4(this.#lease.server),
      },
      ...this.#counters.stats(),
    };
  }

  // --- state machine ---

  /** Does the one thing due at `now`, if any; returns whether something happened. */
  #step(now: number, out: Ipv4Sink): boolean {
    switch (this.#state) {
      case "stopped":
        return false;
      case "init":
        if (now < this.#nextAt) return false;
        this.#xid = this.#newXid();
        this.#exchangeStartedAt = now;
        this.#attempts = 0;
        this.#state = "selecting";
        this.#sendDiscover(now, out);
        return true;
      case "selecting":
        if (now < this.#nextAt) return false;
        this.#sendDiscover(now, out);
        return true;
      case "requesting":
        if (now < this.#nextAt) return false;
        if (this.#attempts >= this.#maxRequestAttempts) {
          // RFC 2131 §4.4.1: no ACK or NAK after the retransmissions: back to INIT.
          this.#counters.drops.count("request-timeout");
          log.info("no answer to the request for {address}; starting over", {
            address: formatIpv4(this.#offeredAddress),
          });
          this.#enterInit(now);
          return true;
        }
        this.#sendSelectingRequest(now, out);
        return true;
      case "checking": {
        if (now < this.#nextAt) return false;
        const lease = this.#checking!;
        this.#checking = null;
        if (this.#addressCheck!.inUse(lease.address)) {
          this.#decline(lease, now, out);
        } else {
          this.#bind(lease, now);
        }
        return true;
      }
      case "bound":
        if (now < this.#t1At) return false;
        this.#state = "renewing";
        this.#xid = this.#newXid();
        this.#exchangeStartedAt = now;
        this.#requestSentAt = now;
        this.#sendRenewingRequest(now, out);
        return true;
      case "renewing":
        if (now >= this.#t2At) {
          this.#state = "rebinding";
          this.#xid = this.#newXid();
          this.#requestSentAt = now;
          this.#sendRebindingRequest(now, out);
          return true;
        }
        if (now < this.#nextAt) return false;
        this.#sendRenewingRequest(now, out);
        return true;
      case "rebinding":
        if (now >= this.#expiresAt) {
          this.#lose("expired", now);
          return true;
        }
        if (now < this.#nextAt) return false;
        this.#sendRebindingRequest(now, out);
        return true;
    }
  }

  #deadline(): number | null {
    switch (this.#state) {
      case "stopped":
        return null;
      case "bound":
        return Number.isFinite(this.#t1At) ? this.#t1At : null;
      case "renewing":
        return Math.min(this.#nextAt, this.#t2At);
      case "rebinding":
        return Math.min(this.#nextAt, this.#expiresAt);
      default:
        return this.#nextAt;
    }
  }

  #enterInit(now: number, delayMs = 0): void {
    this.#state = "init";
    this.#nextAt = now + delayMs;
    this.#lease = null;
    this.#t1At = this.#t2At = this.#expiresAt = Infinity;
  }

  #lose(reason: DhcpLossReason, now: number): void {
    const lease = this.#lease;
    log.warning("lost the lease of {address}: {reason}", {
      address: lease === null ? "-" : formatIpv4(lease.address),
      reason,
    });
    this.#enterInit(now);
    if (lease !== null) this.#events.onLost?.(reason, lease, now);
  }

  /** The delay before retransmission number `attempt` (1: after the first transmission), ±1 s jitter. */
  #backoffMs(attempt: number): number {
    const base = Math.min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** Math.max(0, attempt - 1));
    return base * 1000 + (this.#random() * 2 - 1) * 1000;
  }

  /** A random transaction id, never the previous one (replies to an old exchange must not match). */
  #newXid(): number {
    const xid = Math.floor(this.#random() * 0x1_0000_0000) >>> 0;
    return xid === this.#xid ? (xid + 1) >>> 0 : xid;
  }

  #acceptOffer(message: DhcpMessage, options: DhcpOptions, now: number, out: Ipv4Sink): void {
    const offered = message.yiaddr;
    const server = options.serverId;
    if (!isUsableUnicast(offered)) {
      this.#counters.drops.count("bad-offered-address");
      return;
    }
    if (server === null) {
      // RFC 2131 table 3: an OFFER MUST carry the server identifier, and the REQUEST must name it.
      this.#counters.drops.count("offer-without-server-id");
      return;
    }
    this.#counters.offers++;
    this.#offeredAddress = offered;
    this.#offerServer = server;
    this.#state = "requesting";
    this.#attempts = 0;
    this.#requestSentAt = now;
    log.debug("offer of {address} from {server}", {
      address: formatIpv4(offered),
      server: formatIpv4(server),
    });
    this.#sendSelectingRequest(now, out);
  }

  #acceptAck(message: DhcpMessage, options: DhcpOptions, now: number): void {
    const address = message.yiaddr;
    if (!isUsableUnicast(address)) {
      this.#counters.drops.count("bad-assigned-address");
      return;
    }
    const leaseTime = options.leaseTime;
    if (leaseTime === null) {
      // RFC 2131 table 3: lease time is MUST in an ACK to a REQUEST.
      this.#counters.drops.count("ack-without-lease-time");
      return;
    }
    const server = options.serverId ?? this.#lease?.server ?? this.#offerServer;
    const mask = options.subnetMask;
    const prefix = mask === null ? null : maskToPrefix(mask);
    const leaseSeconds = leaseTime === INFINITE_LEASE ? Infinity : leaseTime;
    let t1 = options.renewalTime ?? leaseSeconds * 0.5;
    let t2 = options.rebindingTime ?? leaseSeconds * 0.875;
    // RFC 2131 §4.4.5 defaults; servers' values are used only when ordered T1 ≤ T2 ≤ lease.
    if (!(t1 <= t2 && t2 <= leaseSeconds)) {
      t1 = leaseSeconds * 0.5;
      t2 = leaseSeconds * 0.875;
    }
    const lease: DhcpLease = {
      address,
      prefixLength: prefix !== null && prefix > 0 ? prefix : classfulPrefix(address),
      router: options.routers?.[0] ?? null,
      dns: options.dnsServers ?? [],
      leaseSeconds,
      renewalSeconds: t1,
      rebindingSeconds: t2,
      server,
      startedAt: this.#requestSentAt,
    };
    this.#counters.acks++;
    this.#consecutiveNaks = 0;
    if (this.#addressCheck !== null && this.#state === "requesting") {
      // RFC 2131 §4.4.1: probe a new address before using it; bound (or declined) at the next poll after.
      this.#state = "checking";
      this.#checking = lease;
      this.#nextAt = now + this.#addressCheckMs;
      this.#addressCheck.start(address, now);
      return;
    }
    this.#bind(lease, now);
  }

  #bind(lease: DhcpLease, now: number): void {
    const { address, leaseSeconds, server } = lease;
    const previous = this.#lease;
    const renewed = previous !== null && previous.address === address &&
      previous.prefixLength === lease.prefixLength;
    this.#lease = lease;
    this.#state = "bound";
    this.#requestedHint = address;
    const start = lease.startedAt;
    this.#t1At = start + lease.renewalSeconds * 1000;
    this.#t2At = start + lease.rebindingSeconds * 1000;
    this.#expiresAt = start + leaseSeconds * 1000;
    const fields = {
      address: `${formatIpv4(address)}/${lease.prefixLength}`,
      mask: formatIpv4(prefixToMask(lease.prefixLength)),
      router: lease.router === null ? "none" : formatIpv4(lease.router),
      dns: lease.dns.map(formatIpv4).join(",") || "none",
      lease: Number.isFinite(leaseSeconds) ? `${leaseSeconds}s` : "infinite",
      server: formatIpv4(server),
    };
    if (renewed) {
      log.info("renewed {address} lease={lease}", fields);
      this.#events.onRenewed?.(lease, now);
    } else {
      log.info(
        "bound address={address} mask={mask} router={router} dns={dns} lease={lease} server={server}",
        fields,
      );
      this.#events.onBound?.(lease, now);
    }
  }

  /** DHCPDECLINE (RFC 2131 §4.4.1): broadcast, options 50 and 54; then INIT after 10 s (§3.1.5). */
  #decline(lease: DhcpLease, now: number, out: Ipv4Sink): void {
    this.#counters.declines++;
    log.warning("{address} is already in use on the link; declining it", {
      address: formatIpv4(lease.address),
    });
    const w = this.#message(now, 0, 0, DhcpMessageType.DECLINE);
    w.u32(DhcpOption.REQUESTED_ADDRESS, lease.address);
    w.u32(DhcpOption.SERVER_ID, lease.server);
    this.#send(w, 0, 0xffffffff, out);
    this.#requestedHint = null;
    this.#enterInit(now, RESTART_DELAY_MS);
  }

  #acceptNak(options: DhcpOptions, now: number): void {
    this.#counters.naks++;
    this.#consecutiveNaks++;
    const text = options.message;
    log.warning("the server refused the request (NAK){why}", { why: text ? `: ${text}` : "" });
    const lease = this.#lease;
    // RFC 2131 §3.1.4 / §4.4.5: NAK means start over at INIT; the address must not be used any longer.
    const delay = this.#consecutiveNaks > 1 ? RESTART_DELAY_MS : 0;
    this.#enterInit(now, delay);
    if (lease !== null) this.#events.onLost?.("nak", lease, now);
  }

  // --- messages ---

  #message(now: number, ciaddr: Ipv4Address, flags: number, type: number): DhcpOptionWriter {
    const start = IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH;
    const position = writeDhcpHeader(this.#buf, start, {
      op: BootpOp.REQUEST,
      xid: this.#xid,
      chaddr: this.#mac,
      secs: (now - this.#exchangeStartedAt) / 1000,
      flags,
      ciaddr,
    });
    const w = new DhcpOptionWriter(this.#buf, position);
    w.u8(DhcpOption.MESSAGE_TYPE, type);
    w.bytes(DhcpOption.CLIENT_ID, this.#clientId);
    return w;
  }

  #finishRequestOptions(w: DhcpOptionWriter): void {
    w.bytes(DhcpOption.PARAMETER_REQUEST_LIST, PARAMETER_REQUEST_LIST);
    if (this.#hostname !== null) w.bytes(DhcpOption.HOSTNAME, this.#hostname);
  }

  #send(w: DhcpOptionWriter, src: Ipv4Address, dst: Ipv4Address, out: Ipv4Sink): void {
    const length = w.end();
    const buf = this.#buf;
    writeUdpHeader(buf, IPV4_HEADER_LENGTH, src, dst, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, length);
    writeIpv4Header(buf, 0, src, dst, IpProtocol.UDP, UDP_HEADER_LENGTH + length);
    const total = IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH + length;
    this.#counters.txPackets++;
    this.#counters.txBytes += length;
    out.sendIpv4(buf.subarray(0, total));
  }

  #sendDiscover(now: number, out: Ipv4Sink): void {
    this.#attempts++;
    this.#nextAt = now + this.#backoffMs(this.#attempts);
    const w = this.#message(now, 0, DHCP_FLAG_BROADCAST, DhcpMessageType.DISCOVER);
    if (this.#requestedHint !== null) w.u32(DhcpOption.REQUESTED_ADDRESS, this.#requestedHint);
    this.#finishRequestOptions(w);
    this.#counters.discovers++;
    this.#send(w, 0, 0xffffffff, out);
  }

  /** REQUEST in SELECTING → REQUESTING: broadcast, ciaddr 0, options 50 and 54 (RFC 2131 §4.3.2). */
  #sendSelectingRequest(now: number, out: Ipv4Sink): void {
    this.#attempts++;
    this.#nextAt = now + this.#backoffMs(this.#attempts);
    const w = this.#message(now, 0, DHCP_FLAG_BROADCAST, DhcpMessageType.REQUEST);
    w.u32(DhcpOption.REQUESTED_ADDRESS, this.#offeredAddress);
    w.u32(DhcpOption.SERVER_ID, this.#offerServer);
    this.#finishRequestOptions(w);
    this.#counters.requests++;
    this.#send(w, 0, 0xffffffff, out);
  }

  /** REQUEST in RENEWING: unicast to the server, ciaddr set, no options 50/54 (RFC 2131 §4.3.2). */
  #sendRenewingRequest(now: number, out: Ipv4Sink): void {
    const lease = this.#lease!;
    this.#nextAt = Math.min(this.#t2At, now + Math.max(MIN_RENEW_RETRANSMIT_MS, (this.#t2At - now) / 2));
    const w = this.#message(now, lease.address, 0, DhcpMessageType.REQUEST);
    this.#finishRequestOptions(w);
    this.#counters.requests++;
    this.#send(w, lease.address, lease.server, out);
  }

  /** REQUEST in REBINDING: broadcast to any server, ciaddr set (RFC 2131 §4.4.5). */
  #sendRebindingRequest(now: number, out: Ipv4Sink): void {
    const lease = this.#lease!;
    this.#nextAt = Math.min(
      this.#expiresAt,
      now + Math.max(MIN_RENEW_RETRANSMIT_MS, (this.#expiresAt - now) / 2),
    );
    const w = this.#message(now, lease.address, 0, DhcpMessageType.REQUEST);
    this.#finishRequestOptions(w);
    this.#counters.requests++;
    this.#send(w, lease.address, 0xffffffff, out);
  }
}

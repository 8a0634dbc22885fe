/**
 * The TCP layer: a {@link TransportProtocol} that validates segments, demultiplexes them by 4-tuple to
 * {@link TcpConnection}s, runs listeners with bounded backlogs, answers segments for closed ports with
 * RSTs (RFC 9293 §3.10.7.1), and keeps every connection's next deadline in a timer heap, so that a poll
 * visits only the connections the application touched or whose timer is due.
 *
 * Driving it (the shell's side):
 * - feed every TCP datagram to {@link TcpLayer.ingress} with the current monotonic time in ms;
 * - call {@link TcpLayer.poll} when its last returned deadline has passed, after a batch of ingress, and
 *   whenever {@link TcpLayer.onPollRequested} fired (the application queued data, read data that opens
 *   the window, or closed); `poll` returns the next deadline or null;
 * - servers: `layer.listen(port, backlog)` → {@link TcpListener}; set `onAcceptable`, then `accept()`
 *   until null. A connection returned by accept is ESTABLISHED (or later: check `readableBytes`,
 *   `peerClosed` and `state` at once, since events before accept had no listener);
 * - clients: `layer.connect(localAddress, remoteAddress, remotePort, now)` → {@link TcpConnection} in
 *   SYN-SENT; its `onEvent` reports OPEN, or CLOSED with `error` "refused"/"timeout".
 *
 * @module
 */

import type {
  Ipv4Datagram,
  Ipv4Sink,
  Ipv6Datagram,
  Ipv6Sink,
  TransportProtocol,
  TransportProtocol6,
} from "../iface/protocol.ts";
import { IPV4_HEADER_LENGTH } from "../wire/ipv4.ts";
import { IPV6_HEADER_LENGTH } from "../wire/ipv6.ts";
import { formatIpv4 } from "../wire/ipv4_address.ts";
import { Ipv6Handles, isIpv6Handle } from "../iface/ipv6_handles.ts";
import type { TxOffload } from "../wire/offload.ts";
import { parseTcpOptions, TCP_MAX_HEADER_LENGTH, TcpFlags, TcpOptions, TcpSegment } from "../wire/tcp.ts";
import { resolveTcpConfig, type TcpConfig, type TcpLayerOptions } from "./config.ts";
import { TcpConnection, type TcpConnectionContext, type TcpState } from "./connection.ts";
import { IsnGenerator } from "./isn.ts";
import { sendReset } from "./reset.ts";
import { seqAdd } from "./seq.ts";
import { type TcpLayerStats, TcpStats } from "./stats.ts";
import { TimerHeap } from "./timer_heap.ts";
import { logger } from "../log.ts";
import { TokenBucket } from "../iface/rate_limiter.ts";
import { MemoryBudget } from "./memory_budget.ts";
import { COOKIE_PERIOD_MS, type CookieOptions, SynCookies } from "./syn_cookie.ts";
import { type CookieSynAck, writeCookieSynAck } from "./syn_cookie_segment.ts";

const log = logger("tcp");

/** First port of the ephemeral range (RFC 6335 §6, IANA dynamic ports). */
export const EPHEMERAL_PORT_FIRST = 49152;
/** Last port of the ephemeral range. */
export const EPHEMERAL_PORT_LAST = 65535;

/**
 * A passive open on a local port (any local address), with a bounded accept backlog; or, made by
 * {@link TcpLayer.listenTransit}, on every address and port of other hosts (`port` 0).
 */
export class TcpListener {
  /** The local port. */
  readonly port: number;
  /** Most half-open plus not-yet-accepted connections; further SYNs are dropped (the peer retries). */
  readonly backlog: number;
  /** Called when {@link accept} has a connection to return. */
  onAcceptable: ((listener: TcpListener) => void) | null = null;
  /** Half-open connections, oldest first, with the time each SYN arrived. */
  readonly #halfOpen = new Map<TcpConnection, number>();
  /** Until when ACKs without a connection are checked for a SYN cookie (cookies were sent recently). */
  cookiesUntil = -Infinity;
  /**
   * No half-open connection can be stale before this time: the layer looks for stale ones only from then
   * on, not on every SYN of a flood. It may be early (the oldest one completed meanwhile), never late.
   * @internal
   */
  halfOpenCheckAt = -Infinity;
  readonly #ready: TcpConnection[] = [];
  readonly #layer: TcpLayer;
  #closed = false;

  /** Created by {@link TcpLayer.listen}. */
  constructor(layer: TcpLayer, port: number, backlog: number) {
    this.#layer = layer;
    this.port = port;
    this.backlog = backlog;
  }

  /** Returns the oldest established, not yet accepted connection, or null. */
  accept(): TcpConnection | null {
    return this.#ready.shift() ?? null;
  }

  /** Connections waiting in {@link accept}. */
  get acceptable(): number {
    return this.#ready.length;
  }

  /** Connections still in the handshake. */
  get halfOpen(): number {
    return this.#halfOpen.size;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stops listening; connections not yet accepted are reset. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#layer.unlisten(this);
    for (const c of this.#halfOpen.keys()) c.abort();
    for (const c of this.#ready) c.abort();
    this.#halfOpen.clear();
    this.#ready.length = 0;
  }

  /** Whether a new SYN fits the backlog. @internal */
  hasRoom(): boolean {
    return !this.#closed && this.#halfOpen.size + this.#ready.length < this.backlog;
  }

  /** Tracks a new half-open connection, created at `now`. @internal */
  addHalfOpen(c: TcpConnection, now: number): void {
    this.#halfOpen.set(c, now);
  }

  /** The oldest half-open connection if it was created before `before`, else null. @internal */
  staleHalfOpen(before: number): TcpConnection | null {
    for (const [c, at] of this.#halfOpen) return at < before ? c : null;
    return null;
  }

  /** When the oldest half-open connection was created; `otherwise` when there is none. @internal */
  oldestHalfOpenAt(otherwise: number): number {
    for (const at of this.#halfOpen.values()) return at;
    return otherwise;
  }

  /** Whether the accept queue has room for one more established connection. @internal */
  acceptRoom(): boolean {
    return !this.#closed && this.#ready.length < this.backlog;
  }

  /** Moves a connection that completed its handshake to the accept queue. @internal */
  established(c: TcpConnection): void {
    if (!this.#halfOpen.delete(c)) return;
    this.#ready.push(c);
    this.onAcceptable?.(this);
  }

  /** Forgets a connection that closed before being accepted. @internal */
  forget(c: TcpConnection): void {
    if (this.#halfOpen.delete(c)) return;
    const i = this.#ready.indexOf(c);
    if (i >= 0) this.#ready.splice(i, 1);
  }
}

/** Budget a new connection needs left over to be admitted: its first send and receive stores. */
const ADMISSION_RESERVE = 64 * 1024;

/**
 * A sink that sends nothing (the SYN,ACK of a connection made from a cookie already went out), for
 * either family: an IPv6 connection's emitter calls `sendIpv6` on it.
 */
const DISCARD: Ipv4Sink & Ipv6Sink = { sendIpv4() {}, sendIpv6() {} };

/** How long cookies sent by a listener are looked for in ACKs: a cookie's own validity (two periods). */
const COOKIE_VALIDITY_MS = COOKIE_PERIOD_MS;

function isUnicast(address: number): boolean {
  // RFC 1122 §4.2.3.10: ignore segments from broadcast or multicast sources (IPv6 multicast is refused
  // before a handle is made, see ingress6).
  if (isIpv6Handle(address)) return true;
  return address !== 0 && address !== 0xffffffff && (address >>> 28) !== 0xe;
}

/**
 * The sink IPv6 connections write to: the emitter calls `sendIpv6` on the sink it is given, so the layer
 * hands them this adapter (retargeted to the IPv6 layer's sink) where IPv4 connections get the IPv4 sink.
 */
class Ipv6Adapter implements Ipv4Sink, Ipv6Sink {
  target: Ipv6Sink | null = null;
  dropped = 0;
  get offloads(): boolean {
    return this.target?.offloads === true;
  }
  sendIpv4(): void {
    throw new Error("tcp: an IPv6 connection sent IPv4");
  }
  sendIpv6(packet: Uint8Array, offload?: TxOffload | null): void {
    if (this.target === null) {
      this.dropped++;
      return;
    }
    this.target.sendIpv6(packet, offload);
  }
}

/** The TCP transport protocol of one stack, over IPv4 and IPv6. */
export class TcpLayer implements TransportProtocol, TransportProtocol6 {
  /** Resolved configuration. */
  readonly config: TcpConfig;
  /** Counters (read them with {@link TcpLayer.stats}). */
  readonly #stats: TcpStats = new TcpStats();
  /** The buffers' shared memory budget (`memoryBudget`). */
  readonly memory: MemoryBudget;
  /**
   * Called when the application queued output (send, recv opening the window, close) so the shell can
   * schedule a {@link poll} soon; the layer sends nothing outside `ingress`/`poll`.
   */
  onPollRequested: (() => void) | null = null;
  /**
   * IPv6 addresses as numbers: an IPv6 connection's `localAddress`/`remoteAddress` are handles from here
   * (see `lib/iface/ipv6_handles.ts`); {@link TcpLayer.formatAddress} turns either family into text.
   */
  readonly handles: Ipv6Handles = new Ipv6Handles();
  readonly #listeners = new Map<number, TcpListener>();
  readonly #adapter6 = new Ipv6Adapter();
  /** The IPv6 datagram seen as an IPv4 one with handles for addresses (reused). */
  readonly #datagram6: Ipv4Datagram = {
    src: 0,
    dst: 0,
    protocol: 6,
    ttl: 0,
    bytes: new Uint8Array(0),
    payloadOffset: 0,
    payloadEnd: 0,
  };
  #transitListener: TcpListener | null = null;
  /** Buckets keyed by remote address × 65536 + remote port. */
  readonly #table = new Map<number, TcpConnection[]>();
  readonly #all = new Set<TcpConnection>();
  readonly #segment = new TcpSegment();
  readonly #options = new TcpOptions();
  readonly #scratch: Uint8Array;
  readonly #isn: IsnGenerator;
  readonly #random: () => number;
  readonly #context: TcpConnectionContext;
  #pollRequested = false;
  /** Connections the application touched since the last poll (two sets used alternately). */
  #dirty = new Set<TcpConnection>();
  #dirtySpare = new Set<TcpConnection>();
  /** Connections by next deadline (each re-queued after its ingress and poll). */
  readonly #timers = new TimerHeap<TcpConnection>();
  /** The connections found due by one poll (reused). */
  readonly #due: TcpConnection[] = [];
  readonly #cookies: SynCookies;
  readonly #cookieOptions: CookieOptions = { windowScale: -1, sackPermitted: false };
  /** A SYN rebuilt from a cookie, handed to the new connection as if it had been received. */
  readonly #cookieSyn = new TcpSegment();
  readonly #cookieSynBytes = new Uint8Array(20);
  readonly #cookieSynOptions = new TcpOptions();
  /** The cookie SYN,ACK being written (reused). */
  readonly #cookieSynAck: CookieSynAck = {
    src: 0,
    srcPort: 0,
    dst: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    timestamps: false,
    tsVal: 0,
    tsEcr: 0,
    windowScaling: false,
    sack: false,
  };
  /** Budget of RSTs answering segments for no connection. */
  readonly #resetLimiter: TokenBucket;
  #challengeWindowStart = -Infinity;
  #challengeAcksInWindow = 0;

  /** Creates a layer; pass `secret` and `random` for deterministic runs. */
  constructor(options: TcpLayerOptions = {}) {
    this.config = resolveTcpConfig(options);
    const secret = this.config.secret ?? crypto.getRandomValues(new Uint8Array(16));
    this.#isn = new IsnGenerator(secret, (handle) => this.handles.address(handle));
    this.#resetLimiter = new TokenBucket(this.config.resetRateLimit, this.config.resetBurst);
    this.#cookies = new SynCookies(secret);
    this.memory = new MemoryBudget(this.config.memoryBudget);
    this.#random = this.config.random ?? (() => crypto.getRandomValues(new Uint32Array(1))[0]);
    // One IP packet of up to 64 KiB: the largest TSO super-segment or configured maxSendSegment, with
    // room for IPv6's longer header.
    this.#scratch = new Uint8Array(
      IPV6_HEADER_LENGTH - IPV4_HEADER_LENGTH +
        Math.max(65536, IPV4_HEADER_LENGTH + TCP_MAX_HEADER_LENGTH + this.config.maxSendSegment),
    );
    // IPv6 connections: the MSS is the IPv6 MTU less 60 bytes of headers (RFC 8200 §8.3), expressed as
    // an IPv4 MTU 20 bytes lower, which the receiver turns into its MSS.
    const mtu6 = this.config.mtu6 || this.config.mtu;
    const config6: TcpConfig = {
      ...this.config,
      mtu: Math.max(68, mtu6 - (IPV6_HEADER_LENGTH - IPV4_HEADER_LENGTH)),
    };
    this.#context = {
      config: this.config,
      config6,
      handles: this.handles,
      stats: this.#stats,
      scratch: this.#scratch,
      isn: this.#isn,
      requestPoll: (c: TcpConnection) => {
        this.#dirty.add(c);
        this.#pollRequested = true;
        this.onPollRequested?.();
      },
      passiveEstablished: (c: TcpConnection) => {
        (c.owner as TcpListener | null)?.established(c);
      },
      memory: this.memory,
      allowChallengeAck: (now: number) => {
        // A fixed one-second window, like Linux's tcp_challenge_ack_limit.
        if (now - this.#challengeWindowStart >= 1000) {
          this.#challengeWindowStart = now;
          this.#challengeAcksInWindow = 0;
        }
        return this.#challengeAcksInWindow++ < this.config.challengeAckLimit;
      },
    };
  }

  /** Whether an application call asked for a poll since the last one. */
  get pollRequested(): boolean {
    return this.#pollRequested;
  }

  /** Starts listening on `port` (all local addresses). Throws if the port already has a listener. */
  listen(port: number, backlog: number = this.config.defaultBacklog): TcpListener {
    if (!(port >= 1 && port <= 65535)) throw new RangeError(`tcp: bad port ${port}`);
    if (this.#listeners.has(port)) throw new Error(`tcp: port ${port} is already listening`);
    const listener = new TcpListener(this, port, Math.max(1, backlog));
    this.#listeners.set(port, listener);
    return listener;
  }

  /**
   * Forwarding mode: listens on every address and port of other hosts, for the segments the IPv4 layer
   * took in as transit (`Ipv4Datagram.transit`). Accepted connections have the address and port the
   * peer asked for as their local ones. Throws if one exists already.
   */
  listenTransit(backlog: number = this.config.defaultBacklog): TcpListener {
    if (this.#transitListener !== null) throw new Error("tcp: a transit listener exists already");
    this.#transitListener = new TcpListener(this, 0, Math.max(1, backlog));
    return this.#transitListener;
  }

  /** Removes a listener (called by {@link TcpListener.close}). @internal */
  unlisten(listener: TcpListener): void {
    if (listener === this.#transitListener) this.#transitListener = null;
    else if (this.#listeners.get(listener.port) === listener) this.#listeners.delete(listener.port);
  }

  /**
   * Active open from `localAddress` (an ephemeral port unless `localPort` is given) to
   * `remoteAddress:remotePort`. The SYN leaves at the next {@link poll}; watch
   * {@link TcpConnection.onEvent} for OPEN or CLOSED (error "refused"/"timeout").
   */
  connect(
    localAddress: number,
    remoteAddress: number,
    remotePort: number,
    now: number,
    localPort?: number,
  ): TcpConnection {
    if (!(remotePort >= 1 && remotePort <= 65535)) throw new RangeError(`tcp: bad port ${remotePort}`);
    let port = localPort ?? 0;
    if (port === 0) {
      const span = EPHEMERAL_PORT_LAST - EPHEMERAL_PORT_FIRST + 1;
      const start = this.#random() % span;
      for (let i = 0; i < span; i++) {
        const candidate = EPHEMERAL_PORT_FIRST + ((start + i) % span);
        if (this.#lookup(localAddress, candidate, remoteAddress, remotePort) === null) {
          port = candidate;
          break;
        }
      }
      if (port === 0) throw new Error("tcp: no free ephemeral port");
    } else if (this.#lookup(localAddress, port, remoteAddress, remotePort) !== null) {
      throw new Error("tcp: connection already exists");
    }
    if (!this.memory.admit(ADMISSION_RESERVE)) throw new Error("tcp: the memory budget is exhausted");
    if (this.#all.size >= this.config.maxConnections) {
      this.#stats.connectsRefused++;
      throw new Error(`tcp: the connection bound (${this.config.maxConnections}) is reached`);
    }
    const c = new TcpConnection(this.#context, localAddress, port, remoteAddress, remotePort, false);
    this.#insert(c);
    c.openActive(now);
    return c;
  }

  /**
   * Active open over IPv6 from `local` (one of the stack's addresses) to `remote:remotePort`; see
   * {@link connect}.
   */
  connect6(local: Uint8Array, remote: Uint8Array, remotePort: number, now: number): TcpConnection {
    const localHandle = this.handles.acquire(local);
    const remoteHandle = this.handles.acquire(remote);
    try {
      return this.connect(localHandle, remoteHandle, remotePort, now);
    } finally {
      // The connection took references of its own (see #insert); these were for the lookup.
      this.handles.release(localHandle);
      this.handles.release(remoteHandle);
    }
  }

  /** An address as `sendReset` takes it: an IPv4 number, or the 16 bytes behind an IPv6 handle. */
  #wire(address: number): number | Uint8Array {
    return isIpv6Handle(address) ? this.handles.address(address) : address;
  }

  /** An address of a connection (an IPv4 number or an IPv6 handle) as text. */
  formatAddress(address: number): string {
    return isIpv6Handle(address) ? this.handles.format(address) : formatIpv4(address);
  }

  /**
   * Handles one segment that came over IPv6 (RFC 8200 §8.1: the pseudo-header has the 128-bit addresses).
   * The addresses become handles and the segment goes the IPv4 way; replies of IPv6 connections leave
   * through `out`.
   */
  ingress6(datagram: Ipv6Datagram, now: number, out: Ipv6Sink): void {
    this.#adapter6.target = out;
    const seg = this.#segment.wrap(datagram.bytes, datagram.payloadOffset, datagram.payloadEnd);
    const error = seg.checkIpv6(
      datagram.bytes,
      this.config.verifyChecksums && datagram.checksumTrusted !== true,
    );
    if (error !== null) {
      this.#stats.segmentsIn++;
      this.#stats.drop(error);
      return;
    }
    if (datagram.multicast) {
      this.#stats.segmentsIn++;
      this.#stats.drop("broadcast");
      return;
    }
    // References for the duration of the call; a connection created meanwhile holds its own.
    const d = this.#datagram6;
    d.src = this.handles.acquire(datagram.src);
    d.dst = this.handles.acquire(datagram.dst);
    d.ttl = datagram.hopLimit;
    d.bytes = datagram.bytes;
    d.payloadOffset = datagram.payloadOffset;
    d.payloadEnd = datagram.payloadEnd;
    d.checksumTrusted = true; // verified above with the IPv6 pseudo-header
    const src = d.src;
    const dst = d.dst;
    try {
      this.ingress(d, now, this.#adapter6);
    } finally {
      this.handles.release(src);
      this.handles.release(dst);
    }
  }

  /** IPv6 connections are polled with the IPv4 ones (see {@link poll}); this only notes the IPv6 sink. */
  poll6(_now: number, out: Ipv6Sink): number | null {
    this.#adapter6.target = out;
    return null;
  }

  /** All connections (any state but CLOSED-and-forgotten). */
  connections(): IterableIterator<TcpConnection> {
    return this.#all.values();
  }

  /** Number of connections. */
  get connectionCount(): number {
    return this.#all.size;
  }

  /** The counters and the connections by state, as a JSON-able object. */
  stats(): TcpLayerStats {
    const stats = this.#stats;
    return {
      connections: this.countByState(),
      ...stats,
      drops: { ...stats.drops },
      maxConnections: this.config.maxConnections,
      memory: this.memory.stats(),
    };
  }

  /** The number of connections in each state. */
  countByState(): Partial<Record<TcpState, number>> {
    const counts: Partial<Record<TcpState, number>> = {};
    for (const c of this.#all) counts[c.state] = (counts[c.state] ?? 0) + 1;
    return counts;
  }

  /** See {@link TransportProtocol.ingress}. */
  ingress(datagram: Ipv4Datagram, now: number, out: Ipv4Sink): void {
    const stats = this.#stats;
    stats.segmentsIn++;
    const seg = this.#segment.wrap(datagram.bytes, datagram.payloadOffset, datagram.payloadEnd);
    const error = seg.check(
      datagram.src,
      datagram.dst,
      this.config.verifyChecksums && datagram.checksumTrusted !== true,
    );
    if (error !== null) {
      stats.drop(error);
      return;
    }
    if (!isUnicast(datagram.src)) {
      stats.drop("broadcast");
      return;
    }
    const flags = seg.flags;
    const c = this.#lookup(datagram.dst, seg.dstPort, datagram.src, seg.srcPort);
    const listener = datagram.transit === true ? this.#transitListener : this.#listeners.get(seg.dstPort);
    if (c === null && listener == null) {
      // No connection, no listener: decided before any further work (a flood of strays is cheap).
      this.#closedPortInput(datagram, seg, now, out);
      return;
    }
    const opts = parseTcpOptions(seg.bytes, seg.optionsOffset, seg.payloadOffset, this.#options);
    let issOverride: number | null = null;
    if (c !== null) {
      const newIncarnation = c.state === "TIME_WAIT" &&
        (flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST)) === TcpFlags.SYN &&
        listener != null && c.acceptsNewIncarnation(seg, opts);
      if (!newIncarnation) {
        stats.segmentsToConnections++;
        try {
          c.ingress(seg, opts, now, out);
        } catch (error) {
          this.#contain(c, error, out);
        }
        if (c.state === "CLOSED") this.#remove(c);
        else this.#noteDeadline(c);
        return;
      }
      // RFC 9293 §3.10.7.4 / RFC 6191: a new SYN may reopen a TIME-WAIT connection; the new ISS lies
      // above the old sequence space, as Linux does (tw_snd_nxt + 65535 + 2).
      issOverride = seqAdd(c.sndNxt, 65537);
      this.#remove(c);
    }
    if (listener != null) {
      this.#listenInput(listener, datagram, seg, opts, now, out, issOverride);
      return;
    }
    this.#closedPortInput(datagram, seg, now, out);
  }

  /** Whether an RST answering a segment for no connection may go out at `now`; counts the refusals. */
  #mayReset(now: number): boolean {
    if (this.#resetLimiter.take(now)) return true;
    this.#stats.resetsRateLimited++;
    return false;
  }

  /** RFC 9293 §3.10.7.1: a segment for a connection that does not exist. */
  #closedPortInput(datagram: Ipv4Datagram, seg: TcpSegment, now: number, out: Ipv4Sink): void {
    const stats = this.#stats;
    stats.drop("no-socket");
    const flags = seg.flags;
    if (flags & TcpFlags.RST) return; // an incoming RST is discarded
    if (!this.#mayReset(now)) return;
    if (flags & TcpFlags.ACK) {
      this.#replyReset(datagram, seg, seg.ack, 0, false, out); // <SEQ=SEG.ACK><CTL=RST>
    } else {
      // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
      this.#replyReset(datagram, seg, 0, seqAdd(seg.seq, seg.sequenceLength), true, out);
    }
  }

  /** Answers `seg` with an RST (`ack` and the ACK flag when `withAck`), counted. */
  #replyReset(
    datagram: Ipv4Datagram,
    seg: TcpSegment,
    seq: number,
    ack: number,
    withAck: boolean,
    out: Ipv4Sink,
  ): void {
    this.#stats.resetsOut++;
    this.#stats.segmentsOut++;
    sendReset(
      this.#scratch,
      out,
      this.#wire(datagram.dst),
      seg.dstPort,
      this.#wire(datagram.src),
      seg.srcPort,
      seq,
      ack,
      withAck,
    );
  }

  /** RFC 9293 §3.10.7.2: a segment for a listening port. */
  #listenInput(
    listener: TcpListener,
    datagram: Ipv4Datagram,
    seg: TcpSegment,
    opts: TcpOptions,
    now: number,
    out: Ipv4Sink,
    issOverride: number | null,
  ): void {
    const stats = this.#stats;
    const flags = seg.flags;
    if (flags & TcpFlags.RST) {
      stats.drop("listen-bad-segment"); // first: an incoming RST is ignored
      return;
    }
    if (flags & TcpFlags.ACK) {
      if (!(flags & TcpFlags.SYN) && now < listener.cookiesUntil) {
        if (this.#cookieInput(listener, datagram, seg, opts, now, out)) return;
        stats.syncookiesFailed++;
        if (isIpv6Handle(datagram.src)) stats.syncookiesFailed6++;
      }
      // second: any ACK is bad here: <SEQ=SEG.ACK><CTL=RST>
      stats.drop("listen-bad-segment");
      if (!this.#mayReset(now)) return;
      this.#replyReset(datagram, seg, seg.ack, 0, false, out);
      return;
    }
    if (!(flags & TcpFlags.SYN)) {
      stats.drop("listen-bad-segment"); // fifth: anything else is dropped
      return;
    }
    // Half-open connections whose SYN,ACK went unanswered this long are given up (spoofed SYNs). Looked
    // for only once the oldest can be stale: during a flood of cookies, not once per SYN.
    const timeout = this.config.halfOpenTimeoutMs;
    if (now >= listener.halfOpenCheckAt) {
      for (
        let stale = listener.staleHalfOpen(now - timeout);
        stale !== null;
        stale = listener.staleHalfOpen(now - timeout)
      ) {
        stats.halfOpenExpired++;
        this.#remove(stale);
      }
      // Any connection added from now on is created at `now` or later.
      listener.halfOpenCheckAt = listener.oldestHalfOpenAt(now) + timeout;
    }
    if (!this.memory.admit(ADMISSION_RESERVE)) {
      stats.drop("memory-pressure"); // no room for another connection's buffers: the peer retries
      return;
    }
    if (this.#all.size >= this.config.maxConnections) {
      stats.drop("connection-limit"); // as many connections as allowed: the peer retries
      return;
    }
    if (!listener.hasRoom()) {
      if (this.config.synCookies && listener.acceptRoom()) {
        this.#sendCookie(listener, datagram, seg, opts, now, out);
        return;
      }
      // Without cookies, the oldest half-open connection gives its place (RFC 4987 §3.5): a flood slower
      // than the SYN,ACK round trip no longer locks legitimate clients out until the entries expire.
      const oldest = this.config.synCookies || !listener.acceptRoom()
        ? null
        : listener.staleHalfOpen(Infinity);
      if (oldest === null) {
        stats.drop("listen-overflow"); // the backlog holds only connections the application has not taken
        return;
      }
      stats.halfOpenEvicted++;
      this.#remove(oldest);
    }
    const c = new TcpConnection(this.#context, datagram.dst, seg.dstPort, datagram.src, seg.srcPort, true);
    c.owner = listener;
    listener.addHalfOpen(c, now);
    this.#insert(c);
    // Third: SYN. Data carried on the SYN is not queued (the peer retransmits it after the handshake).
    c.openPassive(seg, opts, now, out, issOverride);
    this.#noteDeadline(c);
  }

  /**
   * The backlog is full: answer the SYN with a SYN cookie (RFC 4987 §3.6) and keep no state. Window
   * scaling and SACK are offered only when the peer's timestamps can carry them back (as Linux).
   */
  #sendCookie(
    listener: TcpListener,
    datagram: Ipv4Datagram,
    seg: TcpSegment,
    opts: TcpOptions,
    now: number,
    out: Ipv4Sink,
  ): void {
    const v6 = isIpv6Handle(datagram.src);
    const config = v6 ? this.#context.config6 ?? this.config : this.config;
    const src = this.#wire(datagram.src);
    const dst = this.#wire(datagram.dst);
    // Without an MSS option the smallest entry of the family's table is used (536 maps to it).
    const cookie = this.#cookies.issue(
      src,
      seg.srcPort,
      dst,
      seg.dstPort,
      seg.seq,
      opts.mss > 0 ? opts.mss : 536,
      now,
    );
    const timestamps = config.timestamps && opts.hasTimestamps;
    const tsOffset = this.#isn.timestampOffset(datagram.dst, seg.dstPort, datagram.src, seg.srcPort);
    const tsVal = timestamps
      ? SynCookies.encodeTimestamp(
        (Math.floor(now) + tsOffset) >>> 0,
        config.windowScaling ? opts.windowScale : -1,
        config.sack && opts.sackPermitted,
      )
      : 0;
    listener.cookiesUntil = now + 2 * COOKIE_VALIDITY_MS;
    this.#stats.syncookiesSent++;
    if (v6) this.#stats.syncookiesSent6++;
    this.#stats.segmentsOut++;
    // One reused description of the SYN,ACK: a flood of SYNs allocates nothing here.
    const f = this.#cookieSynAck;
    f.src = dst;
    f.srcPort = seg.dstPort;
    f.dst = src;
    f.dstPort = seg.srcPort;
    f.seq = cookie;
    f.ack = seqAdd(seg.seq, 1);
    f.timestamps = timestamps;
    f.tsVal = tsVal;
    f.tsEcr = opts.tsVal;
    f.windowScaling = timestamps && config.windowScaling && opts.windowScale >= 0;
    f.sack = timestamps && config.sack && opts.sackPermitted;
    writeCookieSynAck(this.#scratch, out, config, f);
  }

  /**
   * An ACK to a listener with no connection, while cookies are out: when it returns a valid cookie, the
   * connection is made from it (as if its SYN had been kept) and takes the ACK. Returns whether it did.
   */
  #cookieInput(
    listener: TcpListener,
    datagram: Ipv4Datagram,
    seg: TcpSegment,
    opts: TcpOptions,
    now: number,
    out: Ipv4Sink,
  ): boolean {
    const peerIsn = (seg.seq - 1) >>> 0;
    const mss = this.#cookies.check(
      this.#wire(datagram.src),
      seg.srcPort,
      this.#wire(datagram.dst),
      seg.dstPort,
      peerIsn,
      (seg.ack - 1) >>> 0,
      now,
    );
    if (mss < 0) return false;
    if (!listener.acceptRoom() || !this.memory.admit(ADMISSION_RESERVE)) {
      // A valid cookie, but no room to accept: dropped without a RST (the peer's retransmission of
      // this ACK or of its data finds room later), as Linux does with a full accept queue.
      this.#stats.drop("listen-overflow");
      return true;
    }
    if (this.#all.size >= this.config.maxConnections) {
      this.#stats.drop("connection-limit"); // likewise: the peer retries
      return true;
    }
    this.#stats.syncookiesValidated++;
    if (isIpv6Handle(datagram.src)) this.#stats.syncookiesValidated6++;
    // The SYN the peer sent, rebuilt: its sequence number, and the options the cookie and TSecr carry.
    const syn = this.#cookieSynBytes;
    syn.fill(0);
    syn[0] = seg.srcPort >> 8;
    syn[1] = seg.srcPort & 0xff;
    syn[2] = seg.dstPort >> 8;
    syn[3] = seg.dstPort & 0xff;
    syn[4] = peerIsn >>> 24;
    syn[5] = (peerIsn >>> 16) & 0xff;
    syn[6] = (peerIsn >>> 8) & 0xff;
    syn[7] = peerIsn & 0xff;
    syn[12] = 5 << 4;
    syn[13] = TcpFlags.SYN;
    syn[14] = seg.window >> 8;
    syn[15] = seg.window & 0xff;
    const synOpts = this.#cookieSynOptions;
    synOpts.reset();
    synOpts.mss = mss;
    if (opts.hasTimestamps) {
      const recovered = SynCookies.decodeTimestamp(opts.tsEcr, this.#cookieOptions);
      synOpts.hasTimestamps = true;
      synOpts.tsVal = opts.tsVal;
      synOpts.windowScale = recovered.windowScale;
      synOpts.sackPermitted = recovered.sackPermitted;
    }
    const c = new TcpConnection(this.#context, datagram.dst, seg.dstPort, datagram.src, seg.srcPort, true);
    c.owner = listener;
    listener.addHalfOpen(c, now);
    this.#insert(c);
    // The SYN,ACK went out with the cookie already: the one the connection makes now (its ISS the
    // cookie) goes nowhere, and is not counted as sent.
    c.openPassive(this.#cookieSyn.wrap(syn, 0, 20), synOpts, now, DISCARD, (seg.ack - 1) >>> 0);
    this.#stats.segmentsOut--;
    try {
      c.ingress(seg, opts, now, out);
    } catch (error) {
      this.#contain(c, error, out);
    }
    if (c.state === "CLOSED") this.#remove(c);
    else this.#noteDeadline(c);
    return true;
  }

  /**
   * Keeps a failure inside one connection (a broken invariant, or an exception thrown by the
   * application's `onEvent` callback) from escaping `ingress`/`poll`: count it, log it, and reset that
   * connection; the rest of the stack carries on.
   */
  #contain(c: TcpConnection, error: unknown, out: Ipv4Sink): void {
    this.#stats.drop("internal-error");
    log.debug("connection {port} reset after an exception: {error}", { port: c.localPort, error });
    try {
      c.onEvent = null;
      c.abort();
      c.poll(Number.NEGATIVE_INFINITY, out);
    } catch {
      // Nothing more can be done for this connection; it is removed by the caller.
    }
  }

  /**
   * See {@link TransportProtocol.poll}. Visits the connections the application touched since the last
   * poll, then those whose deadline is due (taken from the timer heap, O(log n) each): a poll costs
   * O((touched + due) log n), never O(connections). A queued deadline may be early (a timer moved later
   * unseen, e.g. the application read data): polling such a connection costs one visit and re-queues it
   * at its real deadline. Returns the earliest deadline left.
   */
  poll(now: number, out: Ipv4Sink): number | null {
    this.#pollRequested = false;
    const dirty = this.#dirty;
    this.#dirty = this.#dirtySpare;
    this.#dirtySpare = dirty;
    for (const c of dirty) this.#pollOne(c, now, out);
    dirty.clear();
    // Take every due connection out first, then poll them: one that stays due (its deadline at or before
    // `now` again) is polled at the next call, not over and over in this one.
    const timers = this.#timers;
    const due = this.#due;
    for (let c = timers.popDue(now); c !== null; c = timers.popDue(now)) due.push(c);
    for (let i = 0; i < due.length; i++) this.#pollOne(due[i], now, out);
    due.length = 0;
    const next = timers.earliest;
    return next === Infinity ? null : next;
  }

  /** Polls one connection, forgetting it once CLOSED, and queues its next deadline. */
  #pollOne(c: TcpConnection, now: number, out4: Ipv4Sink): void {
    if (!this.#all.has(c)) return; // removed since it was marked dirty
    const out = isIpv6Handle(c.localAddress) ? this.#adapter6 : out4;
    let deadline: number | null;
    try {
      deadline = c.poll(now, out);
    } catch (error) {
      this.#contain(c, error, out);
      deadline = null;
    }
    if (c.state === "CLOSED") this.#remove(c);
    else this.#timers.schedule(c, deadline);
  }

  /** Queues `c` at its next deadline after it processed input. */
  #noteDeadline(c: TcpConnection): void {
    this.#timers.schedule(c, c.nextDeadline());
  }

  #key(remoteAddress: number, remotePort: number): number {
    return remoteAddress * 65536 + remotePort;
  }

  #lookup(
    localAddress: number,
    localPort: number,
    remoteAddress: number,
    remotePort: number,
  ): TcpConnection | null {
    const bucket = this.#table.get(this.#key(remoteAddress, remotePort));
    if (bucket === undefined) return null;
    for (let i = 0; i < bucket.length; i++) {
      const c = bucket[i];
      if (c.localPort === localPort && c.localAddress === localAddress) return c;
    }
    return null;
  }

  #insert(c: TcpConnection): void {
    const key = this.#key(c.remoteAddress, c.remotePort);
    const bucket = this.#table.get(key);
    if (bucket === undefined) this.#table.set(key, [c]);
    else bucket.push(c);
    this.#all.add(c);
    if (isIpv6Handle(c.localAddress)) {
      this.handles.acquire(this.handles.address(c.localAddress));
      this.handles.acquire(this.handles.address(c.remoteAddress));
    }
  }

  #remove(c: TcpConnection): void {
    if (!this.#all.delete(c)) return;
    this.#timers.remove(c);
    const key = this.#key(c.remoteAddress, c.remotePort);
    const bucket = this.#table.get(key);
    if (bucket !== undefined) {
      const i = bucket.indexOf(c);
      if (i >= 0) bucket.splice(i, 1);
      if (bucket.length === 0) this.#table.delete(key);
    }
    const listener = c.owner as TcpListener | null;
    if (listener !== null) listener.forget(c);
    this.handles.release(c.localAddress);
    this.handles.release(c.remoteAddress);
  }
}

/**
 * Tunables of the TCP layer, with defaults close to Linux where RFCs leave room.
 *
 * @module
 */

/** Names of the congestion controllers available. */
export type CongestionControlName = "cubic" | "newreno";

/** Options for a {@link TcpLayer}; every field is optional in {@link TcpLayerOptions}. */
export interface TcpConfig {
  /** Link MTU; the advertised MSS is MTU − 40 (RFC 9293 §3.7.1, RFC 879). Default 1500. */
  mtu: number;
  /** IPv6 MTU (e.g. from a router advertisement); the MSS of IPv6 connections is MTU − 60. 0: `mtu`. */
  mtu6: number;
  /**
   * Largest payload the sender puts in one segment, when above the peer's MSS (TSO: a lower layer
   * splits it). Default 0: the effective MSS. At most 65495.
   */
  maxSendSegment: number;
  /** Send buffer bytes. Default 1 MiB. */
  sendBufferSize: number;
  /** Receive buffer bytes, which bounds the advertised (scaled) window. Default 1 MiB (≥ 256 KiB). */
  recvBufferSize: number;
  /** Most disjoint out-of-order ranges kept for reassembly (RFC 9293 §3.10.7.4 allows any bound). */
  maxOutOfOrderRanges: number;
  /** TIME-WAIT duration, 2×MSL (RFC 9293 §3.4.2). Default 60 000 ms (Linux's fixed 60 s). */
  timeWaitMs: number;
  /** How long an application-closed connection may sit in FIN-WAIT-2 (Linux tcp_fin_timeout). */
  finWait2TimeoutMs: number;
  /** Initial RTO (RFC 6298 §2.1: 1 s). */
  rtoInitialMs: number;
  /**
   * Lower bound of the RTO. RFC 6298 §2.4 says 1 s; we default to 200 ms like Linux (TCP_RTO_MIN),
   * which RFC 6298 permits as a considered deviation for faster loss recovery.
   */
  rtoMinMs: number;
  /** Upper bound of the RTO (RFC 6298 §2.5: at least 60 s). Default 120 000 ms like Linux. */
  rtoMaxMs: number;
  /** Retransmissions of one segment before the connection aborts with a timeout (Linux tcp_retries2 15). */
  maxRetries: number;
  /** SYN retransmissions before connect fails (Linux tcp_syn_retries 6). */
  maxSynRetries: number;
  /** Delayed-ACK timeout (RFC 9293 §3.8.6.3: < 0.5 s). Default 40 ms like Linux's minimum. */
  delayedAckMs: number;
  /** Send keepalives (RFC 9293 §3.8.4); off by default. */
  keepalive: boolean;
  /** Idle time before the first keepalive (RFC 1122: ≥ 2 h). */
  keepaliveIdleMs: number;
  /** Interval between unanswered keepalives. */
  keepaliveIntervalMs: number;
  /** Unanswered keepalives before the connection aborts. */
  keepaliveCount: number;
  /** Congestion controller. Default CUBIC (RFC 9438). */
  congestionControl: CongestionControlName;
  /** Disables Nagle's algorithm (RFC 9293 §3.7.4) for new connections. */
  noDelay: boolean;
  /** Offer/accept window scaling (RFC 7323). */
  windowScaling: boolean;
  /** Offer/accept timestamps (RFC 7323). */
  timestamps: boolean;
  /** Offer/accept SACK (RFC 2018). */
  sack: boolean;
  /**
   * Pending plus accepted connections per listener when `listen` gives no backlog. Default 1024: a burst
   * of handshakes completes within one drained batch, before the application accepts any (Linux's
   * somaxconn is 4096); past it SYN cookies answer, so a large backlog is not needed against floods.
   */
  defaultBacklog: number;
  /** Challenge ACKs (RFC 5961 §7) the layer sends per second at most; Linux's default is 1000. */
  challengeAckLimit: number;
  /**
   * RSTs per second at most in answer to segments for no connection (RFC 9293 §3.10.7.1), so that a flood
   * of stray segments is not answered one for one (no amplification, and no write per flooded packet);
   * the budget refills continuously, like Linux's ICMP limit. Default 1000.
   */
  resetRateLimit: number;
  /** Burst of such RSTs allowed at once (a port scan's worth). Default 200. */
  resetBurst: number;
  /**
   * Bytes all connections' send and receive buffers may hold together (like Linux's tcp_mem). Buffers
   * start empty and grow with use up to their size; past the budget growth is refused and new
   * connections are refused (counted in `memory`). Default 256 MiB.
   */
  memoryBudget: number;
  /**
   * Connections the layer holds at once, in every state (half-open and TIME-WAIT included). Idle
   * connections hold no buffer, so the memory budget alone does not bound them: past this bound a SYN is
   * dropped (counted as `connection-limit`; the peer retries) and `connect` throws. Default 65536.
   */
  maxConnections: number;
  /**
   * Answer SYNs with SYN cookies when a listener's backlog is full (RFC 4987 §3.6), so that a SYN flood
   * does not lock legitimate clients out. Default true.
   */
  synCookies: boolean;
  /**
   * A half-open connection (SYN received, SYN,ACK sent) is given up silently after this long: the SYN,ACK
   * and two retransmissions (at 1 s and 3 s) went unanswered; spoofed SYNs do not hold the backlog for
   * minutes. Default 7000 ms.
   */
  halfOpenTimeoutMs: number;
  /**
   * Least interval between ACKs answering unacceptable segments without data (Linux
   * tcp_invalid_ratelimit, 500 ms): protection against ACK storms between desynchronised ends.
   */
  invalidAckIntervalMs: number;
  /** Verify checksums of received segments (off only for checksum-offloaded input). */
  verifyChecksums: boolean;
  /** Secret for RFC 6528 ISNs and timestamp offsets; 16 bytes. Default: random from `crypto`. */
  secret: Uint8Array | null;
  /** Random 32-bit numbers (ephemeral ports); default from `crypto`. Inject for determinism. */
  random: (() => number) | null;
}

/** Partial options accepted by the layer constructor. */
export type TcpLayerOptions = Partial<TcpConfig>;

/** The defaults. */
export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = {
  mtu: 1500,
  mtu6: 0,
  maxSendSegment: 0,
  sendBufferSize: 1 << 20,
  recvBufferSize: 1 << 20,
  maxOutOfOrderRanges: 64,
  timeWaitMs: 60_000,
  finWait2TimeoutMs: 60_000,
  rtoInitialMs: 1000,
  rtoMinMs: 200,
  rtoMaxMs: 120_000,
  maxRetries: 15,
  maxSynRetries: 6,
  delayedAckMs: 40,
  keepalive: false,
  keepaliveIdleMs: 7_200_000,
  keepaliveIntervalMs: 75_000,
  keepaliveCount: 9,
  congestionControl: "cubic",
  noDelay: false,
  windowScaling: true,
  timestamps: true,
  sack: true,
  defaultBacklog: 1024,
  challengeAckLimit: 1000,
  resetRateLimit: 1000,
  resetBurst: 200,
  memoryBudget: 256 << 20,
  maxConnections: 65536,
  synCookies: true,
  halfOpenTimeoutMs: 7000,
  invalidAckIntervalMs: 500,
  verifyChecksums: true,
  secret: null,
  random: null,
};

/** Fills defaults and validates ranges; throws `RangeError` for impossible values (programming errors). */
export function resolveTcpConfig(options: TcpLayerOptions = {}): TcpConfig {
  const config: TcpConfig = { ...DEFAULT_TCP_CONFIG, ...options };
  if (!(config.mtu >= 68 && config.mtu <= 65535)) throw new RangeError(`tcp: bad mtu ${config.mtu}`);
  if (config.maxSendSegment < 0 || config.maxSendSegment > 65495) {
    throw new RangeError(`tcp: bad maxSendSegment ${config.maxSendSegment}`);
  }
  if (config.sendBufferSize < 1 || config.recvBufferSize < 1) throw new RangeError("tcp: bad buffer size");
  if (config.recvBufferSize > (1 << 30)) throw new RangeError("tcp: receive buffer above 1 GiB");
  if (config.rtoMinMs <= 0 || config.rtoMaxMs < config.rtoMinMs) throw new RangeError("tcp: bad RTO bounds");
  if (!(config.memoryBudget > 0)) throw new RangeError("tcp: the memory budget must be positive");
  if (!(config.maxConnections >= 1)) throw new RangeError("tcp: the connection bound must be ≥ 1");
  if (config.secret !== null && config.secret.length !== 16) {
    throw new RangeError("tcp: secret must be 16 bytes");
  }
  return config;
}

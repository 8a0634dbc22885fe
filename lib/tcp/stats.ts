/**
 * TCP counters: segments, retransmissions, connection events and drops by named reason.
 *
 * @module
 */

import type { MemoryBudgetStats } from "./memory_budget.ts";

/** Why a received segment was dropped; each reason has a counter in {@link TcpStats.drops}. */
export type TcpDropReason =
  | "truncated"
  | "bad-offset"
  | "bad-checksum"
  | "no-socket"
  | "out-of-window"
  | "paws"
  | "bad-ack"
  | "no-ack"
  | "listen-overflow"
  | "listen-bad-segment"
  | "ooo-queue-full"
  | "buffer-full"
  | "syn-sent-bad"
  | "rst-out-of-window"
  | "after-close"
  | "broadcast"
  | "challenge-ack-limit"
  | "internal-error"
  | "memory-pressure"
  | "connection-limit";

/** All drop reasons, for iteration. */
export const TCP_DROP_REASONS: readonly TcpDropReason[] = [
  "truncated",
  "bad-offset",
  "bad-checksum",
  "no-socket",
  "out-of-window",
  "paws",
  "bad-ack",
  "no-ack",
  "listen-overflow",
  "listen-bad-segment",
  "ooo-queue-full",
  "buffer-full",
  "syn-sent-bad",
  "rst-out-of-window",
  "after-close",
  "broadcast",
  "challenge-ack-limit",
  "internal-error",
  "memory-pressure",
  "connection-limit",
];

/** What `TcpLayer.stats()` returns: every counter of {@link TcpStats}, the connections by state, the memory budget. */
export type TcpLayerStats = Omit<TcpStats, "drop" | "drops"> & {
  /** Connections by state (RFC 9293 §3.3.2 names). */
  connections: Partial<Record<string, number>>;
  /** Dropped segments by reason. */
  drops: Record<TcpDropReason, number>;
  /** The bound on connections held at once (`maxConnections`); refusals are the `connection-limit` drops. */
  maxConnections: number;
  /** The buffers' shared memory budget: limit, use, refusals. */
  memory: MemoryBudgetStats;
};

/** Counters of one TCP layer; plain mutable numbers the layer and its connections increment. */
export class TcpStats {
  /** Segments received (before validation). */
  segmentsIn = 0;
  /** Segments handed to an existing connection (the others were dropped by the layer or went to a listener). */
  segmentsToConnections = 0;
  /** Segments sent. */
  segmentsOut = 0;
  /** Payload bytes received in order and delivered to the receive buffer. */
  bytesIn = 0;
  /** Payload bytes sent (retransmissions included). */
  bytesOut = 0;
  /** Segments retransmitted (RTO, fast retransmit and SACK recovery). */
  retransmissions = 0;
  /** Retransmissions found lost again during fast recovery (and resent without waiting for the RTO). */
  lostRetransmissions = 0;
  /** Retransmission timer expirations. */
  rtoExpirations = 0;
  /** Fast retransmit / recovery entries. */
  fastRecoveries = 0;
  /** RSTs sent. */
  resetsOut = 0;
  /** RSTs not sent in answer to segments for no connection, by the rate limit (`resetRateLimit`). */
  resetsRateLimited = 0;
  /** SYN,ACKs sent with a SYN cookie (the backlog was full), keeping no state. */
  syncookiesSent = 0;
  /** ACKs that returned a valid cookie and became connections. */
  syncookiesValidated = 0;
  /** ACKs to a listener that sent cookies recently, with no connection and no valid cookie. */
  syncookiesFailed = 0;
  /** Of {@link syncookiesSent}, those sent over IPv6 (the rest went over IPv4). */
  syncookiesSent6 = 0;
  /** Of {@link syncookiesValidated}, those over IPv6. */
  syncookiesValidated6 = 0;
  /** Of {@link syncookiesFailed}, those over IPv6. */
  syncookiesFailed6 = 0;
  /** Half-open connections given up after `halfOpenTimeoutMs` (their SYN,ACK unanswered). */
  halfOpenExpired = 0;
  /** Half-open connections that gave their place to a new SYN: backlog full, SYN cookies off. */
  halfOpenEvicted = 0;
  /** RSTs received and accepted. */
  resetsIn = 0;
  /** Challenge ACKs sent (RFC 5961). */
  challengeAcks = 0;
  /** Active opens (connect). */
  activeOpens = 0;
  /** Active opens refused because the layer held `maxConnections` connections already. */
  connectsRefused = 0;
  /** Passive opens (SYN accepted by a listener). */
  passiveOpens = 0;
  /** Connections that reached ESTABLISHED. */
  established = 0;
  /** Connections aborted by the retransmission limit. */
  timeouts = 0;
  /** Recoveries undone because the retransmission proved spurious (RFC 3522 Eifel detection). */
  spuriousRecoveries = 0;
  /** Tail loss probes sent (RFC 8985 §7). */
  tailLossProbes = 0;
  /** ACKs not sent in answer to unacceptable segments, by the rate limit (ACK-storm protection). */
  invalidAcksSuppressed = 0;
  /** Zero-window probes sent. */
  windowProbes = 0;
  /** Keepalive probes sent. */
  keepaliveProbes = 0;
  /** Dropped segments by reason. */
  readonly drops: Record<TcpDropReason, number> = Object.fromEntries(
    TCP_DROP_REASONS.map((r) => [r, 0]),
  ) as Record<TcpDropReason, number>;

  /** Counts one drop. */
  drop(reason: TcpDropReason): void {
    this.drops[reason]++;
  }
}

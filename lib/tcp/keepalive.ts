/**
 * The keepalive timer (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): after an idle period, probes at an
 * interval; the connection times out after too many unanswered probes. Off unless configured.
 *
 * @module
 */

import type { TcpConfig } from "./config.ts";

/** What an expired keepalive timer asks of the connection (see {@link KeepaliveTimer.expire}). */
export const enum KeepaliveAction {
  /** Nothing (not applicable now). */
  None = 0,
  /** Send a probe. */
  Probe = 1,
  /** Too many probes went unanswered: the connection timed out. */
  TimedOut = 2,
}

/** One connection's keepalive state. */
export class KeepaliveTimer {
  /** Deadline (Infinity when stopped). */
  deadline = Infinity;
  #unanswered = 0;
  readonly #config: TcpConfig;

  /** A timer following `config`'s keepalive settings. */
  constructor(config: TcpConfig) {
    this.#config = config;
  }

  /** A segment arrived: the peer is alive; the idle period starts again at the next {@link arm}. */
  onSegment(): void {
    this.#unanswered = 0;
    this.deadline = Infinity;
  }

  /** Starts the idle period at `now` unless the timer is armed (or keepalives are off). */
  arm(now: number): void {
    if (this.#config.keepalive && this.deadline === Infinity) {
      this.deadline = now + this.#config.keepaliveIdleMs;
    }
  }

  /** Stops the timer. */
  stop(): void {
    this.deadline = Infinity;
  }

  /**
   * The deadline passed at `now`. `idle` says whether a probe applies (a connection that can send with
   * nothing in flight; with data in flight the RTO watches the peer). A probe rearms the interval.
   */
  expire(now: number, idle: boolean): KeepaliveAction {
    this.deadline = Infinity;
    if (!idle) return KeepaliveAction.None;
    if (this.#unanswered >= this.#config.keepaliveCount) return KeepaliveAction.TimedOut;
    this.#unanswered++;
    this.deadline = now + this.#config.keepaliveIntervalMs;
    return KeepaliveAction.Probe;
  }
}

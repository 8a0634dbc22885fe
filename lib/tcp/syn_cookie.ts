/**
 * SYN cookies (RFC 4987 §3.6), as Linux makes them: when a listener's backlog is full, the SYN,ACK's
 * sequence number carries what the connection needs, and no state is kept until the peer's ACK returns
 * it. The cookie is
 *
 *   ISS = H1(tuple) + peer ISN + (count << 24) + ((H2(tuple, count) + mssIndex) mod 2^24)
 *
 * with `count` a 64-second clock (a cookie is accepted for up to two periods), H1 and H2 SipHash-2-4
 * under keys derived from the stack's secret, and `mssIndex` one of four MSS values (Linux's table). The
 * peer's window scale and SACK-permitted go in the low 6 bits of our timestamp (TSval), which the peer
 * echoes in every segment: without timestamps a cookie connection has neither (as on Linux).
 *
 * @module
 */

import { sipHash24 } from "./isn.ts";

/** MSS values a cookie can carry (Linux's msstab for IPv4). */
export const COOKIE_MSS_TABLE: readonly number[] = [536, 1300, 1440, 1460];

/** Length of one cookie period in ms; a cookie is valid in its period and the next. */
export const COOKIE_PERIOD_MS = 64_000;

/** Bits of TSval that carry options (Linux TSBITS). */
const TS_BITS = 6;
const TS_MASK = (1 << TS_BITS) - 1;
/** Window scale field meaning "no window scaling". */
const WSCALE_NONE = 0x0f;
const TS_SACK = 1 << 4;

/** Options of a connection recovered from a cookie's timestamp. */
export interface CookieOptions {
  /** The peer's window scale, or -1 without window scaling. */
  windowScale: number;
  /** Whether the peer offered SACK. */
  sackPermitted: boolean;
}

/** Makes and checks the cookies of one stack (one secret). Reuses its buffers: no allocation per SYN. */
export class SynCookies {
  readonly #key1: Uint8Array;
  readonly #key2: Uint8Array;
  readonly #message = new Uint8Array(16);
  readonly #view = new DataView(this.#message.buffer);
  readonly #out = new Uint32Array(2);
  readonly #state = new Uint32Array(10);

  /** Derives the two hash keys from the stack's 16-byte secret. */
  constructor(secret: Uint8Array) {
    this.#key1 = SynCookies.#derive(secret, 1);
    this.#key2 = SynCookies.#derive(secret, 2);
  }

  static #derive(secret: Uint8Array, label: number): Uint8Array {
    const key = new Uint8Array(16);
    const view = new DataView(key.buffer);
    for (let half = 0; half < 2; half++) {
      const h = sipHash24(secret, new Uint8Array([0x53, 0x59, 0x4e, label, half]));
      view.setUint32(8 * half, h[0]);
      view.setUint32(8 * half + 4, h[1]);
    }
    return key;
  }

  #hash(key: Uint8Array, src: number, srcPort: number, dst: number, dstPort: number, count: number): number {
    const v = this.#view;
    v.setUint32(0, src);
    v.setUint32(4, dst);
    v.setUint16(8, srcPort);
    v.setUint16(10, dstPort);
    v.setUint32(12, count);
    return sipHash24(key, this.#message, count < 0 ? 12 : 16, this.#out, this.#state)[1];
  }

  /** The cookie period at `now` (8 bits). */
  static count(now: number): number {
    return Math.floor(now / COOKIE_PERIOD_MS) & 0xff;
  }

  /** The index in {@link COOKIE_MSS_TABLE} of the largest value not above `mss` (0 when none is). */
  static mssIndex(mss: number): number {
    let index = 0;
    for (let i = 0; i < COOKIE_MSS_TABLE.length; i++) if (COOKIE_MSS_TABLE[i] <= mss) index = i;
    return index;
  }

  /**
   * The cookie (our ISS) for a SYN from `src:srcPort` to our `dst:dstPort` with sequence number
   * `peerIsn` and MSS option `mss` (536 when absent).
   */
  issue(
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    peerIsn: number,
    mss: number,
    now: number,
  ): number {
    const count = SynCookies.count(now);
    const h1 = this.#hash(this.#key1, src, srcPort, dst, dstPort, -1);
    const h2 = this.#hash(this.#key2, src, srcPort, dst, dstPort, count);
    return (h1 + peerIsn + count * 0x1000000 + ((h2 + SynCookies.mssIndex(mss)) & 0xffffff)) >>> 0;
  }

  /**
   * Checks the cookie returned by an ACK (`cookie` = SEG.ACK - 1, `peerIsn` = SEG.SEQ - 1); returns the
   * MSS it carries, or -1 when it is not one of ours or is too old.
   */
  check(
    src: number,
    srcPort: number,
    dst: number,
    dstPort: number,
    peerIsn: number,
    cookie: number,
    now: number,
  ): number {
    const h1 = this.#hash(this.#key1, src, srcPort, dst, dstPort, -1);
    const x = (cookie - h1 - peerIsn) >>> 0;
    const count = x >>> 24;
    if (((SynCookies.count(now) - count) & 0xff) > 1) return -1;
    const h2 = this.#hash(this.#key2, src, srcPort, dst, dstPort, count);
    const index = ((x & 0xffffff) - h2) & 0xffffff;
    return index < COOKIE_MSS_TABLE.length ? COOKIE_MSS_TABLE[index] : -1;
  }

  /**
   * Our TSval for a cookie SYN,ACK: the current one (`tsNow`) with its low bits replaced by the peer's
   * window scale (-1: none) and SACK-permitted, rounded down so that it never runs ahead of our clock.
   */
  static encodeTimestamp(tsNow: number, windowScale: number, sackPermitted: boolean): number {
    const options = (windowScale >= 0 ? Math.min(windowScale, 14) : WSCALE_NONE) |
      (sackPermitted ? TS_SACK : 0);
    let ts = ((tsNow & ~TS_MASK) | options) >>> 0;
    if (((ts - tsNow) | 0) > 0) ts = (ts - (TS_MASK + 1)) >>> 0;
    return ts;
  }

  /** The options a cookie connection's peer offered, from the TSecr of its ACK. */
  static decodeTimestamp(tsEcr: number, into: CookieOptions): CookieOptions {
    const scale = tsEcr & WSCALE_NONE;
    into.windowScale = scale === WSCALE_NONE ? -1 : Math.min(scale, 14);
    into.sackPermitted = (tsEcr & TS_SACK) !== 0;
    return into;
  }
}

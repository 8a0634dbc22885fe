/**
 * SYN cookies (RFC 4987 §3.6), as Linux makes them: when a listener's backlog is full, the SYN,ACK's
 * sequence number carries what the connection needs, and no state is kept until the peer's ACK returns
 * it. The cookie is
 *
 *   ISS = H1(tuple) + peer ISN + (count << 24) + ((H2(tuple, count) + mssIndex) mod 2^24)
 *
 * with `count` a 64-second clock (a cookie is accepted for up to two periods), H1 and H2 SipHash-2-4
 * under keys derived from the stack's secret, and `mssIndex` one of four MSS values (Linux's table). Over
 * IPv6 the tuple hashed holds the two 128-bit addresses (as Linux's `__cookie_v6_init_sequence`) and the
 * MSS table is Linux's `msstab` for IPv6, the common IPv6 path MTUs less 60 bytes of headers. The
 * peer's window scale and SACK-permitted go in the low 6 bits of our timestamp (TSval), which the peer
 * echoes in every segment: without timestamps a cookie connection has neither (as on Linux).
 *
 * @module
 */

import { sipHash24 } from "./isn.ts";

/** MSS values a cookie can carry over IPv4 (Linux's msstab for IPv4). */
export const COOKIE_MSS_TABLE: readonly number[] = [536, 1300, 1440, 1460];

/**
 * MSS values a cookie can carry over IPv6 (Linux's msstab for IPv6): the minimum IPv6 MTU (RFC 8200 §5),
 * a tunnelled Ethernet path, Ethernet and jumbo frames, each less 40 (IPv6) and 20 (TCP) bytes.
 */
export const COOKIE_MSS_TABLE6: readonly number[] = [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60];

/** An address as cookies take it: an IPv4 address as a number, or the 16 bytes of an IPv6 address. */
export type CookieAddress = number | Uint8Array;

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
  /** The hashed tuple: 16 bytes over IPv4, 40 over IPv6 (addresses, ports, count). */
  readonly #message = new Uint8Array(40);
  readonly #view = new DataView(this.#message.buffer);
  readonly #out = new Uint32Array(2);

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

  #hash(
    key: Uint8Array,
    src: CookieAddress,
    srcPort: number,
    dst: CookieAddress,
    dstPort: number,
    count: number,
  ): number {
    const v = this.#view;
    let o: number;
    if (typeof src === "number") {
      v.setUint32(0, src);
      v.setUint32(4, dst as number);
      o = 8;
    } else {
      this.#message.set(src.subarray(0, 16), 0);
      this.#message.set((dst as Uint8Array).subarray(0, 16), 16);
      o = 32;
    }
    v.setUint16(o, srcPort);
    v.setUint16(o + 2, dstPort);
    v.setUint32(o + 4, count);
    return sipHash24(key, this.#message, count < 0 ? o + 4 : o + 8, this.#out)[1];
  }

  /** The cookie period at `now` (8 bits). */
  static count(now: number): number {
    return Math.floor(now / COOKIE_PERIOD_MS) & 0xff;
  }

  /** The MSS table of an address's family. */
  static table(address: CookieAddress): readonly number[] {
    return typeof address === "number" ? COOKIE_MSS_TABLE : COOKIE_MSS_TABLE6;
  }

  /**
   * The index in `table` ({@link COOKIE_MSS_TABLE} by default) of the largest value not above `mss` (0
   * when none is: the smallest, as Linux).
   */
  static mssIndex(mss: number, table: readonly number[] = COOKIE_MSS_TABLE): number {
    let index = 0;
    for (let i = 0; i < table.length; i++) if (table[i] <= mss) index = i;
    return index;
  }

  /**
   * The cookie (our ISS) for a SYN from `src:srcPort` to our `dst:dstPort` with sequence number
   * `peerIsn` and MSS option `mss` (536 when absent over IPv4, 1220 over IPv6). Both addresses are of one
   * family: numbers (IPv4) or 16 bytes (IPv6).
   */
  issue(
    src: CookieAddress,
    srcPort: number,
    dst: CookieAddress,
    dstPort: number,
    peerIsn: number,
    mss: number,
    now: number,
  ): number {
    const count = SynCookies.count(now);
    const h1 = this.#hash(this.#key1, src, srcPort, dst, dstPort, -1);
    const h2 = this.#hash(this.#key2, src, srcPort, dst, dstPort, count);
    const index = SynCookies.mssIndex(mss, SynCookies.table(src));
    return (h1 + peerIsn + count * 0x1000000 + ((h2 + index) & 0xffffff)) >>> 0;
  }

  /**
   * Checks the cookie returned by an ACK (`cookie` = SEG.ACK - 1, `peerIsn` = SEG.SEQ - 1); returns the
   * MSS it carries, or -1 when it is not one of ours or is too old.
   */
  check(
    src: CookieAddress,
    srcPort: number,
    dst: CookieAddress,
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
    const table = SynCookies.table(src);
    return index < table.length ? table[index] : -1;
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

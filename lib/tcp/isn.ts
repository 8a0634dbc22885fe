/**
 * Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport,
 * secretkey), with M a 4 µs clock and F SipHash-2-4 keyed by a per-run secret (as Linux). The same hash
 * also yields a per-connection timestamp offset (RFC 7323 §5.4).
 *
 * @module
 */

/** SipHash-2-4 state words as [v0hi, v0lo, v1hi, v1lo, v2hi, v2lo, v3hi, v3lo]. */
type SipState = Uint32Array;

function rotl(s: SipState, i: number, n: number): void {
  let h = s[i], l = s[i + 1];
  if (n >= 32) {
    const t = h;
    h = l;
    l = t;
    n -= 32;
  }
  if (n > 0) {
    const nh = (h << n) | (l >>> (32 - n));
    const nl = (l << n) | (h >>> (32 - n));
    h = nh;
    l = nl;
  }
  s[i] = h;
  s[i + 1] = l;
}

function add(s: SipState, i: number, j: number): void {
  const lo = s[i + 1] + s[j + 1];
  s[i] = s[i] + s[j] + (lo > 0xffffffff ? 1 : 0);
  s[i + 1] = lo;
}

function xor(s: SipState, i: number, j: number): void {
  s[i] ^= s[j];
  s[i + 1] ^= s[j + 1];
}

const V0 = 0, V1 = 2, V2 = 4, V3 = 6;

function sipRound(s: SipState): void {
  add(s, V0, V1);
  rotl(s, V1, 13);
  xor(s, V1, V0);
  rotl(s, V0, 32);
  add(s, V2, V3);
  rotl(s, V3, 16);
  xor(s, V3, V2);
  add(s, V0, V3);
  rotl(s, V3, 21);
  xor(s, V3, V0);
  add(s, V2, V1);
  rotl(s, V1, 17);
  xor(s, V1, V2);
  rotl(s, V2, 32);
}

function le32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/**
 * SipHash-2-4 of `message[0..length)` under a 16-byte `key`. Writes the 64-bit result as
 * [hi, lo] into `out` (reused, no allocation) and returns it.
 */
export function sipHash24(
  key: Uint8Array,
  message: Uint8Array,
  length: number = message.length,
  out: Uint32Array = new Uint32Array(2),
  state: Uint32Array = new Uint32Array(10),
): Uint32Array {
  const s = state;
  const k0h = le32(key, 4), k0l = le32(key, 0), k1h = le32(key, 12), k1l = le32(key, 8);
  s[0] = k0h ^ 0x736f6d65;
  s[1] = k0l ^ 0x70736575;
  s[2] = k1h ^ 0x646f7261;
  s[3] = k1l ^ 0x6e646f6d;
  s[4] = k0h ^ 0x6c796765;
  s[5] = k0l ^ 0x6e657261;
  s[6] = k1h ^ 0x74656462;
  s[7] = k1l ^ 0x79746573;
  const whole = length - (length & 7);
  for (let i = 0; i <= whole; i += 8) {
    let mh: number, ml: number;
    if (i < whole) {
      ml = le32(message, i);
      mh = le32(message, i + 4);
    } else {
      // Last block: the remaining bytes, then the length mod 256 in the top byte.
      let lo = 0, hi = 0;
      for (let k = 0; k < (length & 7); k++) {
        const byte = message[i + k];
        if (k < 4) lo |= byte << (8 * k);
        else hi |= byte << (8 * (k - 4));
      }
      hi |= (length & 0xff) << 24;
      ml = lo >>> 0;
      mh = hi >>> 0;
    }
    s[6] ^= mh;
    s[7] ^= ml;
    sipRound(s);
    sipRound(s);
    s[0] ^= mh;
    s[1] ^= ml;
  }
  s[5] ^= 0xff;
  sipRound(s);
  sipRound(s);
  sipRound(s);
  sipRound(s);
  out[0] = s[0] ^ s[2] ^ s[4] ^ s[6];
  out[1] = s[1] ^ s[3] ^ s[5] ^ s[7];
  return out;
}

/** The 16 bytes of an IPv6 address handle (see `lib/iface/ipv6_handles.ts`). */
export type HandleResolver = (handle: number) => Uint8Array;

/** First number that is an IPv6 handle rather than an IPv4 address (`IPV6_HANDLE_BASE`). */
const HANDLE_BASE = 2 ** 32;

/** RFC 6528 ISN generator for one run of the stack. */
export class IsnGenerator {
  readonly #secret: Uint8Array;
  /** The hashed tuple: 12 bytes over IPv4, 36 over IPv6. */
  readonly #message = new Uint8Array(36);
  readonly #out = new Uint32Array(2);
  readonly #state = new Uint32Array(10);
  readonly #resolve: HandleResolver | null;

  /**
   * Creates a generator keyed by a 16-byte secret (inject a fixed one for deterministic tests). IPv6
   * connections name their addresses by handles, which are reused and renumbered as peers come and go:
   * `resolve` turns them back into addresses so that the hash (RFC 6528 §3: over the addresses) is the
   * same for the same tuple at any time, as a SYN cookie's connection needs its timestamp offset to be.
   */
  constructor(secret: Uint8Array, resolve: HandleResolver | null = null) {
    if (secret.length !== 16) throw new RangeError("isn: secret must be 16 bytes");
    this.#secret = secret.slice();
    this.#resolve = resolve;
  }

  #hash(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): Uint32Array {
    const m = this.#message;
    let o: number;
    if (this.#resolve !== null && localAddr >= HANDLE_BASE && remoteAddr >= HANDLE_BASE) {
      m.set(this.#resolve(localAddr), 0);
      m.set(this.#resolve(remoteAddr), 16);
      o = 32;
    } else {
      m[0] = localAddr >>> 24;
      m[1] = (localAddr >>> 16) & 0xff;
      m[2] = (localAddr >>> 8) & 0xff;
      m[3] = localAddr & 0xff;
      m[4] = remoteAddr >>> 24;
      m[5] = (remoteAddr >>> 16) & 0xff;
      m[6] = (remoteAddr >>> 8) & 0xff;
      m[7] = remoteAddr & 0xff;
      o = 8;
    }
    m[o] = localPort >> 8;
    m[o + 1] = localPort & 0xff;
    m[o + 2] = remotePort >> 8;
    m[o + 3] = remotePort & 0xff;
    return sipHash24(this.#secret, m, o + 4, this.#out, this.#state);
  }

  /** The ISN for a connection at time `now` (ms): keyed hash of the 4-tuple plus `now` in 4 µs ticks. */
  isn(localAddr: number, localPort: number, remoteAddr: number, remotePort: number, now: number): number {
    const h = this.#hash(localAddr, localPort, remoteAddr, remotePort);
    return (h[1] + Math.floor(now * 250)) >>> 0;
  }

  /** A per-connection offset added to the timestamp clock (RFC 7323 §5.4), from the same keyed hash. */
  timestampOffset(localAddr: number, localPort: number, remoteAddr: number, remotePort: number): number {
    return this.#hash(localAddr, localPort, remoteAddr, remotePort)[0];
  }
}

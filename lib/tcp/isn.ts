/**
 * Initial sequence numbers per RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport,
 * secretkey), with M a 4 µs clock and F SipHash-2-4 keyed by a per-run secret (as Linux). The same hash
 * also yields a per-connection timestamp offset (RFC 7323 §5.4).
 *
 * @module
 */

function le32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/**
 * SipHash-2-4 of `message[0..length)` under a 16-byte `key`. Writes the 64-bit result as
 * [hi, lo] into `out` (reused, no allocation) and returns it. The state lives in local variables (32-bit
 * halves of the four 64-bit words), which the JIT keeps in registers: a SYN cookie costs two of these
 * per SYN of a flood.
 */
export function sipHash24(
  key: Uint8Array,
  message: Uint8Array,
  length: number = message.length,
  out: Uint32Array = new Uint32Array(2),
): Uint32Array {
  const k0h = le32(key, 4), k0l = le32(key, 0), k1h = le32(key, 12), k1l = le32(key, 8);
  let v0h = (k0h ^ 0x736f6d65) >>> 0, v0l = (k0l ^ 0x70736575) >>> 0;
  let v1h = (k1h ^ 0x646f7261) >>> 0, v1l = (k1l ^ 0x6e646f6d) >>> 0;
  let v2h = (k0h ^ 0x6c796765) >>> 0, v2l = (k0l ^ 0x6e657261) >>> 0;
  let v3h = (k1h ^ 0x74656462) >>> 0, v3l = (k1l ^ 0x79746573) >>> 0;
  let lo = 0, t = 0;
  const whole = length - (length & 7);
  for (let i = 0; i <= whole; i += 8) {
    let mh: number, ml: number;
    if (i < whole) {
      ml = le32(message, i);
      mh = le32(message, i + 4);
    } else {
      // Last block: the remaining bytes, then the length mod 256 in the top byte.
      let l = 0, h = 0;
      for (let k = 0; k < (length & 7); k++) {
        const byte = message[i + k];
        if (k < 4) l |= byte << (8 * k);
        else h |= byte << (8 * (k - 4));
      }
      h |= (length & 0xff) << 24;
      ml = l >>> 0;
      mh = h >>> 0;
    }
    v3h = (v3h ^ mh) >>> 0;
    v3l = (v3l ^ ml) >>> 0;
    for (let r = 0; r < 2; r++) {
      // SipRound (Aumasson & Bernstein): 64-bit words as (hi, lo) pairs of uint32 in locals.
      lo = (v0l + v1l) >>> 0;
      v0h = (v0h + v1h + (lo < v0l ? 1 : 0)) >>> 0;
      v0l = lo;
      t = v1h;
      v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0;
      v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
      v1h ^= v0h;
      v1l ^= v0l;
      t = v0h;
      v0h = v0l;
      v0l = t;
      lo = (v2l + v3l) >>> 0;
      v2h = (v2h + v3h + (lo < v2l ? 1 : 0)) >>> 0;
      v2l = lo;
      t = v3h;
      v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0;
      v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
      v3h ^= v2h;
      v3l ^= v2l;
      lo = (v0l + v3l) >>> 0;
      v0h = (v0h + v3h + (lo < v0l ? 1 : 0)) >>> 0;
      v0l = lo;
      t = v3h;
      v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0;
      v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
      v3h ^= v0h;
      v3l ^= v0l;
      lo = (v2l + v1l) >>> 0;
      v2h = (v2h + v1h + (lo < v2l ? 1 : 0)) >>> 0;
      v2l = lo;
      t = v1h;
      v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0;
      v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
      v1h ^= v2h;
      v1l ^= v2l;
      t = v2h;
      v2h = v2l;
      v2l = t;
    }
    v0h = (v0h ^ mh) >>> 0;
    v0l = (v0l ^ ml) >>> 0;
  }
  v2l = (v2l ^ 0xff) >>> 0;
  for (let r = 0; r < 4; r++) {
    // SipRound (Aumasson & Bernstein): 64-bit words as (hi, lo) pairs of uint32 in locals.
    lo = (v0l + v1l) >>> 0;
    v0h = (v0h + v1h + (lo < v0l ? 1 : 0)) >>> 0;
    v0l = lo;
    t = v1h;
    v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0;
    v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
    v1h ^= v0h;
    v1l ^= v0l;
    t = v0h;
    v0h = v0l;
    v0l = t;
    lo = (v2l + v3l) >>> 0;
    v2h = (v2h + v3h + (lo < v2l ? 1 : 0)) >>> 0;
    v2l = lo;
    t = v3h;
    v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0;
    v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
    v3h ^= v2h;
    v3l ^= v2l;
    lo = (v0l + v3l) >>> 0;
    v0h = (v0h + v3h + (lo < v0l ? 1 : 0)) >>> 0;
    v0l = lo;
    t = v3h;
    v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0;
    v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
    v3h ^= v0h;
    v3l ^= v0l;
    lo = (v2l + v1l) >>> 0;
    v2h = (v2h + v1h + (lo < v2l ? 1 : 0)) >>> 0;
    v2l = lo;
    t = v1h;
    v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0;
    v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
    v1h ^= v2h;
    v1l ^= v2l;
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  out[0] = v0h ^ v1h ^ v2h ^ v3h;
  out[1] = v0l ^ v1l ^ v2l ^ v3l;
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
    return sipHash24(this.#secret, m, o + 4, this.#out);
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

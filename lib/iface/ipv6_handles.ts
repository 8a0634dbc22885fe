/**
 * IPv6 addresses as numbers, for protocol code that keys its tables by a numeric address (TCP's connection
 * table, written for IPv4's 32-bit numbers). A handle is 2^32 plus a slot index, so it never equals an
 * IPv4 address and one number space holds both families; {@link isIpv6Handle} tells them apart.
 *
 * Handles are reference-counted: a connection acquires its addresses when created and releases them when
 * removed, so the table holds no more entries than there are connections (plus our own addresses). Finding
 * the handle of a received packet's address allocates nothing when it is the same peer as the last lookup
 * (the common case of a bulk transfer); otherwise one 8-character key string is built.
 *
 * @module
 */

import { formatIpv6 } from "../wire/ipv6_address.ts";

/** The first IPv6 handle: every IPv4 address (a 32-bit number) is below it. */
export const IPV6_HANDLE_BASE = 2 ** 32;

/** Whether a numeric address is an IPv6 handle rather than an IPv4 address. */
export function isIpv6Handle(address: number): boolean {
  return address >= IPV6_HANDLE_BASE;
}

/**
 * The table key of an address: its eight 16-bit groups as the code units of an 8-character string, built
 * in one call (a flood from random sources looks up a new address per packet; hex text cost 4 times more).
 */
function keyOf(bytes: Uint8Array, o: number): string {
  return String.fromCharCode(
    (bytes[o] << 8) | bytes[o + 1],
    (bytes[o + 2] << 8) | bytes[o + 3],
    (bytes[o + 4] << 8) | bytes[o + 5],
    (bytes[o + 6] << 8) | bytes[o + 7],
    (bytes[o + 8] << 8) | bytes[o + 9],
    (bytes[o + 10] << 8) | bytes[o + 11],
    (bytes[o + 12] << 8) | bytes[o + 13],
    (bytes[o + 14] << 8) | bytes[o + 15],
  );
}

/** The table of IPv6 handles; see the module comment. */
export class Ipv6Handles {
  readonly #slots: (Uint8Array | null)[] = [];
  readonly #refs: number[] = [];
  readonly #free: number[] = [];
  /** Each slot's key in {@link #index}, kept so that freeing it builds no string. */
  readonly #keys: string[] = [];
  /** Each slot's 16-byte buffer, kept when the slot is freed and reused by the next address in it. */
  readonly #store: Uint8Array[] = [];
  readonly #index = new Map<string, number>();
  #last: Uint8Array | null = null;
  #lastHandle = -1;

  /** Handles in use. */
  get size(): number {
    return this.#index.size;
  }

  /** The handle of the address at `bytes[offset..offset+16)`, or -1 when it has none. */
  find(bytes: Uint8Array, offset = 0): number {
    const last = this.#last;
    if (last !== null) {
      let same = true;
      for (let i = 0; i < 16; i++) {
        if (bytes[offset + i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.#lastHandle;
    }
    const handle = this.#index.get(keyOf(bytes, offset));
    if (handle === undefined) return -1;
    this.#last = this.#slots[handle - IPV6_HANDLE_BASE];
    this.#lastHandle = handle;
    return handle;
  }

  /**
   * The handle of the address (created when new), with one more reference. A new address costs one key
   * string and no buffer once slots have been freed (a flood from random sources acquires and releases
   * one per packet).
   */
  acquire(bytes: Uint8Array, offset = 0): number {
    let handle = -1;
    const last = this.#last;
    if (last !== null) {
      handle = this.#lastHandle;
      for (let i = 0; i < 16; i++) {
        if (bytes[offset + i] !== last[i]) {
          handle = -1;
          break;
        }
      }
    }
    if (handle < 0) {
      const key = keyOf(bytes, offset);
      handle = this.#index.get(key) ?? -1;
      if (handle < 0) {
        const slot = this.#free.pop() ?? this.#slots.length;
        let address = this.#store[slot];
        if (address === undefined) address = this.#store[slot] = new Uint8Array(16);
        for (let i = 0; i < 16; i++) address[i] = bytes[offset + i];
        this.#slots[slot] = address;
        this.#keys[slot] = key;
        this.#refs[slot] = 0;
        handle = IPV6_HANDLE_BASE + slot;
        this.#index.set(key, handle);
      }
    }
    this.#refs[handle - IPV6_HANDLE_BASE]++;
    return handle;
  }

  /** Drops one reference; the handle is freed with the last one. IPv4 addresses are ignored. */
  release(handle: number): void {
    if (!isIpv6Handle(handle)) return;
    const slot = handle - IPV6_HANDLE_BASE;
    const address = this.#slots[slot];
    if (address === null || address === undefined) return;
    if (--this.#refs[slot] > 0) return;
    this.#index.delete(this.#keys[slot]);
    this.#slots[slot] = null;
    this.#free.push(slot);
    if (this.#lastHandle === handle) {
      this.#last = null;
      this.#lastHandle = -1;
    }
  }

  /**
   * The 16 bytes of a handle (live: do not modify, and copy to keep: the buffer is reused once the handle
   * is freed). Throws for a handle not in use.
   */
  address(handle: number): Uint8Array {
    const address = this.#slots[handle - IPV6_HANDLE_BASE];
    if (address === null || address === undefined) throw new RangeError(`no IPv6 handle ${handle}`);
    return address;
  }

  /** The text form of a handle's address. */
  format(handle: number): string {
    return formatIpv6(this.address(handle));
  }
}

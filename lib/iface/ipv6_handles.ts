/**
 * IPv6 addresses as numbers, for protocol code that keys its tables by a numeric address (TCP's connection
 * table, written for IPv4's 32-bit numbers). A handle is 2^32 plus a slot index, so it never equals an
 * IPv4 address and one number space holds both families; {@link isIpv6Handle} tells them apart.
 *
 * Handles are reference-counted: a connection acquires its addresses when created and releases them when
 * removed, so the table holds no more entries than there are connections (plus our own addresses). Finding
 * the handle of a received packet's address allocates nothing when it is the same peer as the last lookup
 * (the common case of a bulk transfer); otherwise one key string is built.
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

function keyOf(bytes: Uint8Array, offset: number): string {
  let key = "";
  for (let i = 0; i < 16; i += 2) {
    key += ((bytes[offset + i] << 8) | bytes[offset + i + 1]).toString(16) + ":";
  }
  return key;
}

/** The table of IPv6 handles; see the module comment. */
export class Ipv6Handles {
  readonly #slots: (Uint8Array | null)[] = [];
  readonly #refs: number[] = [];
  readonly #free: number[] = [];
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

  /** The handle of the address (created when new), with one more reference. */
  acquire(bytes: Uint8Array, offset = 0): number {
    let handle = this.find(bytes, offset);
    if (handle < 0) {
      const slot = this.#free.pop() ?? this.#slots.length;
      const address = bytes.slice(offset, offset + 16);
      this.#slots[slot] = address;
      this.#refs[slot] = 0;
      handle = IPV6_HANDLE_BASE + slot;
      this.#index.set(keyOf(address, 0), handle);
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
    this.#index.delete(keyOf(address, 0));
    this.#slots[slot] = null;
    this.#free.push(slot);
    if (this.#lastHandle === handle) {
      this.#last = null;
      this.#lastHandle = -1;
    }
  }

  /** The 16 bytes of a handle (live: do not modify). Throws for a handle not in use. */
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

/**
 * One memory budget for the buffers of all connections of a layer (like Linux's tcp_mem): a buffer's
 * store grows only when the budget has room, and gives its bytes back when it is drained or freed. When
 * the budget is tight, growth is refused (a sender takes fewer bytes, a receiver advertises less window
 * and drops what it cannot store) and new connections are refused; every refusal is counted, nothing
 * throws.
 *
 * @module
 */

/** Counters and state of a {@link MemoryBudget}, for stats. */
export interface MemoryBudgetStats {
  /** The budget in bytes. */
  limit: number;
  /** Bytes of buffer stores allocated now. */
  used: number;
  /** The most ever allocated at once. */
  peak: number;
  /** Buffer growths refused for want of budget. */
  growthRefused: number;
  /** New connections (SYNs, connects) refused for want of budget. */
  connectionsRefused: number;
  /** Bytes of drained first-size stores kept for reuse (at most {@link SPARE_STORES} stores). */
  spare: number;
}

/**
 * How many drained stores of the first size a budget keeps for the next buffer that needs one. A
 * request/response connection drains both its buffers on every exchange: without spares each exchange
 * allocates (and zeroes) two fresh stores and leaves them to the garbage collector. 64 stores of 16 KiB
 * bound the cache at 1 MiB.
 */
export const SPARE_STORES = 64;

/** The shared budget. */
export class MemoryBudget {
  /** The budget in bytes. */
  readonly limit: number;
  #used = 0;
  #peak = 0;
  /** Buffer growths refused. */
  growthRefused = 0;
  /** Connections refused. */
  connectionsRefused = 0;
  /** Drained stores of one size (the first store a buffer gets), kept for reuse; bounded. */
  readonly #spares: Uint8Array[] = [];

  /** A budget of `limit` bytes (Infinity: unbounded, still counted). */
  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes allocated now. */
  get used(): number {
    return this.#used;
  }

  /** Bytes still available. */
  get available(): number {
    return Math.max(0, this.limit - this.#used);
  }

  /** Takes `bytes` from the budget if they fit; counts a refusal otherwise. */
  reserve(bytes: number): boolean {
    if (this.#used + bytes > this.limit) {
      this.growthRefused++;
      return false;
    }
    this.#used += bytes;
    if (this.#used > this.#peak) this.#peak = this.#used;
    return true;
  }

  /** Gives `bytes` back. */
  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }

  /**
   * A drained store of `size` bytes to reuse, or a new one. Its bytes are stale: a buffer reads only
   * what it wrote. The caller has reserved the bytes.
   */
  takeStore(size: number): Uint8Array {
    const spare = this.#spares.pop();
    if (spare !== undefined && spare.length === size) return spare;
    return new Uint8Array(size);
  }

  /**
   * Keeps a drained store for {@link takeStore} while fewer than {@link SPARE_STORES} are kept (its bytes
   * were released: spares are not charged, the bound keeps them small). Only stores of one size are
   * kept: the first that comes sets it.
   */
  keepStore(store: Uint8Array): void {
    const spares = this.#spares;
    if (spares.length < SPARE_STORES && (spares.length === 0 || spares[0].length === store.length)) {
      spares.push(store);
    }
  }

  /**
   * Whether a new connection may start: some room must be left for its first buffers (`reserve` bytes),
   * else it is refused and counted.
   */
  admit(reserve: number): boolean {
    if (this.limit - this.#used >= reserve) return true;
    this.connectionsRefused++;
    return false;
  }

  /** A JSON-able snapshot. */
  stats(): MemoryBudgetStats {
    return {
      limit: this.limit,
      used: this.#used,
      peak: this.#peak,
      growthRefused: this.growthRefused,
      connectionsRefused: this.connectionsRefused,
      spare: this.#spares.reduce((sum, store) => sum + store.length, 0),
    };
  }
}

/** A budget that never refuses (standalone buffers, tests). */
export const UNBOUNDED_BUDGET: MemoryBudget = new MemoryBudget(Infinity);

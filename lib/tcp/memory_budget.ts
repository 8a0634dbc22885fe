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
}

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
    };
  }
}

/** A budget that never refuses (standalone buffers, tests). */
export const UNBOUNDED_BUDGET: MemoryBudget = new MemoryBudget(Infinity);

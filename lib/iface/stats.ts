/**
 * Counters: every layer counts what it receives, sends and drops, and every drop has a named reason.
 *
 * @module
 */

/** Drop counts by reason, e.g. `bad-checksum`, created on first use. */
export class DropCounters {
  readonly #counts = new Map<string, number>();

  /** Counts one dropped packet under `reason`. */
  count(reason: string): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
  }

  /** The count for one reason (0 when never seen). */
  get(reason: string): number {
    return this.#counts.get(reason) ?? 0;
  }

  /** The sum over all reasons. */
  get total(): number {
    let total = 0;
    for (const value of this.#counts.values()) total += value;
    return total;
  }

  /** A plain object of reason → count, sorted by reason. */
  stats(): Record<string, number> {
    return Object.fromEntries([...this.#counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}

/** The counters every packet layer has, as {@link LayerCounters.stats} returns them. */
export interface LayerStats {
  /** Packets accepted by this layer (after validation). */
  rxPackets: number;
  /** Bytes of the accepted packets, this layer's header included. */
  rxBytes: number;
  /** Packets sent by this layer. */
  txPackets: number;
  /** Bytes sent, this layer's header included. */
  txBytes: number;
  /** Packets dropped, by reason (only reasons seen). */
  drops: Record<string, number>;
}

/** The counters every packet layer has. */
export class LayerCounters {
  /** Packets accepted by this layer (after validation). */
  rxPackets = 0;
  /** Bytes of the accepted packets, this layer's header included. */
  rxBytes = 0;
  /** Packets sent by this layer. */
  txPackets = 0;
  /** Bytes sent, this layer's header included. */
  txBytes = 0;
  /** Packets dropped, by reason. */
  readonly drops = new DropCounters();

  /** The counters as a plain object for JSON. */
  stats(): LayerStats {
    return {
      rxPackets: this.rxPackets,
      rxBytes: this.rxBytes,
      txPackets: this.txPackets,
      txBytes: this.txBytes,
      drops: this.drops.stats(),
    };
  }
}

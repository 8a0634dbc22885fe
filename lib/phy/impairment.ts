/**
 * The one impairment model of the project, for one direction of a link: seeded loss, duplication and
 * reordering, plus (in simulations with a virtual clock) delay, jitter and a rate limit with a drop-tail
 * queue. {@link ImpairedDevice} applies it on a real device; the TCP simulator on its in-memory links.
 * No I/O and no clock: the time is passed in, so the same seed and the same packets give the same outcome.
 *
 * @module
 */

import type { Prng } from "../prng.ts";
import { TxOffload } from "../wire/offload.ts";

/** How one direction of a link impairs traffic. Probabilities are per packet (0..1). */
export interface LinkImpairment {
  /** Probability that a packet is lost. */
  loss: number;
  /** Probability that a packet is delivered twice. */
  duplicate: number;
  /** Probability that a packet is held back and overtaken. */
  reorder: number;
  /**
   * How long a reordered packet is held back (ms); 0: until the next packet has been delivered (on a real
   * device, where the packets' times are not known in advance).
   */
  reorderDelayMs: number;
  /** One-way base delay in ms. */
  delayMs: number;
  /** Extra uniform random delay in [0, jitterMs) (reorders packets when larger than their spacing). */
  jitterMs: number;
  /** Serialization rate in bytes per ms (0: infinite). 12500 ≈ 100 Mbit/s. */
  rateBytesPerMs: number;
  /** Drop-tail queue limit in packets when rate-limited. */
  queuePackets: number;
}

/** A perfect link: nothing lost, nothing delayed. */
export const PERFECT_LINK: Readonly<LinkImpairment> = {
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMs: 0,
  delayMs: 0,
  jitterMs: 0,
  rateBytesPerMs: 0,
  queuePackets: 1000,
};

/** What the impairment did. */
export interface ImpairmentCounters {
  /** Packets dropped on purpose (loss), or for a full queue (rate limit). */
  lost: number;
  /** Packets delivered twice. */
  duplicated: number;
  /** Packets held back and delivered late. */
  reordered: number;
}

/**
 * Delivers a packet with its device flags (received) or its offload descriptor (sent; `null`: none). The
 * bytes and the descriptor are valid only during the call.
 */
export type Deliver = (packet: Uint8Array, flags: number, offload: TxOffload | null) => void;

interface Pending {
  due: number;
  order: number;
  packet: Uint8Array;
  flags: number;
  /** A copy of the sender's descriptor (the sender reuses its own for the next packet). */
  offload: TxOffload | null;
}

/** A min-heap of packets ordered by (due time, order offered). */
class PendingHeap {
  readonly #items: Pending[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Pending | undefined {
    return this.#items[0];
  }

  push(item: Pending): void {
    const a = this.#items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): Pending | undefined {
    const a = this.#items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && less(a[l], a[m])) m = l;
        if (r < a.length && less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function less(x: Pending, y: Pending): boolean {
  return x.due < y.due || (x.due === y.due && x.order < y.order);
}

/**
 * One direction of an impaired link. {@link offer} a packet at `now`; it comes out through `deliver` zero,
 * one or two times, at once or from a later {@link deliverDue} (or {@link flush}). Decisions are drawn from
 * `random` in a fixed order (loss; duplication; per copy: jitter, reordering), each only when its
 * probability or amount is non-zero, so a link without some impairment draws nothing for it.
 */
export class Impairment {
  readonly #spec: LinkImpairment;
  readonly #random: Prng;
  readonly #counters: ImpairmentCounters = { lost: 0, duplicated: 0, reordered: 0 };
  readonly #pending = new PendingHeap();
  #order = 0;
  /** With `reorderDelayMs` 0: the packet held back until the next one has been delivered. */
  #held: Pending | null = null;
  /** Rate limit: when the link is busy until, and the departure times of the packets queued. */
  #busyUntil = 0;
  readonly #departures: number[] = [];
  #departuresHead = 0;

  /** A direction impaired as `spec` says (missing fields: perfect), drawing from `random`. */
  constructor(spec: Partial<LinkImpairment>, random: Prng) {
    this.#spec = { ...PERFECT_LINK, ...spec };
    this.#random = random;
  }

  /** The impairment of this direction. */
  get spec(): Readonly<LinkImpairment> {
    return this.#spec;
  }

  /** Whether a packet is held back until the next one (see {@link flush}). */
  get holding(): boolean {
    return this.#held !== null;
  }

  /** The earliest time a pending packet is due, or `null` when none is pending. */
  nextDue(): number | null {
    return this.#pending.peek()?.due ?? null;
  }

  /**
   * Draws one loss decision for a group of packets offered together (a TCP super-segment before the
   * device cuts it): true means the whole group is lost (and counted once); offer the pieces with
   * `lossDecided` otherwise.
   */
  losesGroup(): boolean {
    if (this.#spec.loss > 0 && this.#random.next() < this.#spec.loss) {
      this.#counters.lost++;
      return true;
    }
    return false;
  }

  /**
   * Offers `packet` at `now`. What is due at once goes to `deliver` before this returns (the bytes are not
   * copied then); the rest is copied and waits for {@link deliverDue}. With `lossDecided`, no loss is drawn
   * (see {@link losesGroup}).
   */
  offer(
    packet: Uint8Array,
    flags: number,
    offload: TxOffload | null,
    now: number,
    deliver: Deliver,
    lossDecided = false,
  ): void {
    const spec = this.#spec;
    const random = this.#random;
    if (!lossDecided && spec.loss > 0 && random.next() < spec.loss) {
      this.#counters.lost++;
      return;
    }
    let departure = now;
    if (spec.rateBytesPerMs > 0) {
      // Serialization: the packet leaves when those before it have; a full queue drops it (drop-tail).
      const departures = this.#departures;
      while (this.#departuresHead < departures.length && departures[this.#departuresHead] <= now) {
        this.#departuresHead++;
      }
      if (this.#departuresHead === departures.length) {
        departures.length = 0;
        this.#departuresHead = 0;
      }
      if (this.#busyUntil < now) this.#busyUntil = now;
      if (departures.length - this.#departuresHead >= spec.queuePackets) {
        this.#counters.lost++;
        return;
      }
      this.#busyUntil += packet.length / spec.rateBytesPerMs;
      departures.push(this.#busyUntil);
      departure = this.#busyUntil;
    }
    const copies = spec.duplicate > 0 && random.next() < spec.duplicate ? 2 : 1;
    if (copies === 2) this.#counters.duplicated++;
    const wasHeld = this.#held;
    let delivered = false;
    for (let k = 0; k < copies; k++) {
      let due = departure + spec.delayMs;
      if (spec.jitterMs > 0) due += random.next() * spec.jitterMs;
      if (spec.reorder > 0) {
        if (spec.reorderDelayMs > 0) {
          if (random.next() < spec.reorder) {
            due += spec.reorderDelayMs;
            this.#counters.reordered++;
          }
        } else if (this.#held === null && random.next() < spec.reorder) {
          this.#held = this.#pend(packet, flags, offload, due);
          this.#counters.reordered++;
          continue;
        }
      }
      this.#emit(packet, flags, offload, due, now, deliver);
      delivered = true;
    }
    // A packet held back goes right after the next packet that got through.
    if (wasHeld !== null && delivered) {
      this.#held = null;
      wasHeld.due = Math.max(wasHeld.due, departure + spec.delayMs);
      wasHeld.order = this.#order++;
      this.#schedule(wasHeld, now, deliver);
    }
  }

  /** Delivers every pending packet due at `now`, in order; returns how many. */
  deliverDue(now: number, deliver: Deliver): number {
    let count = 0;
    const pending = this.#pending;
    for (let top = pending.peek(); top !== undefined && top.due <= now; top = pending.peek()) {
      pending.pop();
      deliver(top.packet, top.flags, top.offload);
      count++;
    }
    return count;
  }

  /** Delivers a packet held back now (the link went quiet, so nothing else will overtake it). */
  flush(deliver: Deliver): void {
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    deliver(held.packet, held.flags, held.offload);
  }

  /** What this direction did, as a JSON-able object. */
  stats(): ImpairmentCounters {
    return { ...this.#counters };
  }

  #pend(packet: Uint8Array, flags: number, offload: TxOffload | null, due: number): Pending {
    let copy: TxOffload | null = null;
    if (offload !== null) {
      copy = new TxOffload();
      copy.copyFrom(offload);
    }
    return { due, order: this.#order++, packet: packet.slice(), flags, offload: copy };
  }

  /**
   * Delivers at once when due (after what was pending and due: everything left pending is due later),
   * else queues a copy.
   */
  #emit(
    packet: Uint8Array,
    flags: number,
    offload: TxOffload | null,
    due: number,
    now: number,
    deliver: Deliver,
  ): void {
    if (due <= now) {
      this.deliverDue(now, deliver);
      this.#order++;
      deliver(packet, flags, offload);
    } else {
      this.#pending.push(this.#pend(packet, flags, offload, due));
    }
  }

  #schedule(item: Pending, now: number, deliver: Deliver): void {
    if (item.due <= now) {
      this.deliverDue(now, deliver);
      deliver(item.packet, item.flags, item.offload);
    } else {
      this.#pending.push(item);
    }
  }
}

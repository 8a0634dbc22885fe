/**
 * Device middleware that impairs traffic on purpose — seeded loss, duplication and reordering in either
 * direction — for testing TCP on the real TUN path (this kernel has no netem). Deterministic for a seed.
 *
 * @module
 */

import type { Device, PacketHandler } from "./device.ts";
import { TxOffload } from "../wire/offload.ts";
import { DeviceMiddleware } from "./middleware.ts";

/** What to impair, as probabilities per packet (0..1). */
export interface ImpairmentSpec {
  /** Probability that a packet is lost. */
  loss: number;
  /** Probability that a packet is held back and delivered after the next one. */
  reorder: number;
  /** Probability that a packet is delivered twice. */
  duplicate: number;
  /** PRNG seed; the same seed gives the same decisions for the same packet sequence. */
  seed: number;
  /** Which traffic: packets the stack receives (`in`), sends (`out`), or `both`. */
  direction: "in" | "out" | "both";
}

/** Counters of what the impairment did. */
export interface ImpairmentCounters {
  /** Packets dropped on purpose. */
  lost: number;
  /** Packets delivered twice. */
  duplicated: number;
  /** Packets held back and delivered late. */
  reordered: number;
}

/**
 * Parses `loss=0.05,reorder=0.02,duplicate=0.01,seed=7,direction=both`; missing keys are 0 (seed 1,
 * direction both). Throws an Error naming the bad part.
 */
export function parseImpairment(text: string): ImpairmentSpec {
  const spec: ImpairmentSpec = { loss: 0, reorder: 0, duplicate: 0, seed: 1, direction: "both" };
  for (const part of text.split(",").map((p) => p.trim()).filter((p) => p.length > 0)) {
    const [key, value, extra] = part.split("=");
    if (value === undefined || extra !== undefined) throw new Error(`'${part}' is not key=value`);
    if (key === "direction") {
      if (value !== "in" && value !== "out" && value !== "both") {
        throw new Error("direction must be in, out or both");
      }
      spec.direction = value;
    } else if (key === "seed") {
      if (!/^\d+$/.test(value)) throw new Error("seed must be a whole number");
      spec.seed = Number(value);
    } else if (key === "loss" || key === "reorder" || key === "duplicate") {
      const p = Number(value);
      if (!/^\d*\.?\d+$/.test(value) || p > 1) {
        throw new Error(`${key} must be a probability between 0 and 1`);
      }
      spec[key] = p;
    } else {
      throw new Error(`unknown impairment '${key}' (known: loss, reorder, duplicate, seed, direction)`);
    }
  }
  return spec;
}

/** A small seeded PRNG (mulberry32): fast, and enough for test decisions. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Delivers a packet with its device flags (received) or its offload descriptor (sent). */
type Deliver = (packet: Uint8Array, flags: number, offload: TxOffload | null) => void;

/** One direction's impairment: decides per packet, holds at most one packet back. */
class Impairer {
  held: Uint8Array | null = null;
  heldFlags = 0;
  /** A copy of the held packet's descriptor (the sender's is reused for its next packet). */
  readonly heldOffload = new TxOffload();
  heldHasOffload = false;
  constructor(
    private readonly spec: ImpairmentSpec,
    private readonly random: () => number,
    readonly counters: ImpairmentCounters,
  ) {}

  /** Passes `packet` through `deliver` zero, one or two times, maybe after the next packet. */
  apply(packet: Uint8Array, flags: number, offload: TxOffload | null, deliver: Deliver): void {
    if (this.random() < this.spec.loss) {
      this.counters.lost++;
      return;
    }
    if (this.held === null && this.random() < this.spec.reorder) {
      this.held = packet.slice();
      this.heldFlags = flags;
      this.heldHasOffload = offload !== null;
      if (offload !== null) this.heldOffload.copyFrom(offload);
      this.counters.reordered++;
      return;
    }
    deliver(packet, flags, offload);
    if (this.random() < this.spec.duplicate) {
      this.counters.duplicated++;
      deliver(packet, flags, offload);
    }
    this.release(deliver);
  }

  /** Delivers the held packet, if any. */
  release(deliver: Deliver): void {
    const held = this.held;
    if (held === null) return;
    this.held = null;
    deliver(held, this.heldFlags, this.heldHasOffload ? this.heldOffload : null);
  }
}

/** A device whose traffic is impaired as specified. */
export class ImpairedDevice extends DeviceMiddleware {
  /** What was done to received packets. */
  readonly inbound: ImpairmentCounters = { lost: 0, duplicated: 0, reordered: 0 };
  /** What was done to sent packets. */
  readonly outbound: ImpairmentCounters = { lost: 0, duplicated: 0, reordered: 0 };
  readonly #in: Impairer | null;
  readonly #out: Impairer | null;
  readonly #sendInner: Deliver;
  #handler: PacketHandler = () => {};
  readonly #receiveOne: PacketHandler;
  readonly #deliverIn: Deliver;

  /** Wraps `inner`. */
  constructor(inner: Device, spec: ImpairmentSpec) {
    super(inner);
    const random = seededRandom(spec.seed);
    this.#in = spec.direction === "out" ? null : new Impairer(spec, random, this.inbound);
    this.#out = spec.direction === "in" ? null : new Impairer(spec, random, this.outbound);
    this.#sendInner = (p, _flags, offload) => void inner.send(p, offload);
    this.#deliverIn = (p, flags) => this.#handler(p, flags);
    this.#receiveOne = (p, flags = 0) => this.#in!.apply(p, flags, null, this.#deliverIn);
  }

  override receive(onPacket: PacketHandler, max: number): number {
    if (this.#in === null) return this.inner.receive(onPacket, max);
    this.#handler = onPacket;
    const count = this.inner.receive(this.#receiveOne, max);
    // A packet held back is late by at most one loop turn, so a quiet link cannot strand it.
    if (count === 0 && this.#in.held !== null) {
      this.#in.release(this.#deliverIn);
      return 1;
    }
    return count;
  }

  override send(packet: Uint8Array, offload: TxOffload | null = null): boolean {
    if (this.#out === null) return this.inner.send(packet, offload);
    this.#out.apply(packet, 0, offload, this.#sendInner);
    return true;
  }

  override counters(): Record<string, unknown> {
    return { ...super.counters(), impairedIn: { ...this.inbound }, impairedOut: { ...this.outbound } };
  }

  protected override prepareWait(): boolean {
    this.#out?.release(this.#sendInner);
    // With a packet held back inbound, come straight back to release it.
    return !this.#in?.held;
  }
}

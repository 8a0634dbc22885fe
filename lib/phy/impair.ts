/**
 * Device middleware that impairs traffic on purpose — seeded loss, duplication and reordering in either
 * direction — for testing TCP on the real TUN path (this kernel has no netem). Deterministic for a seed.
 * The model itself (shared with the TCP simulator) is in impairment.ts.
 *
 * @module
 */

import type { Device, PacketHandler } from "./device.ts";
import type { TxOffload } from "../wire/offload.ts";
import { DeviceMiddleware } from "./middleware.ts";
import { Prng } from "../prng.ts";
import { type Deliver, Impairment, type ImpairmentCounters } from "./impairment.ts";

export type { ImpairmentCounters } from "./impairment.ts";

/** What to impair on a real device, as probabilities per packet (0..1), with the seed and the direction. */
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

/**
 * A device whose traffic is impaired as specified, by the project's one impairment model
 * ({@link Impairment}, one per direction, sharing one seeded PRNG). A real device has no virtual clock, so
 * only the untimed impairments apply: a reordered packet is held back until the next one got through.
 */
export class ImpairedDevice extends DeviceMiddleware {
  readonly #in: Impairment | null;
  readonly #out: Impairment | null;
  readonly #sendInner: Deliver;
  #handler: PacketHandler = () => {};
  readonly #receiveOne: PacketHandler;
  readonly #deliverIn: Deliver;

  /** Wraps `inner`. */
  constructor(inner: Device, spec: ImpairmentSpec) {
    super(inner);
    const random = new Prng(spec.seed);
    const link = { loss: spec.loss, reorder: spec.reorder, duplicate: spec.duplicate };
    this.#in = spec.direction === "out" ? null : new Impairment(link, random);
    this.#out = spec.direction === "in" ? null : new Impairment(link, random);
    this.#sendInner = (p, _flags, offload) => void inner.send(p, offload);
    this.#deliverIn = (p, flags) => this.#handler(p, flags);
    // Untimed: every packet is offered at time 0 and so is due at once (unless held back).
    this.#receiveOne = (p, flags = 0) => this.#in!.offer(p, flags, null, 0, this.#deliverIn);
  }

  /** What was done to received packets. */
  get inbound(): ImpairmentCounters {
    return this.#in?.stats() ?? { lost: 0, duplicated: 0, reordered: 0 };
  }

  /** What was done to sent packets. */
  get outbound(): ImpairmentCounters {
    return this.#out?.stats() ?? { lost: 0, duplicated: 0, reordered: 0 };
  }

  /** Receives through the inner device, impairing what comes in. */
  override receive(onPacket: PacketHandler, max: number): number {
    if (this.#in === null) return this.inner.receive(onPacket, max);
    this.#handler = onPacket;
    const count = this.inner.receive(this.#receiveOne, max);
    // A packet held back is late by at most one loop turn, so a quiet link cannot strand it.
    if (count === 0 && this.#in.holding) {
      this.#in.flush(this.#deliverIn);
      return 1;
    }
    return count;
  }

  /** Sends through the inner device, impairing what goes out. */
  override send(packet: Uint8Array, offload: TxOffload | null = null): boolean {
    if (this.#out === null) return this.inner.send(packet, offload);
    // A packet held back keeps a copy of its descriptor (the sender reuses its own).
    this.#out.offer(packet, 0, offload, 0, this.#sendInner);
    return true;
  }

  /** The inner device's counters and what the impairment did in each direction. */
  override stats(): Record<string, unknown> {
    return { ...super.stats(), impairedIn: this.inbound, impairedOut: this.outbound };
  }

  /** Releases a packet held back outbound; with one held back inbound, no wait (come back to release it). */
  protected override prepareWait(): boolean {
    this.#out?.flush(this.#sendInner);
    return !this.#in?.holding;
  }
}

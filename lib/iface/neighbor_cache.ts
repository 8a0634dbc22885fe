/**
 * The IPv6 neighbour cache with Neighbor Unreachability Detection (RFC 4861 §7.3), sans-I/O: IPv6 → MAC
 * entries in the states INCOMPLETE, REACHABLE, STALE, DELAY and PROBE, driven by the caller's clock.
 *
 * - A packet to an unknown neighbour creates an INCOMPLETE entry and waits in its queue while multicast
 *   solicitations go out every `retransTimerMs`, at most MAX_MULTICAST_SOLICIT (3); then the resolution
 *   fails and the packets are dropped (`unresolved`).
 * - A solicited advertisement makes an entry REACHABLE for ReachableTime (a random 0.5–1.5 × base,
 *   §6.3.2); after that it is STALE. Sending to a STALE entry moves it to DELAY; if nothing confirms
 *   reachability within DELAY_FIRST_PROBE_TIME (5 s) it goes to PROBE: unicast solicitations every
 *   `retransTimerMs`, at most MAX_UNICAST_SOLICIT (3), then the entry is deleted.
 * - Unsolicited information (a solicitation's or advertisement's link-layer option) updates per §7.2.3,
 *   §7.2.5 and Appendix C.
 *
 * Bounds, counted when hit: `capacity` entries (a full cache evicts the least recently used entry not
 * INCOMPLETE, `neighbor-evicted`), `maxQueuedPerNeighbor` and `maxQueuedTotal` waiting packets
 * (`neighbor-queue-full`). Upper-layer reachability hints (TCP progress, §7.3.1) are not used: an entry is
 * confirmed by advertisements only.
 *
 * @module
 */

import type { MacAddress } from "../wire/ethernet.ts";
import type { DropCounters } from "./stats.ts";

/** NUD states (RFC 4861 §7.3.2). */
export type NeighborState = "INCOMPLETE" | "REACHABLE" | "STALE" | "DELAY" | "PROBE";

/** Tunables of {@link NeighborCache}; defaults are RFC 4861 §10's. */
export interface NeighborCacheOptions {
  /** Most entries; default 256. */
  capacity?: number;
  /** BaseReachableTime in ms; default 30 000 (a router's RA may change it). */
  baseReachableTimeMs?: number;
  /** RetransTimer in ms; default 1000. */
  retransTimerMs?: number;
  /** DELAY_FIRST_PROBE_TIME in ms; default 5000. */
  delayFirstProbeMs?: number;
  /** MAX_MULTICAST_SOLICIT; default 3. */
  maxMulticastSolicit?: number;
  /** MAX_UNICAST_SOLICIT; default 3. */
  maxUnicastSolicit?: number;
  /** Packets waiting per neighbour; default 16. */
  maxQueuedPerNeighbor?: number;
  /** Packets waiting in all; default 256. */
  maxQueuedTotal?: number;
  /** Random numbers in [0, 1) for ReachableTime; default `Math.random` (tests pass a fixed one). */
  random?: () => number;
}

/** One neighbour. */
export interface NeighborEntry {
  /** Its address (16 bytes). */
  address: Uint8Array;
  /** Its MAC, or -1 while INCOMPLETE. */
  mac: MacAddress;
  /** NUD state. */
  state: NeighborState;
  /** When the current state's timer fires (REACHABLE → STALE, DELAY → PROBE, next solicitation). */
  timer: number;
  /** Solicitations sent in the current INCOMPLETE or PROBE phase. */
  probes: number;
  /** Packets waiting for resolution (INCOMPLETE only). */
  queue: Uint8Array[];
  /** Last use, for eviction. */
  usedAt: number;
}

/** What the cache asks of its owner while polling. */
export interface NeighborActions {
  /** Send a Neighbor Solicitation for `target`; `mac` -1 means multicast to its solicited-node group. */
  solicit(target: Uint8Array, mac: MacAddress): void;
  /** Send packets that waited for `mac`. */
  release(packet: Uint8Array, mac: MacAddress): void;
}

function keyOf(address: Uint8Array, offset = 0): string {
  let key = "";
  for (let i = 0; i < 16; i += 2) {
    key += ((address[offset + i] << 8) | address[offset + i + 1]).toString(16) + ":";
  }
  return key;
}

/** The bounded IPv6 neighbour cache; see the module comment. */
export class NeighborCache {
  readonly #entries = new Map<string, NeighborEntry>();
  readonly #drops: DropCounters;
  readonly #capacity: number;
  #baseReachable: number;
  #reachableTime: number;
  #retransTimer: number;
  readonly #delayFirstProbe: number;
  readonly #maxMulticast: number;
  readonly #maxUnicast: number;
  readonly #maxQueuedPerNeighbor: number;
  readonly #maxQueuedTotal: number;
  readonly #random: () => number;
  #queuedTotal = 0;
  /** Resolutions that failed (INCOMPLETE with no answer). */
  failures = 0;
  /** Entries deleted after PROBE got no answer. */
  unreachable = 0;
  /** Entries evicted because the cache was full. */
  evictions = 0;

  /** Creates an empty cache counting its drops in `drops`. */
  constructor(drops: DropCounters, options: NeighborCacheOptions = {}) {
    this.#drops = drops;
    this.#capacity = options.capacity ?? 256;
    this.#random = options.random ?? Math.random;
    this.#baseReachable = options.baseReachableTimeMs ?? 30_000;
    this.#reachableTime = this.#computeReachableTime();
    this.#retransTimer = options.retransTimerMs ?? 1000;
    this.#delayFirstProbe = options.delayFirstProbeMs ?? 5000;
    this.#maxMulticast = options.maxMulticastSolicit ?? 3;
    this.#maxUnicast = options.maxUnicastSolicit ?? 3;
    this.#maxQueuedPerNeighbor = options.maxQueuedPerNeighbor ?? 16;
    this.#maxQueuedTotal = options.maxQueuedTotal ?? 256;
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Packets waiting for resolution. */
  get queuedPackets(): number {
    return this.#queuedTotal;
  }

  /** The current ReachableTime in ms. */
  get reachableTime(): number {
    return this.#reachableTime;
  }

  /** The RetransTimer in ms (also DAD's wait, RFC 4862 §5.4). */
  get retransTimer(): number {
    return this.#retransTimer;
  }

  /** Applies a router's Reachable Time and Retrans Timer (RFC 4861 §6.3.4: 0 means unspecified). */
  setTimers(baseReachableMs: number, retransMs: number): void {
    if (baseReachableMs > 0 && baseReachableMs !== this.#baseReachable) {
      this.#baseReachable = baseReachableMs;
      this.#reachableTime = this.#computeReachableTime();
    }
    if (retransMs > 0) this.#retransTimer = retransMs;
  }

  /** The entry for `address`, or undefined. */
  get(address: Uint8Array, offset = 0): NeighborEntry | undefined {
    return this.#entries.get(keyOf(address, offset));
  }

  /** All entries (for stats and tests). */
  entries(): IterableIterator<NeighborEntry> {
    return this.#entries.values();
  }

  /**
   * The MAC to send a packet to `address` now, applying the sending rules of §7.3.3 (STALE → DELAY), or
   * -1 when it is unknown: then the caller hands the packet to {@link NeighborCache.enqueue}.
   */
  resolve(address: Uint8Array, offset: number, now: number): MacAddress {
    const entry = this.#entries.get(keyOf(address, offset));
    if (entry === undefined || entry.state === "INCOMPLETE") return -1;
    entry.usedAt = now;
    if (entry.state === "REACHABLE" && now >= entry.timer) entry.state = "STALE";
    if (entry.state === "STALE") {
      entry.state = "DELAY";
      entry.timer = now + this.#delayFirstProbe;
    }
    return entry.mac;
  }

  /**
   * Queues a packet (copied) for an unresolved neighbour; creates the INCOMPLETE entry if needed. Returns
   * true when the first solicitation is due now (the caller sends it).
   */
  enqueue(address: Uint8Array, offset: number, packet: Uint8Array, now: number): boolean {
    const key = keyOf(address, offset);
    let entry = this.#entries.get(key);
    let created = false;
    if (entry === undefined) {
      if (this.#entries.size >= this.#capacity && !this.#evict()) {
        this.#drops.count("neighbor-cache-full");
        return false;
      }
      entry = {
        address: address.slice(offset, offset + 16),
        mac: -1,
        state: "INCOMPLETE",
        timer: now + this.#retransTimer,
        probes: 1,
        queue: [],
        usedAt: now,
      };
      this.#entries.set(key, entry);
      created = true;
    }
    if (entry.queue.length >= this.#maxQueuedPerNeighbor || this.#queuedTotal >= this.#maxQueuedTotal) {
      this.#drops.count("neighbor-queue-full");
    } else {
      entry.queue.push(packet.slice());
      this.#queuedTotal++;
    }
    return created;
  }

  /**
   * Applies a Neighbor Advertisement for `address` (RFC 4861 §7.2.5): `mac` -1 when it had no target
   * link-layer option. Queued packets are released once the entry has a MAC.
   */
  advertisement(
    address: Uint8Array,
    mac: MacAddress,
    solicited: boolean,
    override: boolean,
    now: number,
    actions: NeighborActions,
  ): void {
    const entry = this.#entries.get(keyOf(address));
    if (entry === undefined) return; // §7.2.5: no entry → the advertisement is silently discarded
    if (entry.state === "INCOMPLETE") {
      if (mac < 0) return;
      entry.mac = mac;
      this.#enter(entry, solicited ? "REACHABLE" : "STALE", now);
      this.#release(entry, actions);
      return;
    }
    const changed = mac >= 0 && mac !== entry.mac;
    if (!override && changed) {
      if (entry.state === "REACHABLE") entry.state = "STALE";
      return;
    }
    if (changed) entry.mac = mac;
    if (solicited) this.#enter(entry, "REACHABLE", now);
    else if (changed) this.#enter(entry, "STALE", now);
  }

  /**
   * Applies a link-layer address learnt from a solicitation, a router advertisement or a redirect
   * (RFC 4861 §7.2.3, §6.3.4): a new entry is STALE; a different MAC makes it STALE; an INCOMPLETE one
   * is resolved (STALE) and its packets released.
   */
  learn(address: Uint8Array, offset: number, mac: MacAddress, now: number, actions: NeighborActions): void {
    const key = keyOf(address, offset);
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      if (this.#entries.size >= this.#capacity && !this.#evict()) return;
      this.#entries.set(key, {
        address: address.slice(offset, offset + 16),
        mac,
        state: "STALE",
        timer: Infinity,
        probes: 0,
        queue: [],
        usedAt: now,
      });
      return;
    }
    if (entry.state === "INCOMPLETE") {
      entry.mac = mac;
      this.#enter(entry, "STALE", now);
      this.#release(entry, actions);
      return;
    }
    if (entry.mac !== mac) {
      entry.mac = mac;
      this.#enter(entry, "STALE", now);
    }
  }

  /** Runs the timers: solicitations due, DELAY → PROBE, failures. Returns the next deadline or `null`. */
  poll(now: number, actions: NeighborActions): number | null {
    let next: number | null = null;
    for (const [key, entry] of this.#entries) {
      if (entry.state === "REACHABLE" && now >= entry.timer) entry.state = "STALE";
      if (entry.state === "DELAY" && now >= entry.timer) {
        // §7.3.3: no confirmation within DELAY_FIRST_PROBE_TIME → PROBE with unicast solicitations.
        entry.state = "PROBE";
        entry.probes = 1;
        entry.timer = now + this.#retransTimer;
        actions.solicit(entry.address, entry.mac);
      } else if ((entry.state === "INCOMPLETE" || entry.state === "PROBE") && now >= entry.timer) {
        const limit = entry.state === "INCOMPLETE" ? this.#maxMulticast : this.#maxUnicast;
        if (entry.probes >= limit) {
          this.#entries.delete(key);
          if (entry.state === "INCOMPLETE") {
            this.failures++;
            for (const _ of entry.queue) this.#drops.count("unresolved");
            this.#queuedTotal -= entry.queue.length;
          } else {
            this.unreachable++;
          }
          continue;
        }
        entry.probes++;
        entry.timer = now + this.#retransTimer;
        actions.solicit(entry.address, entry.state === "INCOMPLETE" ? -1 : entry.mac);
      }
      if (entry.state !== "STALE" && (next === null || entry.timer < next)) next = entry.timer;
    }
    return next;
  }

  /** Drops every entry (e.g. when the link changes); queued packets are counted as `unresolved`. */
  clear(): void {
    for (const entry of this.#entries.values()) for (const _ of entry.queue) this.#drops.count("unresolved");
    this.#entries.clear();
    this.#queuedTotal = 0;
  }

  #enter(entry: NeighborEntry, state: NeighborState, now: number): void {
    entry.state = state;
    entry.probes = 0;
    entry.timer = state === "REACHABLE" ? now + this.#reachableTime : Infinity;
  }

  #release(entry: NeighborEntry, actions: NeighborActions): void {
    const queue = entry.queue;
    entry.queue = [];
    this.#queuedTotal -= queue.length;
    for (const packet of queue) actions.release(packet, entry.mac);
  }

  /** Evicts the least recently used entry that is not INCOMPLETE; false when there is none. */
  #evict(): boolean {
    let victim: string | null = null;
    let oldest = Infinity;
    for (const [key, entry] of this.#entries) {
      if (entry.state !== "INCOMPLETE" && entry.usedAt < oldest) {
        oldest = entry.usedAt;
        victim = key;
      }
    }
    if (victim === null) return false;
    this.#entries.delete(victim);
    this.evictions++;
    this.#drops.count("neighbor-evicted");
    return true;
  }

  /** RFC 4861 §6.3.2: ReachableTime is uniformly random in [0.5, 1.5] × BaseReachableTime. */
  #computeReachableTime(): number {
    return Math.round(this.#baseReachable * (0.5 + this.#random()));
  }
}

/**
 * The ARP cache (RFC 826, RFC 1122 §2.3.2), sans-I/O: IPv4 → MAC entries with expiry on the caller's
 * clock, and resolutions in progress with their retries and the IPv4 packets waiting for them.
 *
 * Bounds, all counted when hit:
 * - entries: at most `capacity`; inserting into a full cache evicts the entry refreshed least recently;
 * - resolutions in progress: at most `maxPending` destinations;
 * - waiting packets: at most `maxQueuedPerDestination` per destination (RFC 1122 §2.3.2.2 asks for at
 *   least one; a few more let a burst survive resolution) and `maxQueuedTotal` in all.
 * A resolution sends `maxRequests` requests `retryIntervalMs` apart (RFC 1122 §2.3.2.1: at most one
 * request per second per destination); when the last one gets no reply within the interval the
 * resolution fails and its packets are dropped under `unresolved`.
 *
 * The cache never sends anything itself: {@link ArpCache.poll} calls back for each request due.
 *
 * @module
 */

import type { Ipv4Address } from "../wire/ipv4_address.ts";
import type { MacAddress } from "../wire/ethernet.ts";
import type { DropCounters } from "./stats.ts";

/** Tunables of {@link ArpCache}. */
export interface ArpCacheOptions {
  /** Most entries kept; default 256. */
  capacity?: number;
  /** Lifetime of an entry in ms; default 60 000 (as smoltcp; Linux keeps 15–45 s reachable then probes). */
  entryLifetimeMs?: number;
  /** Requests sent per resolution before it fails; default 3. */
  maxRequests?: number;
  /** Time between requests, and after the last one before failure, in ms; default 1000. */
  retryIntervalMs?: number;
  /** Most destinations being resolved at once; default 64. */
  maxPending?: number;
  /** Most packets waiting for one destination; default 16. */
  maxQueuedPerDestination?: number;
  /** Most packets waiting in all; default 256. */
  maxQueuedTotal?: number;
}

interface Entry {
  mac: MacAddress;
  expiresAt: number;
}

interface Resolution {
  requestsSent: number;
  nextAt: number;
  queue: Uint8Array[];
}

/** What {@link ArpCache.enqueue} did with a packet. */
export type EnqueueResult =
  /** Queued for a new resolution: the caller sends the first request now. */
  | "request-now"
  /** Queued behind a resolution already in progress. */
  | "queued"
  /** Dropped (and counted) because a bound was reached. */
  | "dropped";

/** Bounded IPv4 → MAC cache with resolutions in progress. */
export class ArpCache {
  readonly #entries = new Map<Ipv4Address, Entry>();
  readonly #pending = new Map<Ipv4Address, Resolution>();
  readonly #drops: DropCounters;
  readonly #capacity: number;
  readonly #lifetime: number;
  readonly #maxRequests: number;
  readonly #retryInterval: number;
  readonly #maxPending: number;
  readonly #maxQueuedPerDestination: number;
  readonly #maxQueuedTotal: number;
  #queuedTotal = 0;
  #nextSweepAt = -Infinity;
  /** Resolutions that failed (no reply to any request). */
  failures = 0;
  /** Entries evicted because the cache was full. */
  evictions = 0;
  /** Entries removed because they expired. */
  expirations = 0;

  /** Creates an empty cache; drops (`unresolved`, `arp-queue-full`, `arp-too-many-pending`) go to `drops`. */
  constructor(drops: DropCounters, options: ArpCacheOptions = {}) {
    this.#drops = drops;
    this.#capacity = options.capacity ?? 256;
    this.#lifetime = options.entryLifetimeMs ?? 60_000;
    this.#maxRequests = options.maxRequests ?? 3;
    this.#retryInterval = options.retryIntervalMs ?? 1000;
    this.#maxPending = options.maxPending ?? 64;
    this.#maxQueuedPerDestination = options.maxQueuedPerDestination ?? 16;
    this.#maxQueuedTotal = options.maxQueuedTotal ?? 256;
  }

  /** The MAC of `ip` when a live entry exists, else `null` (an expired entry is removed). */
  lookup(ip: Ipv4Address, now: number): MacAddress | null {
    const entry = this.#entries.get(ip);
    if (entry === undefined) return null;
    if (now >= entry.expiresAt) {
      this.#entries.delete(ip);
      this.expirations++;
      return null;
    }
    return entry.mac;
  }

  /** Whether `ip` has an entry (live or not yet swept) or a resolution in progress. */
  knows(ip: Ipv4Address): boolean {
    return this.#entries.has(ip) || this.#pending.has(ip);
  }

  /**
   * Records `ip` at `mac` with a fresh lifetime. When a resolution of `ip` was in progress, its waiting
   * packets are handed to `release` in order (and are no longer the cache's).
   */
  insert(ip: Ipv4Address, mac: MacAddress, now: number, release: (packet: Uint8Array) => void): void {
    const existing = this.#entries.get(ip);
    if (existing !== undefined) {
      // Re-insert so that Map order stays "least recently refreshed first" for eviction.
      this.#entries.delete(ip);
      existing.mac = mac;
      existing.expiresAt = now + this.#lifetime;
      this.#entries.set(ip, existing);
    } else {
      if (this.#entries.size >= this.#capacity) {
        const oldest = this.#entries.keys().next().value as Ipv4Address;
        this.#entries.delete(oldest);
        this.evictions++;
      }
      this.#entries.set(ip, { mac, expiresAt: now + this.#lifetime });
    }
    const resolution = this.#pending.get(ip);
    if (resolution !== undefined) {
      this.#pending.delete(ip);
      this.#queuedTotal -= resolution.queue.length;
      for (const packet of resolution.queue) release(packet);
    }
  }

  /**
   * Keeps a copy of `packet` until `ip` is resolved. Returns `request-now` when this starts a resolution
   * (the caller sends the first request at once), `queued` when one is in progress, `dropped` when a
   * bound was hit (counted as `arp-queue-full` or `arp-too-many-pending`).
   */
  enqueue(ip: Ipv4Address, packet: Uint8Array, now: number): EnqueueResult {
    let resolution = this.#pending.get(ip);
    const starting = resolution === undefined;
    if (resolution === undefined) {
      if (this.#pending.size >= this.#maxPending) {
        this.#drops.count("arp-too-many-pending");
        return "dropped";
      }
    } else if (resolution.queue.length >= this.#maxQueuedPerDestination) {
      this.#drops.count("arp-queue-full");
      return "dropped";
    }
    if (this.#queuedTotal >= this.#maxQueuedTotal) {
      this.#drops.count("arp-queue-full");
      return "dropped";
    }
    if (resolution === undefined) {
      resolution = { requestsSent: 1, nextAt: now + this.#retryInterval, queue: [] };
      this.#pending.set(ip, resolution);
    }
    resolution.queue.push(packet.slice());
    this.#queuedTotal++;
    return starting ? "request-now" : "queued";
  }

  /**
   * Sends due retries through `request`, fails resolutions whose last request went unanswered (their
   * packets dropped as `unresolved`), sweeps expired entries, and returns the next retry deadline.
   */
  poll(now: number, request: (ip: Ipv4Address) => void): number | null {
    let next: number | null = null;
    for (const [ip, resolution] of this.#pending) {
      if (now >= resolution.nextAt) {
        if (resolution.requestsSent >= this.#maxRequests) {
          this.#pending.delete(ip);
          this.#queuedTotal -= resolution.queue.length;
          for (let i = 0; i < resolution.queue.length; i++) this.#drops.count("unresolved");
          this.failures++;
          continue;
        }
        resolution.requestsSent++;
        resolution.nextAt = now + this.#retryInterval;
        request(ip);
      }
      if (next === null || resolution.nextAt < next) next = resolution.nextAt;
    }
    // Sweep at most once a second: poll runs once per received batch, and lookups expire lazily anyway.
    if (now >= this.#nextSweepAt) {
      this.#nextSweepAt = now + 1000;
      for (const [ip, entry] of this.#entries) {
        if (now >= entry.expiresAt) {
          this.#entries.delete(ip);
          this.expirations++;
        }
      }
    }
    return next;
  }

  /** Forgets every entry and resolution (e.g. after an address change); waiting packets are counted as `flushed`. */
  clear(): void {
    for (const resolution of this.#pending.values()) {
      for (let i = 0; i < resolution.queue.length; i++) this.#drops.count("flushed");
    }
    this.#pending.clear();
    this.#entries.clear();
    this.#queuedTotal = 0;
  }

  /** Number of entries (including expired ones not yet swept). */
  get size(): number {
    return this.#entries.size;
  }

  /** Number of resolutions in progress. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Number of packets waiting for resolutions. */
  get queuedPackets(): number {
    return this.#queuedTotal;
  }

  /** The live entries as `ip → mac` numbers, for status pages and tests. */
  entries(now: number): Array<{ ip: Ipv4Address; mac: MacAddress; expiresInMs: number }> {
    const list: Array<{ ip: Ipv4Address; mac: MacAddress; expiresInMs: number }> = [];
    for (const [ip, entry] of this.#entries) {
      if (now < entry.expiresAt) list.push({ ip, mac: entry.mac, expiresInMs: entry.expiresAt - now });
    }
    return list;
  }
}

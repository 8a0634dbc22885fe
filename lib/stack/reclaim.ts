/**
 * Gives memory back to the system once many connections have ended. Two things keep it otherwise, both
 * measured with 10,000 connections closed at once (the process stayed at 2.2–2.6 times its baseline):
 * - V8 collects only when JavaScript allocates, and an idle stack allocates next to nothing, so the
 *   closed connections' objects stay on the heap as garbage, its pages resident;
 * - the buffer stores (ArrayBuffers, 16 KiB and up, below glibc's mmap threshold) are freed into
 *   glibc's heap, which keeps the pages: 320 MiB of them freed stayed resident until `malloc_trim`.
 * So when the connection count or the buffer bytes have dropped far below their high-water mark and
 * the drop has settled, a full collection runs and then `malloc_trim(0)` (a few ms to a few tens of ms,
 * once per such drop, never on the packet path).
 *
 * @module
 */

import { libc } from "../ffi/libc.ts";
import { logger } from "../log.ts";

const log = logger("stack");

/** What is sampled: connections held and bytes of buffer store. */
export interface MemoryUsageSample {
  /** TCP connections held (every state). */
  connections: number;
  /** Bytes of buffer store allocated. */
  bufferBytes: number;
}

/** Options of {@link ReclaimTrigger}. */
export interface ReclaimTriggerOptions {
  /** A drop of this many connections below the high-water mark counts; default 1000. */
  connectionDrop?: number;
  /** A drop of this many buffer bytes below the high-water mark counts; default 16 MiB. */
  byteDrop?: number;
  /** Samples after which a drop still going on is acted on anyway; default 5. */
  maxWait?: number;
}

/**
 * Decides, one sample at a time, when to reclaim: after a large drop below the high-water marks, once a
 * sample shows no further drop (the closes have settled) or after `maxWait` samples. Pure logic.
 */
export class ReclaimTrigger {
  readonly #connectionDrop: number;
  readonly #byteDrop: number;
  readonly #maxWait: number;
  #highConnections = 0;
  #highBytes = 0;
  #last: MemoryUsageSample | null = null;
  #waited = 0;

  /** A trigger with the given thresholds. */
  constructor(options: ReclaimTriggerOptions = {}) {
    this.#connectionDrop = options.connectionDrop ?? 1000;
    this.#byteDrop = options.byteDrop ?? 16 << 20;
    this.#maxWait = options.maxWait ?? 5;
  }

  /** Takes a sample; returns whether to reclaim now (the high-water marks then restart from it). */
  sample(s: MemoryUsageSample): boolean {
    this.#highConnections = Math.max(this.#highConnections, s.connections);
    this.#highBytes = Math.max(this.#highBytes, s.bufferBytes);
    const last = this.#last;
    this.#last = s;
    const dropped = this.#highConnections - s.connections >= this.#connectionDrop ||
      this.#highBytes - s.bufferBytes >= this.#byteDrop;
    if (!dropped) {
      this.#waited = 0;
      return false;
    }
    const settled = last !== null && s.connections >= last.connections && s.bufferBytes >= last.bufferBytes;
    if (!settled && ++this.#waited < this.#maxWait) return false;
    this.#waited = 0;
    this.#highConnections = s.connections;
    this.#highBytes = s.bufferBytes;
    return true;
  }
}

/**
 * The process's reclaim: a full V8 collection when the process may expose `gc` (see
 * {@link exposeGc}), then glibc's `malloc_trim(0)`. Failures (no glibc) are logged once and ignored.
 */
export function reclaimProcessMemory(gc: (() => void) | null): void {
  gc?.();
  try {
    libc().malloc_trim(0n);
  } catch (error) {
    if (!trimFailed) log.debug("malloc_trim unavailable: {error}", { error });
    trimFailed = true;
  }
}

let trimFailed = false;

/**
 * Makes V8's `gc()` callable (the `--expose-gc` flag set at run time, read through a fresh context), or
 * null when that is refused. It changes the whole process: only for a program that owns it (the CLI).
 */
export async function exposeGc(): Promise<(() => void) | null> {
  try {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc");
    return typeof gc === "function" ? gc as () => void : null;
  } catch {
    return null;
  }
}

/** A running reclaimer: its counters, and how to stop it. */
export interface MemoryReclaimer {
  /** Stops sampling. */
  stop(): void;
  /** Reclaims done and the time they took, for stats. */
  stats(): { reclaims: number; lastMs: number };
}

/**
 * Samples `usage` every `intervalMs` (default 1000: negligible next to the loop's own wake-ups) and
 * reclaims with `reclaim` when a {@link ReclaimTrigger} says so.
 */
export function startMemoryReclaimer(
  usage: () => MemoryUsageSample,
  reclaim: () => void,
  options: ReclaimTriggerOptions & { intervalMs?: number } = {},
): MemoryReclaimer {
  const trigger = new ReclaimTrigger(options);
  let reclaims = 0;
  let lastMs = 0;
  const timer = setInterval(() => {
    if (!trigger.sample(usage())) return;
    const t0 = performance.now();
    reclaim();
    lastMs = Math.round((performance.now() - t0) * 10) / 10;
    reclaims++;
    log.debug("memory reclaimed in {ms} ms", { ms: lastMs });
  }, options.intervalMs ?? 1000);
  // The stack's loop keeps the process alive; this timer alone should not.
  Deno.unrefTimer(timer);
  return {
    stop: () => clearInterval(timer),
    stats: () => ({ reclaims, lastMs }),
  };
}

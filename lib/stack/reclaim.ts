/**
 * Gives memory back to the system once many connections have ended. Two things keep it otherwise, both
 * measured with 10,000 connections closed at once (the process stayed at 2.2–2.6 times its baseline):
 * - V8 collects only when JavaScript allocates, and an idle stack allocates next to nothing, so the
 *   closed connections' objects stay on the heap as garbage, its pages resident;
 * - the buffer stores (ArrayBuffers, 16 KiB and up, below glibc's mmap threshold) are freed into
 *   glibc's heap, which keeps the pages: 320 MiB of them freed stayed resident until `malloc_trim`.
 * So when the connection count or the buffer bytes have changed much and the change has settled, a
 * full collection runs and then `malloc_trim(0)` (tens of ms with 10,000 connections, once per such
 * change, never on the packet path).
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
  /** A change of this many connections since the last reclaim counts; default 1000. */
  connectionChange?: number;
  /** A change of this many buffer bytes since the last reclaim counts; default 16 MiB. */
  byteChange?: number;
  /**
   * Growth is acted on only up to this many connections; default 131072. A full collection stops the
   * stack for a time that grows with what is live (measured on a loaded 2-core machine: 0.2–0.6 s with
   * 10,000 connections, 1.6 s with 100,000, once after the burst), so past this the garbage of a burst
   * is left to V8 (100,000 connections left so: 457 MiB resident instead of about 400).
   */
  maxConnectionsForGrowth?: number;
}

/**
 * Decides, one sample at a time, when to reclaim: after a large change of the connection count or the
 * buffer bytes since the last reclaim, once a sample shows the change has settled (the burst of opens or
 * closes is over: less than a tenth of the threshold moved since the previous sample). Pure logic.
 *
 * Growth counts as well as a drop: a burst of handshakes leaves its garbage (packets' views, promises)
 * on a heap that V8 grew to absorb the burst, and an idle stack would hold it for good (measured: 10,000
 * idle connections held 90 MiB of resident memory for ~40 MiB of live objects).
 */
export class ReclaimTrigger {
  readonly #connectionChange: number;
  readonly #byteChange: number;
  readonly #maxForGrowth: number;
  #mark: MemoryUsageSample = { connections: 0, bufferBytes: 0 };
  #last: MemoryUsageSample | null = null;

  /** A trigger with the given thresholds. */
  constructor(options: ReclaimTriggerOptions = {}) {
    this.#connectionChange = options.connectionChange ?? 1000;
    this.#byteChange = options.byteChange ?? 16 << 20;
    this.#maxForGrowth = options.maxConnectionsForGrowth ?? 131072;
  }

  /** Takes a sample; returns whether to reclaim now (the next change is then measured from it). */
  sample(s: MemoryUsageSample): boolean {
    const last = this.#last;
    this.#last = s;
    const mark = this.#mark;
    const connectionsDelta = s.connections - mark.connections;
    const bytesDelta = s.bufferBytes - mark.bufferBytes;
    const changed = Math.abs(connectionsDelta) >= this.#connectionChange ||
      Math.abs(bytesDelta) >= this.#byteChange;
    if (!changed || last === null) return false;
    const settled = Math.abs(s.connections - last.connections) < Math.max(1, this.#connectionChange / 10) &&
      Math.abs(s.bufferBytes - last.bufferBytes) < this.#byteChange / 16;
    if (!settled) return false;
    this.#mark = s;
    // A drop always (what is left live is less than before); growth only while a collection is short.
    const grew = connectionsDelta > 0 || (connectionsDelta === 0 && bytesDelta > 0);
    return !grew || s.connections <= this.#maxForGrowth;
  }
}

/** How long the parts of the last reclaim took, in ms. */
export interface ReclaimTimes {
  /** The full collection. */
  gcMs: number;
  /** `malloc_trim`. */
  trimMs: number;
}

/**
 * The process's reclaim: a full V8 collection when the process may expose `gc` (see
 * {@link exposeGc}), then glibc's `malloc_trim(0)`. Failures (no glibc) are logged once and ignored.
 */
export function reclaimProcessMemory(gc: (() => void) | null): ReclaimTimes {
  const t0 = performance.now();
  gc?.();
  const t1 = performance.now();
  try {
    libc().malloc_trim(0n);
  } catch (error) {
    if (!trimFailed) log.debug("malloc_trim unavailable: {error}", { error });
    trimFailed = true;
  }
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return { gcMs: round(t1 - t0), trimMs: round(performance.now() - t1) };
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
  /** Reclaims done and the time the last one took, for stats. */
  stats(): { reclaims: number } & ReclaimTimes;
}

/**
 * Samples `usage` every `intervalMs` (default 1000: negligible next to the loop's own wake-ups) and
 * reclaims with `reclaim` when a {@link ReclaimTrigger} says so.
 */
export function startMemoryReclaimer(
  usage: () => MemoryUsageSample,
  reclaim: () => ReclaimTimes,
  options: ReclaimTriggerOptions & { intervalMs?: number } = {},
): MemoryReclaimer {
  const trigger = new ReclaimTrigger(options);
  let reclaims = 0;
  let last: ReclaimTimes = { gcMs: 0, trimMs: 0 };
  const timer = setInterval(() => {
    if (!trigger.sample(usage())) return;
    last = reclaim();
    reclaims++;
    log.debug("memory reclaimed: gc {gcMs} ms, trim {trimMs} ms", { ...last });
  }, options.intervalMs ?? 1000);
  // The stack's loop keeps the process alive; this timer alone should not.
  Deno.unrefTimer(timer);
  return {
    stop: () => clearInterval(timer),
    stats: () => ({ reclaims, ...last }),
  };
}

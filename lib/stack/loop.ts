/**
 * The shell's I/O loop: drives a {@link StackCore} with a {@link Device}. One synchronous
 * {@link DeviceLoop.turn} drains what is ready into the core and polls it; {@link DeviceLoop.run} waits for
 * readiness once between turns, yielding to the event loop between batches so application code runs: no
 * Promise per packet. The wait is an awaited `poll` on a pool thread (`async`), or (`block`, for a
 * program the stack owns) a synchronous `poll` on this thread once an event-loop turn found nothing to
 * do, which saves the two thread hand-offs per wake-up. Simulations call `turn` with a virtual clock.
 *
 * @module
 */

import type { Device, PacketHandler } from "../phy/device.ts";
import type { StackCore, Transmit } from "./core.ts";
import { logger } from "../log.ts";

/** Device-level counters kept by the loop. */
export interface DeviceCounters {
  /** Packets read from the device. */
  rxPackets: number;
  /** Bytes read. */
  rxBytes: number;
  /** Packets written to the device. */
  txPackets: number;
  /** Bytes written. */
  txBytes: number;
  /** Writes the device refused. */
  txErrors: number;
  /** Readiness waits (awaited FFI calls, or synchronous ones in `block` mode). */
  waits: number;
  /** Of {@link DeviceCounters.waits}, those that blocked the thread (`block` mode). */
  blockingWaits: number;
  /** Blocking waits a signal interrupted, each followed by a timer turn of the event loop. */
  signalTurns: number;
}

/** Options of {@link DeviceLoop}. */
export interface DeviceLoopOptions {
  /** Packets drained per turn before yielding to the event loop; default 512 (see `StackOptions.batchSize`). */
  batchSize?: number;
  /**
   * How {@link DeviceLoop.run} waits for packets: `async` (default) awaits the device's poll; `block`
   * blocks the thread in `Device.waitSync` (see `StackOptions.wait`). Devices that cannot block wait
   * `async`.
   */
  wait?: "async" | "block";
}

/**
 * Longest synchronous wait of a `block` loop before the event loop gets a turn, right after activity (a
 * packet, or the application asking for a poll): it bounds how late timers and async I/O of the program
 * run while it is busy. (While packets flow every packet ends the wait anyway, and each wait is preceded
 * by an event-loop turn.)
 */
export const BLOCK_SLICE_MS = 25;
/**
 * Longest synchronous wait once the stack is idle. Each wait that ends with nothing to do doubles the
 * slice, from {@link BLOCK_SLICE_MS} up to this: an idle stack wakes once a second (plus the core's own
 * deadlines), and a lone packet (a router solicitation, an MLD report) costs a handful of wake-ups, not
 * a second of short slices. Each wake-up of an idle process costs ~0.5 ms of CPU here (cold caches, code
 * not optimized), so 5 a second were ~0.3% of a core. Signals end a wait at once (EINTR), so this bounds
 * only how late the program's timers (HTTP timeouts of 20–30 s) run.
 */
export const BLOCK_IDLE_SLICE_MS = 1000;

const log = logger("stack");

/** Yields to the event loop for about 5 µs (setTimeout(0) would cost ~2 ms). */
function yieldNow(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Yields to the event loop through a timer (~1–2 ms). Unlike an immediate, it lets the runtime turn its
 * I/O driver, which is how Deno delivers signals to their listeners (and fires due timers): a loop that
 * only ever yields through immediates between blocking waits saw a SIGTERM that did not interrupt a wait
 * reach its listener only after dozens of further waits.
 */
function timerTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * From this slice on (the stack quiet for ~175 ms), each blocking wait is preceded by a {@link timerTurn}
 * instead of an immediate: a signal or timer that came while the loop ran is handled before the long
 * wait, and an idle stack pays the ~1–2 ms turn at most a few times a second.
 */
const TIMER_TURN_SLICE_MS = 200;

/** The longest wait while running (ms), and while draining at shutdown. */
const IDLE_WAIT_MS = 1000;
const DRAIN_WAIT_MS = 20;

/** Moves packets between one device and one core, and counts them. */
export class DeviceLoop {
  /** The device. */
  readonly device: Device;
  /** Writes one packet or frame of the core to the device and counts it: pass it to the core. */
  readonly transmit: Transmit;
  readonly #counters: DeviceCounters = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txErrors: 0,
    waits: 0,
    blockingWaits: 0,
    signalTurns: 0,
  };
  readonly #batchSize: number;
  readonly #block: boolean;
  readonly #onPacket: PacketHandler;
  #core: StackCore | null = null;
  /** The time of the packets being read. */
  #now = 0;
  /** Whether the application asked for a poll since the last wait (`block` mode: keep the slice short). */
  #woken = false;

  /** Prepares a loop over `device`; {@link attach} the core next. */
  constructor(device: Device, options: DeviceLoopOptions = {}) {
    this.device = device;
    this.#batchSize = options.batchSize ?? 512;
    this.#block = options.wait === "block" && device.waitSync !== undefined;
    const counters = this.#counters;
    this.transmit = (packet, offload) => {
      if (device.send(packet, offload)) {
        counters.txPackets++;
        counters.txBytes += packet.length;
      } else {
        counters.txErrors++;
      }
    };
    this.#onPacket = (packet, flags = 0) => {
      counters.rxPackets++;
      counters.rxBytes += packet.length;
      this.#core!.ingress(packet, this.#now, flags);
    };
  }

  /** Sets the core this loop drives; the core's wake-ups wake the device's wait. */
  attach(core: StackCore): void {
    this.#core = core;
    core.onWake = () => this.wake();
  }

  /** Makes the loop poll the core soon: the pending (or the next) wait returns at once. */
  wake(): void {
    this.#woken = true;
    this.device.wake();
  }

  /**
   * One synchronous turn: reads up to the batch size of ready packets into the core (at `clock()`), then
   * polls the core (at a fresh `clock()`). Returns how many packets were read and the next deadline.
   */
  turn(clock: () => number): { received: number; deadline: number | null } {
    this.#now = clock();
    const received = this.device.receive(this.#onPacket, this.#batchSize);
    const deadline = this.#core!.poll(clock());
    return { received, deadline };
  }

  /**
   * Runs turns until `finished(now)` holds, waiting on the device between them (at most until the core's
   * next deadline); then polls once more to flush what shutting down queued, and closes the device.
   * `draining()` says that shutdown has begun, so waits are kept short.
   */
  async run(clock: () => number, finished: (now: number) => boolean, draining: () => boolean): Promise<void> {
    const device = this.device;
    const counters = this.#counters;
    /** `block` mode: the current slice, doubled after each wait that found nothing to do. */
    let slice = BLOCK_SLICE_MS;
    try {
      // Yield once so that the caller's constructor returns before any packet is handled.
      await yieldNow();
      while (true) {
        if (finished(clock())) {
          this.#core!.poll(clock()); // flush what closing queued (RSTs)
          break;
        }
        const { received, deadline } = this.turn(clock);
        const now = clock();
        if (received > 0) slice = BLOCK_SLICE_MS;
        if (received >= this.#batchSize || (received > 0 && !this.#block)) {
          // More may be ready: a read returning EAGAIN (~1 µs) is far cheaper than an awaited poll (and
          // the application's answer to this batch goes out on the next turn, not after a wake of it).
          await yieldNow();
          continue;
        }
        // `block` with fewer than a batch: the device is drained (its reads ended on EAGAIN), so go
        // straight to the blocking wait, which first yields once for the application; output it queues
        // there makes the wait return at once. A ping or a request/response round trip saves a second
        // turn: an event-loop yield, a read and a poll of the core.
        const limit = draining() ? DRAIN_WAIT_MS : IDLE_WAIT_MS;
        const timeout = deadline === null ? limit : Math.min(limit, Math.max(0, deadline - now));
        if (timeout > 0 && this.#block) {
          // Block only once the event loop is idle: one turn runs the microtasks and callbacks the batch
          // caused (an application answering), which may queue output (a wake makes the wait return).
          if (slice >= TIMER_TURN_SLICE_MS) await timerTurn();
          else await yieldNow();
          counters.waits++;
          counters.blockingWaits++;
          if (this.#woken) {
            this.#woken = false;
            slice = BLOCK_SLICE_MS;
          }
          const waitMs = Math.min(timeout, slice);
          const blockedAt = clock();
          if (device.waitSync!(waitMs)) {
            // A signal: its listeners run only once the runtime turns its I/O driver (see timerTurn),
            // so turn it now rather than after further slices.
            counters.signalTurns++;
            slice = BLOCK_SLICE_MS;
            await timerTurn();
            continue;
          }
          // A full slice without packets: wait longer next time (a packet, or a wake, resets it). A wait
          // that returned at once (a wake queued before it) does not count.
          if (waitMs === slice && clock() - blockedAt >= waitMs - 1) {
            slice = Math.min(2 * slice, BLOCK_IDLE_SLICE_MS);
          }
        } else if (timeout > 0) {
          counters.waits++;
          await device.wait(timeout);
        } else {
          await yieldNow();
        }
      }
    } catch (error) {
      log.error("the I/O loop stopped: {error}", { error });
      throw error;
    } finally {
      device.close();
    }
  }

  /** The device's counters, the loop's and the device's own, as a JSON-able object. */
  stats(): Record<string, unknown> {
    return { name: this.device.name, ...this.#counters, ...this.device.stats?.() };
  }
}

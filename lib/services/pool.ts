/**
 * The bound on concurrent connections of one service. When it is full, a new connection first takes the
 * place of the connection idle the longest (a keep-alive HTTP connection waiting for its next request: the
 * client may reopen it, RFC 9112 §9.3.1); then that of the connection whose request has been arriving the
 * longest, once for more than {@link SLOW_REQUEST_MS} (slowloris: a header trickled a byte at a time,
 * which would otherwise hold its place until the request deadline while every newcomer is refused); only
 * when neither exists is the newcomer refused. Every admission, refusal and eviction is counted.
 *
 * @module
 */

/** A connection's place in a {@link ConnectionPool}. */
export interface PoolSlot {
  /** Set by the service while the connection waits for the client with nothing pending. */
  idle: boolean;
  /**
   * Set by the service while a request has begun (its first byte came) and is not complete: a place
   * held this way for longer than {@link SLOW_REQUEST_MS} may be taken under pressure.
   */
  reading: boolean;
  /** Aborted when the pool takes the place of this connection: the service closes it. */
  readonly signal: AbortSignal;
}

/**
 * How long a request may be arriving before its connection can lose its place to a newcomer when the
 * pool is full. A request on a working path arrives within a round trip or two; one still incomplete
 * after a second is being trickled.
 */
export const SLOW_REQUEST_MS = 1000;

class Slot implements PoolSlot {
  #idle = false;
  idleSince = 0;
  #reading = false;
  readingSince = 0;
  // Made when the service asks for the signal (HTTP does; echo, discard and chargen do not): about
  // 0.5 KiB of heap per held connection saved.
  #controller: AbortController | null = null;
  #aborted = false;

  /** Closes the connection through its signal (see {@link PoolSlot.signal}). */
  abort(): void {
    this.#aborted = true;
    this.#controller?.abort();
  }

  get idle(): boolean {
    return this.#idle;
  }

  set idle(idle: boolean) {
    if (idle && !this.#idle) this.idleSince = performance.now();
    this.#idle = idle;
  }

  get reading(): boolean {
    return this.#reading;
  }

  set reading(reading: boolean) {
    if (reading && !this.#reading) this.readingSince = performance.now();
    this.#reading = reading;
  }

  get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort();
    }
    return this.#controller.signal;
  }
}

/** Admits up to `max` connections at once. */
export class ConnectionPool {
  /** The bound. */
  readonly max: number;
  /** Connections admitted. */
  accepted = 0;
  /** Connections refused (reset) because the pool was full of busy connections. */
  refused = 0;
  /** Idle connections closed to make room. */
  idleClosed = 0;
  /** Connections closed to make room because their request had been arriving too long (slowloris). */
  slowClosed = 0;
  readonly #slots = new Set<Slot>();

  /** Creates a pool for at most `max` (≥ 1) connections. */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`connection bound must be ≥ 1, got ${max}`);
    this.max = max;
  }

  /** Connections holding a place now. */
  get active(): number {
    return this.#slots.size;
  }

  /**
   * A place for a new connection, making room by closing the connection idle the longest if need be;
   * `null` when every place is busy (the caller refuses the connection).
   */
  admit(): PoolSlot | null {
    if (this.#slots.size >= this.max) {
      let victim: Slot | null = null;
      for (const slot of this.#slots) {
        if (slot.idle && (victim === null || slot.idleSince < victim.idleSince)) victim = slot;
      }
      if (victim !== null) this.idleClosed++;
      else {
        const slowBefore = performance.now() - SLOW_REQUEST_MS;
        for (const slot of this.#slots) {
          if (
            slot.reading && slot.readingSince < slowBefore &&
            (victim === null || slot.readingSince < victim.readingSince)
          ) victim = slot;
        }
        if (victim === null) {
          this.refused++;
          return null;
        }
        this.slowClosed++;
      }
      this.#slots.delete(victim);
      victim.abort();
    }
    const slot = new Slot();
    this.#slots.add(slot);
    this.accepted++;
    return slot;
  }

  /** Gives a place back when its connection has ended (a no-op for an evicted one). */
  release(slot: PoolSlot): void {
    this.#slots.delete(slot as Slot);
  }

  /** The counters as a plain object for JSON. */
  stats(): Record<string, number> {
    return {
      max: this.max,
      active: this.active,
      accepted: this.accepted,
      refused: this.refused,
      idleClosed: this.idleClosed,
      slowClosed: this.slowClosed,
    };
  }
}

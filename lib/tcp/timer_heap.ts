/**
 * The TCP layer's timer queue: a binary min-heap of connections keyed by their next deadline, indexed
 * (each entry knows its place) so that re-arming, cancelling and removing cost O(log n) and finding what
 * is due costs O(log n) per due entry. With 100,000 connections a poll then visits only the connections
 * whose timer fired, never all of them.
 *
 * @module
 */

/** What the heap needs from an entry: two fields it owns (initialize them to -1 and Infinity). */
export interface TimerEntry {
  /** The entry's index in the heap, or -1 when not queued. Written only by {@link TimerHeap}. */
  timerIndex: number;
  /** The deadline the entry is queued at (Infinity when not queued). Written only by {@link TimerHeap}. */
  timerDeadline: number;
}

/** An indexed min-heap of entries by deadline. */
export class TimerHeap<T extends TimerEntry> {
  readonly #items: T[] = [];

  /** Entries queued. */
  get size(): number {
    return this.#items.length;
  }

  /** The earliest deadline queued, or Infinity. */
  get earliest(): number {
    return this.#items.length === 0 ? Infinity : this.#items[0].timerDeadline;
  }

  /**
   * Queues `entry` at `deadline`, moving it if it is queued already; a null or infinite deadline
   * removes it.
   */
  schedule(entry: T, deadline: number | null): void {
    if (deadline === null || deadline === Infinity) {
      this.remove(entry);
      return;
    }
    const items = this.#items;
    const i = entry.timerIndex;
    if (i < 0) {
      entry.timerDeadline = deadline;
      entry.timerIndex = items.length;
      items.push(entry);
      this.#up(items.length - 1);
      return;
    }
    const old = entry.timerDeadline;
    if (deadline === old) return;
    entry.timerDeadline = deadline;
    if (deadline < old) this.#up(i);
    else this.#down(i);
  }

  /** Removes `entry` if it is queued. */
  remove(entry: T): void {
    const i = entry.timerIndex;
    if (i < 0) return;
    const items = this.#items;
    const last = items.pop()!;
    entry.timerIndex = -1;
    entry.timerDeadline = Infinity;
    if (last === entry) return;
    items[i] = last;
    last.timerIndex = i;
    this.#up(i);
    this.#down(last.timerIndex);
  }

  /** Removes and returns the earliest entry if its deadline is at or before `now`; otherwise null. */
  popDue(now: number): T | null {
    const items = this.#items;
    if (items.length === 0 || items[0].timerDeadline > now) return null;
    const first = items[0];
    this.remove(first);
    return first;
  }

  #up(i: number): void {
    const items = this.#items;
    const entry = items[i];
    const key = entry.timerDeadline;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent];
      if (p.timerDeadline <= key) break;
      items[i] = p;
      p.timerIndex = i;
      i = parent;
    }
    items[i] = entry;
    entry.timerIndex = i;
  }

  #down(i: number): void {
    const items = this.#items;
    const n = items.length;
    const entry = items[i];
    const key = entry.timerDeadline;
    while (true) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && items[right].timerDeadline < items[left].timerDeadline ? right : left;
      const c = items[child];
      if (c.timerDeadline >= key) break;
      items[i] = c;
      c.timerIndex = i;
      i = child;
    }
    items[i] = entry;
    entry.timerIndex = i;
  }
}

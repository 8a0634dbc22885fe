/**
 * Lost-retransmission detection in fast recovery: each retransmission is remembered with the SND.NXT
 * of that moment; once the peer SACKs a full segment sent after it while it is still missing, the
 * retransmission was lost too (the idea of Linux's tcp_mark_lost_retrans and of RACK, RFC 8985, without
 * RACK's reordering window: a reordered retransmission costs one needless resend). A DupThresh-segment
 * margin left twice as many RTOs in a low-RTT 5 %-loss simulation, where windows are small after losses.
 *
 * @module
 */

import type { SackScoreboard } from "./sack_scoreboard.ts";
import { seqAdd, seqGe, seqLt, seqMax } from "./seq.ts";

/** How many retransmissions are remembered; beyond that the oldest is forgotten (the RTO finds it). */
export const RETRANSMISSION_LOG_CAPACITY = 256;

const NONE = new Uint32Array(0);

/** A bounded FIFO of the retransmissions of one recovery episode. */
export class RetransmissionLog {
  // Allocated at the first retransmission: most connections never retransmit (3 KiB each saved).
  #start = NONE;
  #end = NONE;
  #sentAtNxt = NONE;
  #head = 0;
  #count = 0;
  /** Whether the oldest logged retransmission was found lost (and not yet resent). */
  lost = false;

  /** Retransmissions logged and not yet known delivered. */
  get count(): number {
    return this.#count;
  }

  /** Forgets everything (a new recovery episode, or recovery undone). */
  clear(): void {
    this.#count = 0;
    this.lost = false;
  }

  /** Logs a retransmission of [`start`, `end`) sent when SND.NXT was `sndNxt`. */
  record(start: number, end: number, sndNxt: number): void {
    const cap = RETRANSMISSION_LOG_CAPACITY;
    if (this.#start === NONE) {
      this.#start = new Uint32Array(cap);
      this.#end = new Uint32Array(cap);
      this.#sentAtNxt = new Uint32Array(cap);
    }
    if (this.#count === cap) {
      // Full: forget the oldest record (its loss will then be found by the RTO instead).
      this.#head = (this.#head + 1) % cap;
      this.#count--;
    }
    const i = (this.#head + this.#count) % cap;
    this.#start[i] = start;
    this.#end[i] = end;
    this.#sentAtNxt[i] = sndNxt;
    this.#count++;
  }

  /**
   * Drops the retransmissions that arrived (cumulatively acknowledged or SACKed) and marks the oldest
   * remaining one {@link lost} when the highest SACK is a full `mss` beyond the SND.NXT of its sending.
   */
  detect(sndUna: number, scoreboard: SackScoreboard, mss: number): void {
    const cap = RETRANSMISSION_LOG_CAPACITY;
    while (this.#count > 0) {
      const i = this.#head;
      const start = seqMax(this.#start[i], sndUna);
      const end = this.#end[i];
      if (seqLt(start, end) && scoreboard.unsackedBytes(start, end) > 0) break;
      this.#head = (i + 1) % cap;
      this.#count--;
    }
    if (this.#count === 0 || this.lost) return;
    const threshold = seqAdd(this.#sentAtNxt[this.#head], mss);
    if (seqGe(scoreboard.highestSacked(sndUna), threshold)) this.lost = true;
  }

  /** Start of the oldest logged retransmission (only when {@link count} > 0). */
  get oldestStart(): number {
    return this.#start[this.#head];
  }

  /** End of the oldest logged retransmission (only when {@link count} > 0). */
  get oldestEnd(): number {
    return this.#end[this.#head];
  }

  /** The oldest retransmission was sent again when SND.NXT was `sndNxt`. */
  resent(sndNxt: number): void {
    this.#sentAtNxt[this.#head] = sndNxt;
  }
}

/**
 * The log of every connection that has not retransmitted in fast recovery yet: shared and never recorded
 * into (`clear`, `detect` and `lost = false` leave an empty log as it is), so that most connections own none.
 */
export const NO_RETRANSMISSIONS: RetransmissionLog = new RetransmissionLog();

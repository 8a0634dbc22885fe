/**
 * Holds the application's SYN to another host until the relay knows whether that host accepts, as
 * pasta does: the stack's TCP sees the SYN (and answers SYN-ACK) only after the host connection is
 * open, so a refused port is an RST to the SYN and an unreachable host an ICMP host unreachable (which
 * makes the application's connect fail at once, RFC 1122 §4.2.3.9), never an accepted connection
 * that then breaks.
 *
 * It sits between the IPv4 layer and TCP as a {@link TransportProtocol}: transit SYNs of new 4-tuples
 * are copied and held (bounded by the relay's flow table, whose `onSyn` decides whether to hold one);
 * everything else goes straight to TCP. Decisions are applied at the next {@link SynGate.poll}, where a
 * packet sink is at hand.
 *
 * @module
 */

import type { Ipv4Datagram, Ipv4Sink, TransportProtocol } from "../iface/protocol.ts";
import { sendReset } from "../tcp/reset.ts";
import { TcpFlags, TcpSegment } from "../wire/tcp.ts";
import { UnreachableCode } from "../wire/icmpv4.ts";
import { seqAdd } from "../tcp/seq.ts";
import { flowKey } from "./flows.ts";

/** What becomes of a held SYN. */
export type SynDecision = "admit" | "refuse" | "unreachable";

/** A SYN held while the relay connects to its destination. */
export interface HeldSyn {
  /** The flow key ({@link flowKey} "tcp"). */
  readonly key: string;
  /** The application's address. */
  readonly src: number;
  /** The application's port. */
  readonly srcPort: number;
  /** The destination the application asked for. */
  readonly dst: number;
  /** The destination port. */
  readonly dstPort: number;
  /** A copy of the SYN's datagram. */
  readonly datagram: Ipv4Datagram;
  /** The SYN's sequence number. */
  readonly seq: number;
  /** Set by {@link SynGate.decide}. */
  decision: SynDecision | null;
}

/** Sends ICMP destination unreachable about a datagram (the IPv4 layer). */
export interface UnreachableSender {
  /** See `Ipv4Interface.sendUnreachable`. */
  sendUnreachable(datagram: Ipv4Datagram, code: number, now: number, out: Ipv4Sink): void;
}

/** The gate in front of the stack's TCP layer. */
export class SynGate implements TransportProtocol {
  readonly #tcp: TransportProtocol;
  readonly #icmp: UnreachableSender;
  readonly #onSyn: (syn: HeldSyn) => boolean;
  readonly #kick: () => void;
  readonly #held = new Map<string, HeldSyn>();
  readonly #decided: HeldSyn[] = [];
  /** Flows whose SYN went through: their retransmitted SYNs go to TCP as well. */
  readonly #admitted = new Set<string>();
  readonly #segment = new TcpSegment();
  readonly #scratch = new Uint8Array(64);
  /** SYN retransmissions dropped while their flow's destination was being connected to. */
  synWhileConnecting = 0;

  /**
   * Wraps `tcp`. `onSyn` is called for each new transit SYN and returns whether to hold it (false: it is
   * dropped, the caller counted why); `kick` asks the stack's loop to poll soon.
   */
  constructor(
    tcp: TransportProtocol,
    icmp: UnreachableSender,
    onSyn: (syn: HeldSyn) => boolean,
    kick: () => void,
  ) {
    this.#tcp = tcp;
    this.#icmp = icmp;
    this.#onSyn = onSyn;
    this.#kick = kick;
  }

  /** SYNs held now. */
  get held(): number {
    return this.#held.size;
  }

  /** See {@link TransportProtocol.ingress}. */
  ingress(d: Ipv4Datagram, now: number, out: Ipv4Sink): void {
    if (d.transit !== true) {
      this.#tcp.ingress(d, now, out);
      return;
    }
    const seg = this.#segment.wrap(d.bytes, d.payloadOffset, d.payloadEnd);
    // Only a valid bare SYN opens a flow; everything else (and a bad segment, counted there) is TCP's.
    if (
      seg.check(d.src, d.dst, d.checksumTrusted !== true) !== null ||
      (seg.flags & (TcpFlags.SYN | TcpFlags.ACK | TcpFlags.RST)) !== TcpFlags.SYN
    ) {
      this.#tcp.ingress(d, now, out);
      return;
    }
    const key = flowKey("tcp", d.src, seg.srcPort, d.dst, seg.dstPort);
    if (this.#admitted.has(key)) {
      this.#tcp.ingress(d, now, out);
      return;
    }
    if (this.#held.has(key)) {
      this.synWhileConnecting++;
      return;
    }
    const syn: HeldSyn = {
      key,
      src: d.src,
      srcPort: seg.srcPort,
      dst: d.dst,
      dstPort: seg.dstPort,
      seq: seg.seq,
      datagram: { ...d, bytes: d.bytes.slice(0, d.payloadEnd) },
      decision: null,
    };
    if (this.#onSyn(syn)) this.#held.set(key, syn);
  }

  /** Records what becomes of the SYN of `key`; applied at the next poll. */
  decide(key: string, decision: SynDecision): void {
    const syn = this.#held.get(key);
    if (syn === undefined || syn.decision !== null) return;
    syn.decision = decision;
    this.#decided.push(syn);
    this.#kick();
  }

  /** The flow of `key` ended: a new SYN of that 4-tuple is a new flow. */
  forget(key: string): void {
    this.#admitted.delete(key);
    const syn = this.#held.get(key);
    if (syn !== undefined && syn.decision === null) this.#held.delete(key);
  }

  /** Applies the decisions, then polls TCP. */
  poll(now: number, out: Ipv4Sink): number | null {
    for (let i = 0; i < this.#decided.length; i++) {
      const syn = this.#decided[i];
      if (this.#held.get(syn.key) !== syn) continue; // forgotten meanwhile
      this.#held.delete(syn.key);
      switch (syn.decision) {
        case "admit":
          this.#admitted.add(syn.key);
          this.#tcp.ingress(syn.datagram, now, out);
          break;
        case "refuse":
          // RFC 9293 §3.10.7.1, as from a closed port: <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>.
          sendReset(
            this.#scratch,
            out,
            syn.dst,
            syn.dstPort,
            syn.src,
            syn.srcPort,
            0,
            seqAdd(syn.seq, 1),
            true,
          );
          break;
        case "unreachable":
          this.#icmp.sendUnreachable(syn.datagram, UnreachableCode.HOST, now, out);
          break;
      }
    }
    this.#decided.length = 0;
    return this.#tcp.poll(now, out);
  }
}

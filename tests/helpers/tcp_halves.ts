/**
 * Builds the pieces of one TCP connection (receiver, emitter, sender) without a connection or layer,
 * with a sink that parses what they emit, for the pieces' own unit tests.
 *
 * @module
 */

import type { Ipv4Sink } from "../../lib/iface/protocol.ts";
import { resolveTcpConfig, type TcpConfig, type TcpLayerOptions } from "../../lib/tcp/config.ts";
import { SegmentEmitter } from "../../lib/tcp/emitter.ts";
import { TcpReceiver } from "../../lib/tcp/receiver.ts";
import { TcpSender } from "../../lib/tcp/sender.ts";
import { TcpStats } from "../../lib/tcp/stats.ts";
import { completeTxChecksum, TxOffload } from "../../lib/wire/offload.ts";
import { type ParsedSegment, parseSegment, RIG_LOCAL, RIG_REMOTE } from "./tcp_packet.ts";

/** One emitted packet: parsed, plus the offload arguments it was handed to the sink with. */
export interface Emitted {
  /** The segment (checksums verified, after completing a partial one). */
  segment: ParsedSegment;
  /** The raw packet as emitted (a copy). */
  raw: Uint8Array;
  /** A copy of the offload descriptor passed to the sink, or null. */
  offload: TxOffload | null;
}

/** An {@link Ipv4Sink} that records what it is handed. */
export class CaptureSink implements Ipv4Sink {
  /** Packets in order. */
  readonly packets: Emitted[] = [];
  /** See {@link Ipv4Sink.offloads}. */
  readonly offloads: boolean;

  /** A sink; with `offloads` it takes checksum-partial packets and super-segments. */
  constructor(offloads = false) {
    this.offloads = offloads;
  }

  /** See {@link Ipv4Sink.sendIpv4}. */
  sendIpv4(packet: Uint8Array, offload: TxOffload | null = null): void {
    const raw = packet.slice();
    const copy = packet.slice();
    let kept: TxOffload | null = null;
    if (offload !== null) {
      completeTxChecksum(copy, offload); // as an offloading device does
      kept = new TxOffload();
      kept.copyFrom(offload);
    }
    this.packets.push({ segment: parseSegment(copy), raw, offload: kept });
  }

  /** Returns and forgets what was captured. */
  take(): Emitted[] {
    return this.packets.splice(0);
  }
}

/** The three pieces of one connection from RIG_LOCAL:80 to RIG_REMOTE:4000. */
export interface Halves {
  /** Resolved configuration. */
  config: TcpConfig;
  /** Counters. */
  stats: TcpStats;
  /** Receive side. */
  receiver: TcpReceiver;
  /** Segment writer. */
  emitter: SegmentEmitter;
  /** Send side. */
  sender: TcpSender;
}

/** Builds the pieces with `options` (defaults of the layer otherwise). */
export function halves(options: TcpLayerOptions = {}): Halves {
  const config = resolveTcpConfig(options);
  const stats = new TcpStats();
  const receiver = new TcpReceiver(config, stats);
  const endpoints = { localAddress: RIG_LOCAL, localPort: 80, remoteAddress: RIG_REMOTE, remotePort: 4000 };
  const emitter = new SegmentEmitter(new Uint8Array(65536), stats, receiver, endpoints);
  const sender = new TcpSender(config, stats, emitter);
  return { config, stats, receiver, emitter, sender };
}

/**
 * The UDP half of the relay: each datagram the application sends to any host and port arrives at the
 * stack's transit handler; the first one of a 4-tuple creates an association, a host UDP socket
 * (node:dgram, in netstack's own namespace) that sends it on to the same destination. What comes back
 * on that socket is sent to the application from the address it came from, so to the application the
 * destination answered. Associations close after `idleMs` without traffic in either direction.
 *
 * Bounds: the flow table's size, `maxPendingSends` datagrams in flight per association towards the
 * destination (more are dropped and counted), and the stack's UDP send queue towards the application.
 *
 * @module
 */

import dgram from "node:dgram";
import type { UdpReceived } from "../udp/layer.ts";
import { formatIpv4, parseIpv4 } from "../wire/ipv4_address.ts";
import { type Flow, flowKey, type FlowTable, type ForwardCounters } from "./flows.ts";
import { logger } from "../log.ts";

const log = logger("forward");

/** What the UDP relay needs of the stack. */
export interface UdpRelayHost {
  /** Queues a datagram towards the application (false when the stack's queue is full). */
  enqueue(src: number, srcPort: number, dst: number, dstPort: number, data: Uint8Array): boolean;
  /** Asks the stack's loop to send what was queued. */
  kick(): void;
}

/** Options of {@link UdpRelay}. */
export interface UdpRelayOptions {
  /** Close an association after this long without traffic; default 60 s. */
  idleMs?: number;
  /** Datagrams in flight towards the destination per association; default 64. */
  maxPendingSends?: number;
}

interface UdpFlow extends Flow {
  socket: dgram.Socket;
  lastActive: number;
  pendingSends: number;
}

/** Relays the application's UDP datagrams through host sockets. */
export class UdpRelay {
  readonly #host: UdpRelayHost;
  readonly #table: FlowTable;
  readonly #counters: ForwardCounters;
  readonly #idleMs: number;
  readonly #maxPendingSends: number;
  readonly #flows = new Set<UdpFlow>();
  #sweeper: ReturnType<typeof setInterval> | null = null;
  #closed = false;

  /** Creates the relay; hand {@link UdpRelay.onDatagram} to the stack's UDP transit handler. */
  constructor(
    host: UdpRelayHost,
    table: FlowTable,
    counters: ForwardCounters,
    options: UdpRelayOptions = {},
  ) {
    this.#host = host;
    this.#table = table;
    this.#counters = counters;
    this.#idleMs = options.idleMs ?? 60_000;
    this.#maxPendingSends = options.maxPendingSends ?? 64;
  }

  /** Number of open associations. */
  get size(): number {
    return this.#flows.size;
  }

  /** The stack's transit handler: called inside the stack's receive path; `d.data` is copied. */
  readonly onDatagram = (d: UdpReceived): void => {
    if (this.#closed || d.family === 6) return; // the relay is IPv4 (transit is an IPv4-layer mode)
    const key = flowKey("udp", d.src, d.srcPort, d.dst, d.dstPort);
    let flow = this.#table.get(key) as UdpFlow | undefined;
    if (flow === undefined) {
      if (!this.#table.hasRoom) {
        this.#counters.flowLimitDrops++;
        log.debug("udp {key}: dropped, {max} flows already", { key, max: this.#table.maxFlows });
        return;
      }
      flow = this.#open(key, d);
    }
    if (flow.pendingSends >= this.#maxPendingSends) {
      this.#counters.udpSendQueueFull++;
      return;
    }
    flow.pendingSends++;
    flow.packetsOut++;
    flow.bytesOut += d.data.length;
    flow.lastActive = performance.now();
    const f = flow;
    // node:dgram copies nothing until the send runs: hand it a copy of the reused buffer.
    f.socket.send(d.data.slice(), f.targetPort, formatIpv4(f.target), (error) => {
      f.pendingSends--;
      if (error) {
        this.#counters.udpSendErrors++;
        log.debug("udp {key}: send failed: {error}", { key: f.key, error });
      }
    });
  };

  #open(key: string, d: UdpReceived): UdpFlow {
    const socket = dgram.createSocket("udp4");
    const now = performance.now();
    const flow: UdpFlow = {
      protocol: "udp",
      key,
      client: d.src,
      clientPort: d.srcPort,
      target: d.dst,
      targetPort: d.dstPort,
      startedAt: now,
      state: "open",
      bytesOut: 0,
      bytesIn: 0,
      packetsOut: 0,
      packetsIn: 0,
      socket,
      lastActive: now,
      pendingSends: 0,
    };
    socket.on("message", (message: Uint8Array, remote: dgram.RemoteInfo) => {
      const from = parseIpv4(remote.address);
      if (from === null) return;
      flow.lastActive = performance.now();
      flow.packetsIn++;
      flow.bytesIn += message.length;
      if (!this.#host.enqueue(from, remote.port, flow.client, flow.clientPort, message)) {
        this.#counters.udpReplyDrops++;
      }
      this.#host.kick();
    });
    socket.on("error", (error: Error) => {
      log.debug("udp {key}: socket error: {error}", { key, error });
    });
    this.#table.add(flow);
    this.#flows.add(flow);
    this.#counters.udpOpened++;
    log.debug("udp {key}: association opened", { key });
    this.#scheduleSweep();
    return flow;
  }

  #scheduleSweep(): void {
    if (this.#sweeper !== null) return;
    const interval = Math.max(50, Math.min(5000, this.#idleMs / 4));
    const sweeper = setInterval(() => this.#sweep(), interval);
    Deno.unrefTimer(sweeper as unknown as number);
    this.#sweeper = sweeper;
  }

  #sweep(): void {
    const now = performance.now();
    for (const flow of this.#flows) {
      if (now - flow.lastActive >= this.#idleMs) {
        this.#counters.udpIdleClosed++;
        log.debug("udp {key}: closed after {ms} ms idle", { key: flow.key, ms: this.#idleMs });
        this.#close(flow);
      }
    }
    if (this.#flows.size === 0 && this.#sweeper !== null) {
      clearInterval(this.#sweeper);
      this.#sweeper = null;
    }
  }

  #close(flow: UdpFlow): void {
    this.#flows.delete(flow);
    this.#table.delete(flow.key);
    try {
      flow.socket.close();
    } catch { /* already closed */ }
  }

  /** Closes every association. */
  close(): void {
    this.#closed = true;
    for (const flow of [...this.#flows]) this.#close(flow);
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    this.#sweeper = null;
  }
}

/**
 * The TCP half of the relay. For each SYN the application sends to any host and port (held by the
 * {@link SynGate}), it connects a host socket (`Deno.connect`, in netstack's own namespace) to the same
 * destination; once that is open the SYN goes on to the stack's TCP, whose transit listener
 * (`TcpLayer.listenTransit`) accepts the connection, and the two are joined both ways:
 *
 * - backpressure on both sides: a read is written out before the next read, so a slow destination
 *   closes the stack's receive window and a slow application stops the reads from the host socket;
 * - half-close: end of stream on one side becomes a FIN (`closeWrite`) on the other;
 * - resets: a reset from the destination resets the application's connection, and a reset from the
 *   application closes the host socket; a refused connect is an RST to the SYN, any other failure
 *   (unreachable, no answer within `connectTimeoutMs`) an ICMP host unreachable.
 *
 * Per-flow memory is bounded by the stack's TCP buffers, two buffers of `readBufferBytes` per direction
 * (a read overlaps the previous write), and the kernel's socket buffers.
 *
 * @module
 */

import type { TcpListener } from "../tcp/layer.ts";
import type { TcpConnection } from "../tcp/connection.ts";
import { StackSide } from "./stack_side.ts";
import { formatIpv4 } from "../wire/ipv4_address.ts";
import { type Flow, flowKey, type FlowTable, type ForwardCounters } from "./flows.ts";
import type { HeldSyn, SynGate } from "./syn_gate.ts";
import { logger } from "../log.ts";

const log = logger("forward");

/** Options of {@link TcpRelay}. */
export interface TcpRelayOptions {
  /** Give up on a destination that has not answered after this long; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Give up on an application that does not complete its handshake after this long; default 10 s. */
  handshakeTimeoutMs?: number;
  /** Bytes moved per read, in each direction (two such buffers per direction); default 128 KiB. */
  readBufferBytes?: number;
}

interface TcpFlow extends Flow {
  host: Deno.TcpConn | null;
  conn: StackSide | null;
  timer: ReturnType<typeof setTimeout> | null;
}

/** Relays the application's TCP connections through host sockets. */
export class TcpRelay {
  readonly #table: FlowTable;
  readonly #counters: ForwardCounters;
  readonly #connectTimeoutMs: number;
  readonly #handshakeTimeoutMs: number;
  readonly #readBufferBytes: number;
  readonly #flows = new Set<TcpFlow>();
  readonly #tasks = new Set<Promise<void>>();
  #gate: SynGate | null = null;
  #listener: TcpListener | null = null;
  #closed = false;

  /** Creates the relay; connect it with {@link TcpRelay.start}. */
  constructor(table: FlowTable, counters: ForwardCounters, options: TcpRelayOptions = {}) {
    this.#table = table;
    this.#counters = counters;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
    this.#readBufferBytes = options.readBufferBytes ?? 128 * 1024;
  }

  /** Number of relayed connections (connecting ones included). */
  get size(): number {
    return this.#flows.size;
  }

  /** Starts accepting from the stack's transit `listener` (`TcpLayer.listenTransit`); `gate` holds the SYNs. */
  start(gate: SynGate, listener: TcpListener): void {
    this.#gate = gate;
    this.#listener = listener;
    let scheduled = false;
    listener.onAcceptable = () => {
      // Called from inside the stack's receive path: take the connections once that has returned.
      if (scheduled) return;
      scheduled = true;
      queueMicrotask(() => {
        scheduled = false;
        for (let c = listener.accept(); c !== null; c = listener.accept()) this.#attach(c);
      });
    };
  }

  /** The gate's `onSyn`: starts connecting to the destination; false drops the SYN (counted). */
  readonly onSyn = (syn: HeldSyn): boolean => {
    if (this.#closed) return false;
    if (!this.#table.hasRoom) {
      this.#counters.flowLimitDrops++;
      log.debug("tcp {key}: SYN dropped, {max} flows already", { key: syn.key, max: this.#table.maxFlows });
      return false;
    }
    const flow: TcpFlow = {
      protocol: "tcp",
      key: syn.key,
      client: syn.src,
      clientPort: syn.srcPort,
      target: syn.dst,
      targetPort: syn.dstPort,
      startedAt: performance.now(),
      state: "connecting",
      bytesOut: 0,
      bytesIn: 0,
      packetsOut: 0,
      packetsIn: 0,
      host: null,
      conn: null,
      timer: null,
    };
    this.#table.add(flow);
    this.#flows.add(flow);
    this.#track(this.#connect(flow));
    return true;
  };

  async #connect(flow: TcpFlow): Promise<void> {
    const target = `${formatIpv4(flow.target)}:${flow.targetPort}`;
    let host: Deno.TcpConn;
    try {
      host = await Deno.connect({
        hostname: formatIpv4(flow.target),
        port: flow.targetPort,
        signal: AbortSignal.timeout(this.#connectTimeoutMs),
      });
    } catch (error) {
      const refused = error instanceof Deno.errors.ConnectionRefused;
      if (refused) this.#counters.tcpRefused++;
      else this.#counters.tcpFailed++;
      log.debug("tcp {key}: connecting to {target} failed: {error}", { key: flow.key, target, error });
      this.#gate?.decide(flow.key, refused ? "refuse" : "unreachable");
      this.#end(flow);
      return;
    }
    if (this.#closed || !this.#flows.has(flow)) {
      host.close();
      return;
    }
    host.setNoDelay(true); // the application's own segments were already coalesced by its stack
    this.#counters.tcpOpened++;
    flow.host = host;
    flow.state = "handshake";
    flow.timer = setTimeout(() => {
      if (flow.conn !== null) return;
      this.#counters.tcpHandshakeTimeouts++;
      log.debug("tcp {key}: the application did not complete its handshake", { key: flow.key });
      this.#end(flow);
    }, this.#handshakeTimeoutMs);
    this.#gate?.decide(flow.key, "admit");
  }

  #attach(connection: TcpConnection): void {
    const key = flowKey(
      "tcp",
      connection.remoteAddress,
      connection.remotePort,
      connection.localAddress,
      connection.localPort,
    );
    const flow = this.#table.get(key) as TcpFlow | undefined;
    if (flow === undefined || flow.host === null || flow.conn !== null) {
      connection.abort();
      return;
    }
    if (flow.timer !== null) clearTimeout(flow.timer);
    flow.timer = null;
    const side = new StackSide(connection);
    flow.conn = side;
    flow.state = "open";
    this.#track(this.#relay(flow, side, flow.host));
  }

  async #relay(flow: TcpFlow, conn: StackSide, host: Deno.TcpConn): Promise<void> {
    let reset = false;
    const fail = (side: string, error: unknown) => {
      // Either side's reset (or a write into a side that went away) tears both down: RST to the
      // application, close of the host socket.
      reset = true;
      log.debug("tcp {key}: {side} side ended: {error}", { key: flow.key, side, error });
      conn.abort();
      try {
        host.close();
      } catch { /* closed already */ }
    };
    // Each direction uses two buffers in turn: the next read overlaps the write of the previous one
    // (at most two chunks in hand), and a side that does not take data stops the reads from the other.
    const size = this.#readBufferBytes;
    const up = (async () => {
      const buffers = [new Uint8Array(size), new Uint8Array(size)];
      let writing: Promise<void> | null = null;
      try {
        for (let turn = 0;; turn ^= 1) {
          const n = await conn.read(buffers[turn]);
          if (writing !== null) await writing;
          writing = null;
          if (n === null) break;
          flow.packetsOut++;
          flow.bytesOut += n;
          writing = writeAll(host, buffers[turn].subarray(0, n));
          writing.catch(() => {}); // handled when awaited; not an unhandled rejection meanwhile
        }
        flow.state = flow.state === "open" ? "client-closed" : "closing";
        await host.closeWrite();
      } catch (error) {
        fail("application", error);
      }
    })();
    const down = (async () => {
      const buffers = [new Uint8Array(size), new Uint8Array(size)];
      let writing: Promise<void> | null = null;
      try {
        for (let turn = 0;; turn ^= 1) {
          const n = await host.read(buffers[turn]);
          if (writing !== null) await writing;
          writing = null;
          if (n === null) break;
          flow.packetsIn++;
          flow.bytesIn += n;
          writing = conn.write(buffers[turn].subarray(0, n)); // resolves once the stack copied it
          writing.catch(() => {});
        }
        flow.state = flow.state === "open" ? "server-closed" : "closing";
        conn.closeWrite(); // FIN to the application
      } catch (error) {
        fail("destination", error);
      }
    })();
    await Promise.all([up, down]);
    if (reset) this.#counters.tcpReset++;
    this.#end(flow);
  }

  #end(flow: TcpFlow): void {
    if (!this.#flows.delete(flow)) return;
    if (flow.timer !== null) clearTimeout(flow.timer);
    this.#table.delete(flow.key);
    this.#gate?.forget(flow.key);
    try {
      flow.host?.close();
    } catch { /* closed already */ }
    flow.conn?.close();
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  /** Stops accepting, resets the application's connections and closes the host sockets. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listener?.close();
    for (const flow of [...this.#flows]) {
      flow.conn?.abort();
      this.#end(flow);
    }
    await Promise.allSettled([...this.#tasks]);
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) offset += await conn.write(offset === 0 ? data : data.subarray(offset));
}

/**
 * The relay's flow table: one entry per relayed TCP connection or UDP association, keyed by the
 * application's 4-tuple, bounded in number, with the counters `/stats` shows (per flow and in total).
 *
 * @module
 */

import { formatIpv4, type Ipv4Address } from "../wire/ipv4_address.ts";

/** The transport of a flow. */
export type FlowProtocol = "tcp" | "udp";

/** One relayed flow's identity and counters. */
export interface Flow {
  /** TCP or UDP. */
  readonly protocol: FlowProtocol;
  /** The key in the table ({@link flowKey}). */
  readonly key: string;
  /** The application's address and port (in the confined namespace). */
  readonly client: Ipv4Address;
  /** The application's port. */
  readonly clientPort: number;
  /** The destination the application asked for, reached from netstack's namespace. */
  readonly target: Ipv4Address;
  /** The destination port. */
  readonly targetPort: number;
  /** When the flow began (ms, `performance.now`). */
  readonly startedAt: number;
  /** Where it stands, for `/stats`: e.g. `connecting`, `open`, `closing`. */
  state: string;
  /** Payload bytes from the application to the destination. */
  bytesOut: number;
  /** Payload bytes from the destination to the application. */
  bytesIn: number;
  /** Datagrams (UDP) or reads (TCP) relayed towards the destination. */
  packetsOut: number;
  /** Datagrams (UDP) or reads (TCP) relayed towards the application. */
  packetsIn: number;
}

/** The key of a flow: protocol and the application's 4-tuple. */
export function flowKey(
  protocol: FlowProtocol,
  client: Ipv4Address,
  clientPort: number,
  target: Ipv4Address,
  targetPort: number,
): string {
  return `${protocol} ${client}:${clientPort} ${target}:${targetPort}`;
}

/** Counters of the relay as a whole; each failure or limit that bites has its name. */
export class ForwardCounters {
  /** TCP flows whose destination accepted the connection. */
  tcpOpened = 0;
  /** UDP associations created. */
  udpOpened = 0;
  /** Connections the destination refused (RST to the application's SYN). */
  tcpRefused = 0;
  /** Connections that failed otherwise: unreachable, timed out (ICMP unreachable to the application). */
  tcpFailed = 0;
  /** Relayed connections that ended with a reset on either side. */
  tcpReset = 0;
  /** Handshakes with the application that did not complete after the destination accepted. */
  tcpHandshakeTimeouts = 0;
  /** UDP associations closed after being idle. */
  udpIdleClosed = 0;
  /** New flows refused because the table was full (SYNs and first datagrams dropped). */
  flowLimitDrops = 0;
  /** Datagrams dropped because the flow's queue towards the destination was full. */
  udpSendQueueFull = 0;
  /** Datagrams the host socket failed to send (unreachable, too big…). */
  udpSendErrors = 0;
  /** Datagrams from the destination the stack could not queue (its send queue was full). */
  udpReplyDrops = 0;
  /** ICMP echo requests relayed. */
  echoRequests = 0;
  /** Echo replies relayed back to the application. */
  echoReplies = 0;
  /** Echo requests dropped (no ICMP socket allowed, too many pending, send error). */
  echoDrops = 0;
}

/** The flows of one relay, bounded by `maxFlows`. */
export class FlowTable {
  /** Most flows at once (TCP and UDP together). */
  readonly maxFlows: number;
  readonly #flows = new Map<string, Flow>();

  /** Creates an empty table. */
  constructor(maxFlows: number) {
    this.maxFlows = maxFlows;
  }

  /** The flow of `key`, if any. */
  get(key: string): Flow | undefined {
    return this.#flows.get(key);
  }

  /** Whether a new flow fits. */
  get hasRoom(): boolean {
    return this.#flows.size < this.maxFlows;
  }

  /** Number of flows. */
  get size(): number {
    return this.#flows.size;
  }

  /** Adds `flow` (the caller checked {@link hasRoom}). */
  add(flow: Flow): void {
    this.#flows.set(flow.key, flow);
  }

  /** Removes the flow of `key`. */
  delete(key: string): void {
    this.#flows.delete(key);
  }

  /** Every flow. */
  values(): IterableIterator<Flow> {
    return this.#flows.values();
  }

  /** The flows as JSON-able objects for `/stats`. */
  describe(now: number): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const f of this.#flows.values()) {
      out.push({
        protocol: f.protocol,
        client: `${formatIpv4(f.client)}:${f.clientPort}`,
        target: `${formatIpv4(f.target)}:${f.targetPort}`,
        state: f.state,
        bytesOut: f.bytesOut,
        bytesIn: f.bytesIn,
        packetsOut: f.packetsOut,
        packetsIn: f.packetsIn,
        ageSeconds: Math.round((now - f.startedAt) / 100) / 10,
      });
    }
    return out;
  }
}

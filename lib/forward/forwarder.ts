/**
 * Forwarding mode: the stack terminates every TCP connection and UDP datagram the application sends
 * through its device, to any address and port, and relays each flow through a host socket opened in
 * netstack's own namespace, as slirp4netns and pasta do for rootless containers. The stack's own
 * address keeps reaching its own services.
 *
 * Wiring, all on the stack's public surface: the IPv4 layer takes transit traffic
 * (`Ipv4Interface.acceptTransit`); UDP hands transit datagrams to the {@link UdpRelay}; TCP is fronted
 * by a {@link SynGate} that holds each new SYN until the {@link TcpRelay} has connected to the
 * destination, and the stack's transit listener accepts the admitted connections; ICMP echo requests to
 * other hosts go to the {@link IcmpRelay}.
 *
 * @module
 */

import type { Ipv4Interface } from "../iface/ipv4_interface.ts";
import type { UdpLayer } from "../udp/layer.ts";
import type { TcpLayer } from "../tcp/layer.ts";
import { IpProtocol } from "../wire/ipv4.ts";
import { FlowTable, ForwardCounters } from "./flows.ts";
import { UdpRelay } from "./udp_relay.ts";
import { TcpRelay } from "./tcp_relay.ts";
import { SynGate } from "./syn_gate.ts";
import { IcmpRelay } from "./icmp_relay.ts";

/** Options of {@link Forwarder}. */
export interface ForwardOptions {
  /** Most relayed flows at once, TCP and UDP together; default 1024. Past it, new flows are dropped. */
  maxFlows?: number;
  /** Give up connecting to a destination after this long; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Close a UDP association after this long without traffic; default 60 000 ms. */
  udpIdleMs?: number;
}

/**
 * What the relay needs of a stack (the library's `Stack` has all of it): its layers, a way to make its
 * loop poll soon, and a place in its counters.
 */
export interface ForwardHost {
  /** The IPv4 layer. */
  readonly iface: Ipv4Interface;
  /** The UDP layer. */
  readonly udp: UdpLayer;
  /** The TCP layer. */
  readonly tcp: TcpLayer;
  /** Asks the stack's loop to poll now. */
  kick(): void;
  /** Adds counters to the stack's `stats()` under `name`. */
  addStats(name: string, source: () => unknown): void;
}

/** The relay of one stack; {@link Forwarder.close} before closing the stack. */
export class Forwarder {
  /** Counters of the relay as a whole. */
  readonly counters: ForwardCounters = new ForwardCounters();
  readonly #table: FlowTable;
  readonly #udp: UdpRelay;
  readonly #tcp: TcpRelay;
  readonly #gate: SynGate;
  readonly #icmp: IcmpRelay;

  /** Turns forwarding on for `stack`. */
  constructor(stack: ForwardHost, options: ForwardOptions = {}) {
    this.#table = new FlowTable(options.maxFlows ?? 1024);
    this.#udp = new UdpRelay(
      {
        enqueue: (src, srcPort, dst, dstPort, data) => stack.udp.enqueue(src, srcPort, dst, dstPort, data),
        kick: () => stack.kick(),
      },
      this.#table,
      this.counters,
      { idleMs: options.udpIdleMs },
    );
    this.#tcp = new TcpRelay(this.#table, this.counters, { connectTimeoutMs: options.connectTimeoutMs });
    this.#gate = new SynGate(stack.tcp, stack.iface, this.#tcp.onSyn, () => stack.kick());
    stack.iface.register(IpProtocol.TCP, this.#gate);
    // The gate holds at most one SYN per flow, so the table bounds the handshakes in progress.
    this.#tcp.start(this.#gate, stack.tcp.listenTransit(this.#table.maxFlows));
    stack.udp.bindTransit(this.#udp.onDatagram);
    this.#icmp = new IcmpRelay({
      queueEchoReply: (src, dst, id, seq, data) => stack.iface.queueEchoReply(src, dst, id, seq, data),
      kick: () => stack.kick(),
    }, this.counters);
    stack.iface.onTransitEcho = this.#icmp.onEcho;
    stack.iface.acceptTransit = true;
    stack.addStats("forward", () => this.stats());
  }

  /** Counters, totals and one entry per flow, for `/stats`. */
  stats(): Record<string, unknown> {
    return {
      maxFlows: this.#table.maxFlows,
      tcpFlows: this.#tcp.size,
      udpFlows: this.#udp.size,
      synsHeld: this.#gate.held,
      echoPending: this.#icmp.pending,
      echoSocket: this.#icmp.socketKind,
      ...this.counters,
      synWhileConnecting: this.#gate.synWhileConnecting,
      flows: this.#table.describe(performance.now()),
    };
  }

  /** Stops relaying: resets the application's relayed connections and closes every host socket. */
  async close(): Promise<void> {
    this.#udp.close();
    await this.#icmp.close();
    await this.#tcp.close();
  }
}

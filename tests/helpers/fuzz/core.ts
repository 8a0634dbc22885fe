/**
 * Fuzzing: the stack's own steppable core ({@link StackCore}, lib/stack/core.ts: the layers wired exactly
 * as `netstack stack` wires them, IPv4 and IPv6 on both media) driven synchronously with a virtual clock,
 * with small applications on top (TCP echo on 7, a responder on 80 that answers and closes, a reader that
 * never reads on 9, all over both families; UDP echo on 7 through the core's datagram responder as the
 * services run it; active opens to the peer over IPv4 and IPv6). Everything the core sends is checked (a
 * valid IPv4 or IPv6 packet with correct checksums, within the MTU) and handed to a listener (the fuzz
 * peer, which answers).
 *
 * @module
 */

import { StackCore } from "../../../lib/stack/core.ts";
import { TcpConnListener } from "../../../lib/stack/tcp_conn.ts";
import { type RunningServices, type ServiceHost, startServices } from "../../../lib/services/mod.ts";
import type { TcpConnection } from "../../../lib/tcp/connection.ts";
import { IpProtocol, Ipv4Packet } from "../../../lib/wire/ipv4.ts";
import { Ipv6Packet, NextHeader } from "../../../lib/wire/ipv6.ts";
import { Ipv6HeaderChain } from "../../../lib/wire/ipv6_ext.ts";
import { Icmpv6Message } from "../../../lib/wire/icmpv6.ts";
import { TcpSegment } from "../../../lib/wire/tcp.ts";
import { UdpDatagram } from "../../../lib/wire/udp.ts";
import { Icmpv4Message } from "../../../lib/wire/icmpv4.ts";
import { EthernetFrame, EtherType } from "../../../lib/wire/ethernet.ts";
import { RxFlags, type TxOffload } from "../../../lib/wire/offload.ts";
import type { Counters } from "./accounting.ts";

/**
 * Which core to build: a TUN-like IP medium, a TAP-like Ethernet one, Ethernet with DHCP, or the IP
 * medium with the stack's own services (echo, discard, chargen from lib/services, driven by draining
 * the microtask queue after each input: see {@link FuzzCore.settle}) instead of the small applications.
 */
export type Setup = "ip" | "ethernet" | "dhcp" | "services";

/** Every setup. */
export const SETUPS: readonly Setup[] = ["ip", "ethernet", "dhcp", "services"];

/** Whether the setup's medium is Ethernet (frames) rather than IP packets. */
export function isEthernet(setup: Setup): boolean {
  return setup === "ethernet" || setup === "dhcp";
}

/** The stack's address in every setup (the DHCP setup is offered it). */
export const STACK_ADDRESS = 0x0a000002;
/** The peer the stack opens a connection to, and the DHCP server. */
export const PEER_ADDRESS = 0x0a000001;
/** The stack's MAC on Ethernet. */
export const STACK_MAC = 0x020000000002;
/** The stack's static IPv6 address, fd00::2 (in fd00::/64). */
export const STACK_ADDRESS6 = v6(2);
/** The IPv6 peer, fd00::1. */
export const PEER_ADDRESS6 = v6(1);

/** fd00::`last`. */
export function v6(last: number): Uint8Array {
  const a = new Uint8Array(16);
  a[0] = 0xfd;
  a[14] = (last >> 8) & 0xff;
  a[15] = last & 0xff;
  return a;
}

/** Something the core sent, already checked. */
export type Emitted = (bytes: Uint8Array) => void;

/** The steppable core with its applications. */
export class FuzzCore {
  readonly setup: Setup;
  /** The stack's core, as the stack runs it. */
  readonly core: StackCore;
  /** The stack's services (the `services` setup only). */
  readonly services: RunningServices | null = null;
  /** Packets or frames handed to {@link ingress}. */
  deviceIn = 0;
  /** Packets or frames the core sent. */
  deviceOut = 0;
  readonly #apps = new Set<TcpConnection>();
  readonly #closing = new WeakSet<TcpConnection>();
  readonly #buffer = new Uint8Array(4096);
  #now: number;
  #opened = 0;

  /** Builds the core at time `now`; `onSend` sees every packet (IP) or frame (Ethernet) sent. */
  constructor(setup: Setup, now: number, random: () => number, onSend: Emitted) {
    this.setup = setup;
    this.#now = now;
    const secret = new Uint8Array(16).map(() => Math.floor(random() * 256));
    this.core = new StackCore(
      {
        medium: isEthernet(setup) ? "ethernet" : "ip",
        mtu: 1500,
        address: { address: STACK_ADDRESS, prefixLength: 24 },
        address6: { address: STACK_ADDRESS6, prefixLength: 64 },
        mac: STACK_MAC,
        gateway: PEER_ADDRESS,
        dhcp: setup === "dhcp" ? { checkAddress: random() < 0.5 } : false,
        ipv4: { reassembly: { maxDatagrams: 8, maxBytes: 256 * 1024, timeoutMs: 30_000 } },
        tcp: { secret, random: () => Math.floor(random() * 0x1_0000_0000) },
      },
      (bytes: Uint8Array, offload: TxOffload | null) => {
        this.deviceOut++;
        checkEmitted(bytes, isEthernet(setup), offload?.gsoSize ?? 0, 1500);
        onSend(bytes.slice());
      },
      now,
    );
    if (setup === "services") {
      const core = this.core;
      const host: ServiceHost = {
        listen: ({ port }) =>
          new TcpConnListener(core.tcp.listen(port, 8), "10.0.0.2", (a) => core.tcp.formatAddress(a)),
        answerDatagrams: (port, answer) => core.answerDatagrams(port, answer),
        stats: () => core.stats(),
      };
      this.services = startServices(host, ["echo", "discard", "chargen"], { maxConnections: 16 });
    } else {
      // UDP echo as the services serve it: answered from inside the receive path.
      this.core.answerDatagrams(7, (data) => data);
    }
    for (const port of setup === "services" ? [80] : [7, 9, 80]) {
      const listener = this.core.tcp.listen(port, 8);
      listener.onAcceptable = (l) => {
        for (let c = l.accept(); c !== null; c = l.accept()) this.#adopt(c);
      };
    }
  }

  /** The counters the accounting equations read. */
  stats(): Counters {
    const core = this.core;
    const tcp = core.tcp.stats();
    const udp = core.udp.stats();
    const ipv4 = core.ipv4;
    const ipv6 = core.ipv6!;
    return {
      deviceIn: this.deviceIn,
      ethernet: core.ethernet &&
        { rx: core.ethernet.ethernet.rxPackets, drops: core.ethernet.ethernet.drops.stats() },
      arp: core.ethernet && { rx: core.ethernet.arp.rxPackets, drops: core.ethernet.arp.drops.stats() },
      ipv4: {
        rx: ipv4.ipv4.rxPackets,
        drops: ipv4.ipv4.drops.stats(),
        fragmentsIn: ipv4.ipv4.fragmentsIn,
        reassembled: ipv4.ipv4.reassembled,
      },
      ipv6: {
        rx: ipv6.ipv6.rxPackets,
        drops: ipv6.ipv6.drops.stats(),
        fragmentsIn: ipv6.ipv6.fragmentsIn,
        reassembled: ipv6.ipv6.reassembled,
      },
      icmp: { rx: ipv4.icmp.rxPackets, drops: ipv4.icmp.drops.stats() },
      icmp6: {
        rx: ipv6.icmp6.rxPackets,
        drops: ipv6.icmp6.drops.stats(),
        echoReplies: ipv6.icmp6.echoReplies,
      },
      ndp: core.ipv6Link && { rx: core.ipv6Link.ndp.rxPackets, drops: core.ipv6Link.ndp.drops.stats() },
      udp: { rx: udp.rxPackets, drops: udp.drops },
      tcp: {
        segmentsIn: tcp.segmentsIn,
        toConnections: tcp.segmentsToConnections,
        passiveOpens: tcp.passiveOpens,
        syncookiesSent: tcp.syncookiesSent,
        drops: { ...tcp.drops },
      },
    };
  }

  /** Hands one packet (IP) or frame (Ethernet) to the core at `now`, then lets applications and timers run. */
  ingress(bytes: Uint8Array, now: number, trusted: boolean): void {
    this.#now = Math.max(this.#now, now);
    this.deviceIn++;
    this.core.ingress(bytes, this.#now, trusted ? RxFlags.CHECKSUM_TRUSTED : 0);
    this.step(this.#now);
  }

  /** Runs applications and polls the core at `now`. */
  step(now: number): void {
    this.#now = Math.max(this.#now, now);
    this.#runApps();
    this.core.poll(this.#now);
  }

  /**
   * Lets the services run: they are asynchronous (streams over the connections), so each input is
   * followed by a bounded number of microtask turns (no timers, no I/O: the order stays deterministic).
   */
  async settle(): Promise<void> {
    if (this.services === null) return;
    for (let turn = 0; turn < 24; turn++) await Promise.resolve();
    this.step(this.#now);
  }

  /** Opens a connection to the peer (port 5000) over IPv4 or IPv6, as an application would. */
  connect(ipv6: boolean): void {
    if (this.#opened >= 6) return;
    if (ipv6) {
      this.#opened++;
      this.#adopt(this.core.tcp.connect6(STACK_ADDRESS6, PEER_ADDRESS6, 5000, this.#now));
      return;
    }
    const local = this.core.ipv4.address.address;
    if (local === 0) return;
    this.#opened++;
    this.#adopt(this.core.tcp.connect(local, PEER_ADDRESS, 5000, this.#now));
  }

  /** Connections over IPv6 the applications held (accepted or opened), all told. */
  ipv6Connections = 0;

  #adopt(c: TcpConnection): void {
    if (this.core.tcp.formatAddress(c.remoteAddress).includes(":")) this.ipv6Connections++;
    if (this.#apps.size >= 64) {
      const oldest = this.#apps.values().next().value!;
      this.#apps.delete(oldest);
      oldest.abort();
    }
    this.#apps.add(c);
  }

  #close(c: TcpConnection): void {
    this.#closing.add(c);
    c.close();
  }

  #runApps(): void {
    for (const c of this.#apps) {
      if (c.state === "CLOSED") {
        this.#apps.delete(c);
        continue;
      }
      if (c.state === "SYN_SENT" || c.state === "SYN_RECEIVED" || this.#closing.has(c)) continue;
      const port = c.localPort;
      if (port === 9) continue; // a reader that never reads: the window closes
      const n = c.recv(this.#buffer);
      if (n === null) {
        this.#close(c); // end of stream: close our side too
        continue;
      }
      if (port === 7 && n > 0 && c.writableBytes > 0) {
        c.send(this.#buffer.subarray(0, Math.min(n, c.writableBytes)));
      } else if (port === 80 && n > 0) {
        c.send(this.#buffer.subarray(0, Math.min(c.writableBytes, 200 + (n * 37) % 3000)));
        this.#close(c);
      } else if (c.remotePort === 5000 && c.writableBytes > 0 && c.state === "ESTABLISHED") {
        c.send(this.#buffer.subarray(0, Math.min(c.writableBytes, 1 + (this.#now % 1400))));
      }
    }
  }
}

const ipView = new Ipv4Packet();
const ip6View = new Ipv6Packet();
const chain = new Ipv6HeaderChain();
const tcpView = new TcpSegment();
const udpView = new UdpDatagram();
const icmpView = new Icmpv4Message();
const icmp6View = new Icmpv6Message();
const frameView = new EthernetFrame();

/** A packet the core sent is wrong: the fuzz run reports it like an exception. */
export class EmittedViolation extends Error {
  /** Says what is wrong with it. */
  constructor(message: string) {
    super(message);
    this.name = "EmittedViolation";
  }
}

/** Checks that what the core sent is well formed: valid headers, correct checksums, within the MTU. */
function checkEmitted(bytes: Uint8Array, ethernet: boolean, gsoSize: number, mtu: number): void {
  let packet = bytes;
  if (ethernet) {
    if (frameView.wrap(bytes).check() !== null) throw new EmittedViolation("sent a malformed Ethernet frame");
    if (frameView.etherType === EtherType.IPV6) return checkEmitted6(bytes.subarray(14), gsoSize, mtu);
    if (frameView.etherType !== EtherType.IPV4) return; // ARP: its writer is checked by unit tests
    packet = bytes.subarray(14);
  } else if (packet.length > 0 && packet[0] >> 4 === 6) return checkEmitted6(packet, gsoSize, mtu);
  const ip = ipView.wrap(packet);
  const error = ip.check();
  if (error !== null) throw new EmittedViolation(`sent an IPv4 packet that fails its check: ${error}`);
  if (gsoSize === 0 && ip.totalLength > mtu) throw new EmittedViolation(`sent ${ip.totalLength} bytes > MTU`);
  if (ip.isFragment) return; // the transport checksum covers the whole datagram
  const payload = packet.subarray(ip.headerLength, ip.totalLength);
  let transportError: string | null = null;
  if (ip.protocol === IpProtocol.TCP) transportError = tcpView.wrap(payload).check(ip.src, ip.dst);
  else if (ip.protocol === IpProtocol.UDP) transportError = udpView.wrap(payload).check(ip.src, ip.dst);
  else if (ip.protocol === IpProtocol.ICMP) transportError = icmpView.wrap(payload).check();
  if (transportError !== null) {
    throw new EmittedViolation(`sent protocol ${ip.protocol} that fails its check: ${transportError}`);
  }
}

/** {@link checkEmitted} for an IPv6 packet: header, extension header chain, transport checksum. */
function checkEmitted6(packet: Uint8Array, gsoSize: number, mtu: number): void {
  const ip = ip6View.wrap(packet);
  const error = ip.check();
  if (error !== null) throw new EmittedViolation(`sent an IPv6 packet that fails its check: ${error}`);
  if (ip.end !== packet.length) throw new EmittedViolation("sent an IPv6 packet with bytes past its end");
  if (gsoSize === 0 && ip.end > mtu) throw new EmittedViolation(`sent ${ip.end} bytes of IPv6 > MTU`);
  if (!chain.walk(packet, ip.end)) {
    throw new EmittedViolation(`sent an IPv6 chain that fails: ${chain.error}`);
  }
  if (chain.fragmentHeader >= 0 && !chain.atomicFragment) return;
  const protocol = chain.upperProtocol;
  const payload = packet.subarray(chain.upperOffset, ip.end);
  let transportError: string | null = null;
  if (protocol === NextHeader.TCP) {
    transportError = tcpView.wrap(packet, chain.upperOffset, ip.end).checkIpv6(packet);
  } else if (protocol === NextHeader.UDP) transportError = udpView.wrap(payload).checkIpv6(packet);
  else if (protocol === NextHeader.ICMPV6) transportError = icmp6View.wrap(payload).check(packet);
  if (transportError !== null) {
    throw new EmittedViolation(`sent IPv6 protocol ${protocol} that fails its check: ${transportError}`);
  }
}

/**
 * Fuzzing: the whole protocol core composed as the stack composes it (IPv4 with ICMP, UDP, TCP; on
 * Ethernet also ARP and, in the `dhcp` setup, the DHCP client), driven synchronously with a virtual clock,
 * with small applications on top (TCP echo on 7, a responder on 80 that answers and closes, a reader that
 * never reads on 9, UDP echo on 7, an active open to the peer). Everything the core sends is checked (a
 * valid IPv4 packet with correct checksums) and handed to a listener (the fuzz peer, which answers).
 *
 * @module
 */

import { Ipv4Interface } from "../../../lib/iface/ipv4_interface.ts";
import { EthernetInterface } from "../../../lib/iface/ethernet_interface.ts";
import { UdpLayer } from "../../../lib/udp/layer.ts";
import { TcpLayer } from "../../../lib/tcp/layer.ts";
import type { TcpConnection } from "../../../lib/tcp/connection.ts";
import { attachDhcpClient } from "../../../lib/dhcp/mod.ts";
import { IpProtocol, Ipv4Packet } from "../../../lib/wire/ipv4.ts";
import { TcpSegment } from "../../../lib/wire/tcp.ts";
import { UdpDatagram } from "../../../lib/wire/udp.ts";
import { Icmpv4Message } from "../../../lib/wire/icmpv4.ts";
import { EthernetFrame, EtherType } from "../../../lib/wire/ethernet.ts";
import { RxFlags, type TxOffload } from "../../../lib/wire/offload.ts";
import type { Counters } from "./accounting.ts";

/** Which core to build. */
export type Setup = "ip" | "ethernet" | "dhcp";

/** The stack's address in every setup (the DHCP setup is offered it). */
export const STACK_ADDRESS = 0x0a000002;
/** The peer the stack opens a connection to, and the DHCP server. */
export const PEER_ADDRESS = 0x0a000001;
/** The stack's MAC on Ethernet. */
export const STACK_MAC = 0x020000000002;

/** Something the core sent, already checked. */
export type Emitted = (bytes: Uint8Array) => void;

/** A composed core with its applications. */
export class FuzzCore {
  readonly setup: Setup;
  readonly ipv4: Ipv4Interface;
  readonly ethernet: EthernetInterface | null;
  readonly udp: UdpLayer;
  readonly tcp: TcpLayer;
  /** Packets or frames handed to {@link ingress}. */
  deviceIn = 0;
  /** Packets or frames the core sent. */
  deviceOut = 0;
  readonly #apps = new Set<TcpConnection>();
  readonly #closing = new WeakSet<TcpConnection>();
  readonly #buffer = new Uint8Array(4096);
  readonly #ipOut;
  readonly #frameOut;
  #now: number;
  #opened = 0;

  /** Builds the core at time `now`; `onSend` sees every packet (IP) or frame (Ethernet) sent. */
  constructor(setup: Setup, now: number, random: () => number, onSend: Emitted) {
    this.setup = setup;
    this.#now = now;
    const check = (bytes: Uint8Array, gsoSize: number) => {
      this.deviceOut++;
      checkEmitted(bytes, setup !== "ip", gsoSize, this.ipv4.mtu);
      onSend(bytes.slice());
    };
    this.#ipOut = {
      offloads: false,
      sendIpv4: (p: Uint8Array, offload?: TxOffload | null) => check(p, offload?.gsoSize ?? 0),
    };
    this.#frameOut = {
      offloads: false,
      sendFrame: (f: Uint8Array, offload?: TxOffload | null) => check(f, offload?.gsoSize ?? 0),
    };
    this.ipv4 = new Ipv4Interface({
      address: setup === "dhcp"
        ? { address: 0, prefixLength: 0 }
        : { address: STACK_ADDRESS, prefixLength: 24 },
      mtu: 1500,
      reassembly: { maxDatagrams: 8, maxBytes: 256 * 1024, timeoutMs: 30_000 },
    });
    this.ethernet = setup === "ip" ? null : new EthernetInterface({
      mac: STACK_MAC,
      ipv4: this.ipv4,
      gateway: PEER_ADDRESS,
      arp: { capacity: 16 },
    });
    this.udp = new UdpLayer(this.ipv4);
    this.ipv4.register(IpProtocol.UDP, this.udp);
    const secret = new Uint8Array(16).map(() => Math.floor(random() * 256));
    this.tcp = new TcpLayer({ mtu: 1500, secret, random: () => Math.floor(random() * 0x1_0000_0000) });
    this.ipv4.register(IpProtocol.TCP, this.tcp);
    if (setup === "dhcp") attachDhcpClient(this.ethernet!, this.udp, now, { checkAddress: random() < 0.5 });
    else this.ethernet?.announce(now, this.#frameOut);
    this.udp.bind(7, (d, _now, out) => this.udp.sendNow(out, d.dst, d.dstPort, d.src, d.srcPort, d.data));
    for (const port of [7, 9, 80]) {
      const listener = this.tcp.listen(port, 8);
      listener.onAcceptable = (l) => {
        for (let c = l.accept(); c !== null; c = l.accept()) this.#adopt(c);
      };
    }
  }

  /** The counters the accounting equations read. */
  stats(): Counters {
    const tcp = this.tcp.stats();
    const udp = this.udp.stats();
    return {
      deviceIn: this.deviceIn,
      ethernet: this.ethernet &&
        { rx: this.ethernet.ethernet.rxPackets, drops: this.ethernet.ethernet.drops.stats() },
      arp: this.ethernet && { rx: this.ethernet.arp.rxPackets, drops: this.ethernet.arp.drops.stats() },
      ipv4: {
        rx: this.ipv4.ipv4.rxPackets,
        drops: this.ipv4.ipv4.drops.stats(),
        fragmentsIn: this.ipv4.ipv4.fragmentsIn,
        reassembled: this.ipv4.ipv4.reassembled,
      },
      // No IPv6 layer here yet: version-6 packets are the IPv4 layer's "bad-version" drops.
      ipv6Drops: {},
      icmp: { rx: this.ipv4.icmp.rxPackets, drops: this.ipv4.icmp.drops.stats() },
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
    const flags = trusted ? RxFlags.CHECKSUM_TRUSTED : 0;
    if (this.ethernet !== null) this.ethernet.ingress(bytes, this.#now, this.#frameOut, flags);
    else this.ipv4.ingress(bytes, this.#now, this.#ipOut, flags);
    this.step(this.#now);
  }

  /** Runs applications and polls the core at `now`. */
  step(now: number): void {
    this.#now = Math.max(this.#now, now);
    this.#runApps();
    if (this.ethernet !== null) this.ethernet.poll(this.#now, this.#frameOut);
    else this.ipv4.poll(this.#now, this.#ipOut);
  }

  /** Opens a connection to the peer (port 5000), as an application would. */
  connect(): void {
    if (this.ipv4.address.address === 0 || this.#opened >= 4) return;
    this.#opened++;
    this.#adopt(this.tcp.connect(this.ipv4.address.address, PEER_ADDRESS, 5000, this.#now));
  }

  #adopt(c: TcpConnection): void {
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
const tcpView = new TcpSegment();
const udpView = new UdpDatagram();
const icmpView = new Icmpv4Message();
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
    if (frameView.etherType !== EtherType.IPV4) return; // ARP: its writer is checked by unit tests
    packet = bytes.subarray(14);
  }
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

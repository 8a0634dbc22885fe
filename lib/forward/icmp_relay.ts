/**
 * ICMP echo for forwarding mode: a ping the application sends to any host is sent on from netstack's
 * own namespace, and the answer comes back to the application from that host, as slirp4netns does.
 *
 * One socket serves every ping: an unprivileged ICMP datagram socket ("ping socket") when the namespace
 * allows it (`net.ipv4.ping_group_range`), else a raw ICMP socket (CAP_NET_RAW). Each request is sent
 * with our identifier and a sequence number of our own, mapped back to the application's identifier and
 * sequence when the reply arrives; at most `maxPending` requests wait for a reply, for at most 10 s.
 * The socket is read only while requests are pending, with one awaited `poll` per batch.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { errno, Libc, libc } from "../ffi/libc.ts";
import { FdWaiter } from "../phy/fd_waiter.ts";
import type { Ipv4Datagram } from "../iface/protocol.ts";
import { Icmpv4Type, writeIcmpv4Echo } from "../wire/icmpv4.ts";
import { readIpv4, writeIpv4 } from "../wire/ipv4_address.ts";
import type { ForwardCounters } from "./flows.ts";
import { logger } from "../log.ts";

const log = logger("forward");
const IPPROTO_ICMP = 1;
const PENDING_TIMEOUT_MS = 10_000;

/** What the ICMP relay needs of the stack. */
export interface IcmpRelayHost {
  /** Queues an echo reply towards the application (see `Ipv4Interface.queueEchoReply`). */
  queueEchoReply(src: number, dst: number, identifier: number, sequence: number, data: Uint8Array): boolean;
  /** Asks the stack's loop to send what was queued. */
  kick(): void;
}

interface Pending {
  client: number;
  target: number;
  identifier: number;
  sequence: number;
  sentAt: number;
}

/** Relays ICMP echo requests to other hosts through one host ICMP socket. */
export class IcmpRelay {
  readonly #host: IcmpRelayHost;
  readonly #counters: ForwardCounters;
  readonly #maxPending: number;
  readonly #pending = new Map<number, Pending>();
  readonly #buffer = new Uint8Array(65536);
  readonly #address = new Uint8Array(16);
  readonly #addressLength = new Uint8Array(4);
  #fd = -1;
  #raw = false;
  #waiter: FdWaiter | null = null;
  #identifier = 0;
  #sequence = 0;
  #reading = false;
  #closed = false;
  #unavailable = false;

  /** Creates the relay; the socket is opened at the first echo request. */
  constructor(host: IcmpRelayHost, counters: ForwardCounters, options: { maxPending?: number } = {}) {
    this.#host = host;
    this.#counters = counters;
    this.#maxPending = options.maxPending ?? 1024;
  }

  /** Which socket is in use: `ping`, `raw`, or `none` (not opened yet, or neither allowed). */
  get socketKind(): string {
    return this.#fd < 0 ? "none" : this.#raw ? "raw" : "ping";
  }

  /** Echo requests waiting for a reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /** The IPv4 layer's `onTransitEcho`: relays one echo request (its bytes are copied). */
  readonly onEcho = (d: Ipv4Datagram): void => {
    if (this.#closed || !this.#open()) {
      this.#counters.echoDrops++;
      return;
    }
    const now = performance.now();
    if (this.#pending.size >= this.#maxPending) this.#expire(now);
    if (this.#pending.size >= this.#maxPending) {
      this.#counters.echoDrops++;
      return;
    }
    const icmp = d.bytes.subarray(d.payloadOffset, d.payloadEnd);
    const sequence = this.#sequence = (this.#sequence + 1) & 0xffff;
    this.#pending.set(sequence, {
      client: d.src,
      target: d.dst,
      identifier: (icmp[4] << 8) | icmp[5],
      sequence: (icmp[6] << 8) | icmp[7],
      sentAt: now,
    });
    const length = writeIcmpv4Echo(
      this.#buffer,
      0,
      Icmpv4Type.ECHO_REQUEST,
      this.#identifier,
      sequence,
      icmp.subarray(8),
    );
    const address = this.#address;
    address.fill(0);
    new DataView(address.buffer).setUint16(0, Libc.AF_INET, true);
    writeIpv4(address, 4, d.dst);
    if (Number(libc().sendto(this.#fd, this.#buffer, BigInt(length), 0, address, 16)) < 0) {
      this.#pending.delete(sequence);
      this.#counters.echoDrops++;
      return;
    }
    this.#counters.echoRequests++;
    if (!this.#reading) this.#read();
  };

  /** Opens the socket on first use; false when neither kind is allowed (logged once). */
  #open(): boolean {
    if (this.#fd >= 0) return true;
    if (this.#unavailable) return false;
    const c = libc();
    const flags = Libc.SOCK_CLOEXEC | Libc.O_NONBLOCK;
    let fd = c.socket(Libc.AF_INET, Libc.SOCK_DGRAM | flags, IPPROTO_ICMP);
    let raw = false;
    if (fd < 0) {
      fd = c.socket(Libc.AF_INET, Libc.SOCK_RAW | flags, IPPROTO_ICMP);
      raw = true;
    }
    if (fd < 0) {
      this.#unavailable = true;
      log.warning("ping through --forward is off: no ICMP socket is allowed here ({code})", {
        code: errno() === Errno.EACCES ? "EACCES" : String(errno()),
      });
      return false;
    }
    this.#fd = fd;
    this.#raw = raw;
    // A ping socket's kernel puts its own identifier in; on a raw socket, ours tells our replies apart.
    this.#identifier = crypto.getRandomValues(new Uint16Array(1))[0];
    this.#waiter = new FdWaiter(fd);
    return true;
  }

  async #read(): Promise<void> {
    this.#reading = true;
    try {
      while (!this.#closed && this.#pending.size > 0) {
        await this.#waiter!.wait(1000);
        if (this.#closed) break;
        this.#drain();
        this.#expire(performance.now());
      }
    } finally {
      this.#reading = false;
    }
  }

  #drain(): void {
    const c = libc();
    const buffer = this.#buffer;
    const lengthView = new DataView(this.#addressLength.buffer);
    // Bounded: at most 256 datagrams per wake-up.
    for (let i = 0; i < 256; i++) {
      lengthView.setUint32(0, 16, true);
      const n = Number(
        c.recvfrom(this.#fd, buffer, BigInt(buffer.length), 0, this.#address, this.#addressLength),
      );
      if (n <= 0) break;
      const at = this.#raw ? (buffer[0] & 0x0f) * 4 : 0;
      if (n < at + 8 || buffer[at] !== Icmpv4Type.ECHO_REPLY) continue;
      if (this.#raw && ((buffer[at + 4] << 8) | buffer[at + 5]) !== this.#identifier) continue;
      const sequence = (buffer[at + 6] << 8) | buffer[at + 7];
      const p = this.#pending.get(sequence);
      const from = readIpv4(this.#address, 4);
      if (p === undefined || from !== p.target) continue;
      this.#pending.delete(sequence);
      if (this.#host.queueEchoReply(from, p.client, p.identifier, p.sequence, buffer.subarray(at + 8, n))) {
        this.#counters.echoReplies++;
      }
      this.#host.kick();
    }
  }

  #expire(now: number): void {
    for (const [sequence, p] of this.#pending) {
      if (now - p.sentAt >= PENDING_TIMEOUT_MS) this.#pending.delete(sequence);
    }
  }

  /** Closes the socket (after the pending wait returns). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#waiter?.wake();
    // The reader's awaited poll must return before the descriptors close.
    for (let i = 0; i < 100 && this.#reading; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    this.#waiter?.close();
    if (this.#fd >= 0) libc().close(this.#fd);
    this.#fd = -1;
  }
}

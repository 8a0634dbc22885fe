/**
 * A device over an existing interface through libpcap (the "MIP over pcap" arrangement): the stack shares
 * the wire with the interface, with its own MAC, reading frames from a capture and injecting its own.
 *
 * Waiting is one awaited `poll` on libpcap's selectable fd (via {@link FdWaiter}); reading is a synchronous
 * `pcap_next_ex` drain. The capture is not promiscuous unless asked: that suffices on a veth pair (the
 * peer's frames for our MAC reach the packet socket), but on a physical NIC a MAC other than the
 * interface's own is filtered by the hardware, so there `promiscuous: true` is needed.
 *
 * libpcap taps frames before a local sender's transmit offload finishes their TCP/UDP checksums (a veth
 * peer, a container on a bridge). Such frames are recognised here (the field holds the pseudo-header sum),
 * dropped and counted as `partial-checksum`, and named once in a warning with both remedies: the `packet`
 * backend, which receives the checksum state with each frame, or turning the offload off on the sender.
 *
 * @module
 */

import { lastError, Libc, libc } from "../ffi/libc.ts";
import { PcapHandle, type PcapStats } from "../ffi/libpcap.ts";
import type { Device, Medium, PacketHandler } from "./device.ts";
import { FdWaiter } from "./fd_waiter.ts";
import { attachableLink } from "./link.ts";
import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LENGTH,
  EtherType,
  type MacAddress,
  readMac,
} from "../wire/ethernet.ts";
import { hasUnfinishedChecksum } from "../wire/partial_checksum.ts";
import { logger } from "../log.ts";

const SIOCGIFMTU = 0x8921n;

/** Options of {@link PcapDevice.open}. */
export interface PcapDeviceOptions {
  /** The existing interface to open, e.g. `my0`. */
  iface: string;
  /** Receive frames for any MAC (needed on physical NICs, see the module comment); default false. */
  promiscuous?: boolean;
  /** Bytes captured per frame; default the MTU plus Ethernet header and VLAN tag, at least 1518. */
  snaplen?: number;
  /** Kernel ring size in bytes; default 4 MiB. */
  bufferSize?: number;
  /**
   * The stack's MAC: frames to it (or broadcast) are checked for unfinished checksums (see the module
   * comment). Omit to check none.
   */
  mac?: MacAddress;
}

const log = logger("pcap");

/** The MTU of an interface in the calling thread's namespace (`SIOCGIFMTU`). */
export function interfaceMtu(name: string): number {
  const c = libc();
  const sock = c.socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
  if (sock < 0) throw lastError("socket(AF_INET)");
  try {
    const req = new Uint8Array(40);
    const encoded = new TextEncoder().encode(name);
    if (encoded.length >= 16) throw new RangeError(`interface name '${name}' is longer than 15 bytes`);
    req.set(encoded);
    if (c.ioctl(sock, SIOCGIFMTU, req) < 0) throw lastError(`ioctl(SIOCGIFMTU) on ${name}`);
    return new DataView(req.buffer).getInt32(16, true);
  } finally {
    c.close(sock);
  }
}

/** An existing Ethernet interface opened through libpcap. */
export class PcapDevice implements Device {
  readonly name: string;
  readonly medium: Medium = "ethernet";
  /** The interface's IP MTU. */
  readonly mtu: number;
  /** Frames libpcap refused to inject, counted rather than thrown. */
  sendErrors = 0;
  /** Capture errors (pcap_next_ex returned an error), counted. */
  receiveErrors = 0;
  /** Frames dropped here, by reason (`partial-checksum`). */
  readonly drops: Record<string, number> = {};
  readonly #pcap: PcapHandle;
  readonly #waiter: FdWaiter;
  readonly #mac: MacAddress | null;
  #closed = false;
  #warned = false;
  #handler: PacketHandler = () => {};
  /** Checks each frame before it reaches the stack; bound once (no closure per batch). */
  readonly #filter: PacketHandler;

  private constructor(name: string, mtu: number, pcap: PcapHandle, waiter: FdWaiter, mac: MacAddress | null) {
    this.name = name;
    this.mtu = mtu;
    this.#pcap = pcap;
    this.#waiter = waiter;
    this.#mac = mac;
    this.#filter = (frame, flags) => {
      if (this.#unfinished(frame)) return;
      this.#handler(frame, flags);
    };
  }

  /**
   * Opens `options.iface`. Throws `PcapError` (no such interface, no permission, down, not Ethernet) or
   * `SystemError` with a message that names the cause.
   */
  static open(options: PcapDeviceOptions): PcapDevice {
    attachableLink(options.iface); // missing, down, loopback or not Ethernet: one clear line
    const pcap = PcapHandle.openLive({
      iface: options.iface,
      promiscuous: options.promiscuous ?? false,
      snaplen: options.snaplen ?? Math.max(1518, interfaceMtuOr(options.iface, 1500) + 18),
      bufferSize: options.bufferSize,
    });
    let waiter: FdWaiter | null = null;
    try {
      const mtu = interfaceMtu(options.iface);
      waiter = new FdWaiter(pcap.selectableFd);
      return new PcapDevice(options.iface, mtu, pcap, waiter, options.mac ?? null);
    } catch (error) {
      waiter?.close();
      pcap.close();
      throw error;
    }
  }

  /** Activation warning from libpcap (e.g. promiscuous mode not supported), if any. */
  get warning(): string | null {
    return this.#pcap.warning;
  }

  receive(onPacket: PacketHandler, max: number): number {
    let handler = onPacket;
    if (this.#mac !== null) {
      this.#handler = onPacket;
      handler = this.#filter;
    }
    const n = this.#pcap.drain(handler, max);
    if (n < 0) {
      this.receiveErrors++;
      return 0;
    }
    return n;
  }

  send(packet: Uint8Array): boolean {
    if (this.#pcap.inject(packet)) return true;
    this.sendErrors++;
    return false;
  }

  wait(timeoutMs: number): Promise<void> {
    return this.#waiter.wait(timeoutMs);
  }

  waitSync(timeoutMs: number): boolean {
    return this.#waiter.waitSync(timeoutMs);
  }

  wake(): void {
    this.#waiter.wake();
  }

  /** Kernel capture counters (ring drops), or `null`. */
  captureStats(): PcapStats | null {
    return this.#pcap.stats();
  }

  /** Send and receive errors, and libpcap's kernel counters (received, dropped). */
  stats(): Record<string, unknown> {
    return {
      sendErrors: this.sendErrors,
      receiveErrors: this.receiveErrors,
      drops: { ...this.drops },
      pcap: this.captureStats(),
    };
  }

  /**
   * Whether `frame` is for us and carries an unfinished partial checksum: then it is counted (and named
   * once in a warning) here, as the stack would only see a bad checksum.
   */
  #unfinished(frame: Uint8Array): boolean {
    if (frame.length < ETHERNET_HEADER_LENGTH + 20) return false;
    if (((frame[12] << 8) | frame[13]) !== EtherType.IPV4) return false;
    const dst = readMac(frame, 0);
    if (dst !== this.#mac && dst !== BROADCAST_MAC) return false;
    if (!hasUnfinishedChecksum(frame.subarray(ETHERNET_HEADER_LENGTH))) return false;
    this.drops["partial-checksum"] = (this.drops["partial-checksum"] ?? 0) + 1;
    if (!this.#warned) {
      this.#warned = true;
      log.warning(
        "frames on {iface} arrive with unfinished TCP/UDP checksums: the sender left them to transmit " +
          "offload (as a veth peer or a container does) and libpcap hands them over before they are " +
          "finished; they are dropped and counted as partial-checksum. Attach with --backend packet, or " +
          "turn the sender's offload off: ethtool -K <peer> tx off",
        { iface: this.name },
      );
    }
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter.close();
    this.#pcap.close();
  }
}

function interfaceMtuOr(name: string, fallback: number): number {
  try {
    return interfaceMtu(name);
  } catch {
    return fallback;
  }
}

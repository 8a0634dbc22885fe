/**
 * A TUN device through Deno FFI: `TUNSETIFF` on `/dev/net/tun`, host side configured by `ioctl` on an
 * AF_INET socket (no `ip` command), non-blocking reads drained in batches after one awaited `poll`.
 *
 * Measured costs that shaped this (Deno 2.9 on x86-64): an awaited non-blocking FFI call costs
 * ~50–70 µs, a synchronous read ~2 µs; so one awaited poll per batch and synchronous reads until EAGAIN.
 *
 * @module
 */

import { cString, errno, interfaceIndex, lastError, Libc, libc, strerror } from "../ffi/libc.ts";
import { Errno, SystemError } from "../ffi/errno.ts";
import { type Ipv4Address, type Ipv4Cidr, prefixToMask, writeIpv4 } from "../wire/ipv4_address.ts";
import type { Ipv6Cidr } from "../wire/ipv6_address.ts";
import { ETHERNET_HEADER_LENGTH } from "../wire/ethernet.ts";
import type { Device, Medium, PacketHandler } from "./device.ts";
import type { TxOffload } from "../wire/offload.ts";
import { FdWaiter } from "./fd_waiter.ts";
import { VIRTIO_NET_HDR_LENGTH, writeVirtioNetHeaderFor } from "../wire/virtio_net.ts";
import { virtioRxFlags } from "./vnet_offload.ts";
import { readLinkCounters } from "./link_counters.ts";
import { inNetns } from "./netns.ts";
import { RtnetlinkSocket } from "./rtnetlink.ts";

// linux/if_tun.h and linux/sockios.h (x86-64).
const TUNSETIFF = 0x400454can;
const IFF_TUN = 0x0001;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const TUNSETOFFLOAD = 0x400454d0n;
const TUNSETVNETHDRSZ = 0x400454d8n;
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const SIOCGIFFLAGS = 0x8913n;
const SIOCSIFFLAGS = 0x8914n;
const SIOCSIFADDR = 0x8916n;
const SIOCSIFNETMASK = 0x891cn;
const SIOCSIFMTU = 0x8922n;
const SIOCSIFTXQLEN = 0x8943n;
const SIOCGIFINDEX = 0x8933n;
const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
const IFREQ_SIZE = 40;
const IFNAMSIZ = 16;

/** Options of {@link TunDevice.open}. */
export interface TunOptions {
  /** Interface name; `%d` is replaced by the kernel with a free number. Default `tun0`. */
  name?: string;
  /** `tun` for IP packets, `tap` for Ethernet frames. Default `tun`. */
  kind?: "tun" | "tap";
  /** MTU set on the device. Default 1500. */
  mtu?: number;
  /** When given, the host side gets this address and the device is brought up. */
  hostAddress?: Ipv4Cidr | null;
  /** When given, the host side also gets this IPv6 address (after it is up). */
  hostAddress6?: Ipv6Cidr | null;
  /** Transmit queue length of the host side; default {@link DEFAULT_TX_QUEUE_LENGTH}. */
  txQueueLength?: number;
  /**
   * Checksum and segmentation offload through virtio_net_hdr (IFF_VNET_HDR, TUN_F_CSUM|TUN_F_TSO4|TSO6):
   * the kernel hands over TCP segments of up to 64 KiB with partial checksums and splits the large
   * segments we write (TAP: the same, for IPv4 inside Ethernet frames). Default false.
   */
  offload?: boolean;
  /**
   * Create the device inside this network namespace (an `ip netns` name) and configure its host side
   * there; the stack keeps running, and its own sockets stay, in the caller's namespace.
   */
  netns?: string;
  /** Add a default route on the host side via this address (the stack's), as a gateway. */
  defaultRoute?: Ipv4Address;
}

/**
 * The host side's transmit queue: packets the kernel holds for the stack to read. A burst longer than
 * the queue, arriving faster than the stack reads, is dropped by the kernel (counted in `/stats` as
 * `device.kernel.txDropped`). The TUN default of 500 (1000 for most devices) overflows in ~2 ms at line
 * rate; 8192 absorbs a burst of ~25 ms at 300k packets/s while the loop catches up, at a cost of at most
 * 8192 queued buffers in the kernel.
 */
export const DEFAULT_TX_QUEUE_LENGTH = 8192;

function ifreq(name: string): Uint8Array<ArrayBuffer> {
  const req = new Uint8Array(IFREQ_SIZE);
  const encoded = new TextEncoder().encode(name);
  if (encoded.length >= IFNAMSIZ) throw new RangeError(`interface name '${name}' is longer than 15 bytes`);
  req.set(encoded);
  return req;
}

function ifreqName(req: Uint8Array): string {
  const end = req.indexOf(0);
  return new TextDecoder().decode(req.subarray(0, end < 0 ? IFNAMSIZ : end));
}

function check(result: number, operation: string): void {
  if (result < 0) throw lastError(operation);
}

/** An AF_INET (or AF_INET6) datagram socket, the handle for interface ioctls (of the namespace it is opened in). */
function inetSocket(family: number = Libc.AF_INET): number {
  const fd = libc().socket(family, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
  check(fd, family === Libc.AF_INET6 ? "socket(AF_INET6)" : "socket(AF_INET)");
  return fd;
}

/** Applies `fn` to `socket`, or to a fresh datagram socket of `family` in the current namespace. */
function withInetSocket<T>(fn: (fd: number) => T, family: number = Libc.AF_INET, socket?: number): T {
  if (socket !== undefined) return fn(socket);
  const c = libc();
  const fd = inetSocket(family);
  try {
    return fn(fd);
  } finally {
    c.close(fd);
  }
}

/** Sockets opened inside another namespace, to configure an interface there (see `TunOptions.netns`). */
interface HostSockets {
  /** AF_INET datagram socket. */
  inet: number;
  /** AF_INET6 datagram socket, when an IPv6 address is to be added. */
  inet6?: number;
}

/** The index of interface `name` in the namespace of `socket`. */
function interfaceIndexOn(socket: number, name: string): number {
  const req = ifreq(name);
  check(libc().ioctl(socket, SIOCGIFINDEX, req), `ioctl(SIOCGIFINDEX) on ${name}`);
  return new DataView(req.buffer).getInt32(16, true);
}

/**
 * Configures the host side of an interface: address, netmask, MTU, queue length, and brings it up.
 * Needs CAP_NET_ADMIN in the interface's namespace.
 */
export function configureHostInterface(
  name: string,
  options: { address?: Ipv4Cidr | null; address6?: Ipv6Cidr | null; mtu?: number; txQueueLength?: number },
  sockets?: HostSockets,
): void {
  const c = libc();
  withInetSocket(
    (sock) => {
      const setSockaddr = (request: bigint, address: number, what: string) => {
        const req = ifreq(name);
        const view = new DataView(req.buffer);
        view.setUint16(16, Libc.AF_INET, true);
        writeIpv4(req, 20, address);
        check(c.ioctl(sock, request, req), `ioctl(${what}) on ${name}`);
      };
      if (options.address) {
        setSockaddr(SIOCSIFADDR, options.address.address, "SIOCSIFADDR");
        setSockaddr(SIOCSIFNETMASK, prefixToMask(options.address.prefixLength), "SIOCSIFNETMASK");
      }
      if (options.mtu !== undefined) {
        const req = ifreq(name);
        new DataView(req.buffer).setInt32(16, options.mtu, true);
        check(c.ioctl(sock, SIOCSIFMTU, req), `ioctl(SIOCSIFMTU) on ${name}`);
      }
      if (options.txQueueLength !== undefined) {
        const req = ifreq(name);
        new DataView(req.buffer).setInt32(16, options.txQueueLength, true);
        check(c.ioctl(sock, SIOCSIFTXQLEN, req), `ioctl(SIOCSIFTXQLEN) on ${name}`);
      }
      const req = ifreq(name);
      check(c.ioctl(sock, SIOCGIFFLAGS, req), `ioctl(SIOCGIFFLAGS) on ${name}`);
      const view = new DataView(req.buffer);
      view.setUint16(16, view.getUint16(16, true) | IFF_UP | IFF_RUNNING, true);
      check(c.ioctl(sock, SIOCSIFFLAGS, req), `ioctl(SIOCSIFFLAGS) on ${name}`);
    },
    Libc.AF_INET,
    sockets?.inet,
  );
  if (options.address6) addHostAddress6(name, options.address6, sockets);
}

/**
 * Adds an IPv6 address to an interface: SIOCSIFADDR on an AF_INET6 socket with a `struct in6_ifreq`
 * (address, prefix length, interface index; linux/ipv6.h). TUN devices are IFF_NOARP, so the kernel skips
 * DAD and the address is usable at once. `sockets`: those of the interface's namespace, when not ours.
 */
export function addHostAddress6(name: string, cidr: Ipv6Cidr, sockets?: HostSockets): void {
  const c = libc();
  const index = sockets !== undefined ? interfaceIndexOn(sockets.inet, name) : interfaceIndex(name);
  if (index === 0) throw new SystemError(`finding interface ${name}`, Errno.ENODEV, strerror(Errno.ENODEV));
  withInetSocket(
    (sock) => {
      const req = new Uint8Array(24);
      req.set(cidr.address, 0);
      const view = new DataView(req.buffer);
      view.setUint32(16, cidr.prefixLength, true);
      view.setInt32(20, index, true);
      if (c.ioctl(sock, SIOCSIFADDR, req) < 0) {
        const code = errno();
        const hint = code === Errno.EACCES || code === Errno.EPERM
          ? "it needs root or CAP_NET_ADMIN (run with sudo)"
          : "is IPv6 disabled on the host (sysctl net.ipv6.conf.all.disable_ipv6)? --no-ipv6 runs without it";
        throw new SystemError(`ioctl(SIOCSIFADDR, AF_INET6) on ${name}`, code, strerror(code), hint);
      }
    },
    Libc.AF_INET6,
    sockets?.inet6,
  );
}

/**
 * Turns duplicate address detection off on the host side of `name` (sysctl `accept_dad`, before the
 * interface is up), in the calling thread's namespace. Without IPv6 on the host the file is absent: ignored.
 */
function skipHostDad(name: string): void {
  try {
    Deno.writeTextFileSync(`/proc/sys/net/ipv6/conf/${name}/accept_dad`, "0");
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** A TUN (or TAP) device created by this process; it disappears when closed. */
export class TunDevice implements Device {
  readonly name: string;
  readonly medium: Medium;
  readonly mtu: number;
  readonly offloads: boolean;
  readonly #fd: number;
  readonly #waiter: FdWaiter;
  readonly #buffer: Uint8Array<ArrayBuffer>;
  readonly #bufferLength: bigint;
  /** With offload: a virtio_net_hdr followed by a copy of the packet being sent. */
  readonly #txBuffer: Uint8Array<ArrayBuffer> | null;
  /** Bytes before the IP header in what this device carries (TAP: the Ethernet header). */
  readonly #linkHeaderLength: number;
  #closed = false;
  /** Packets the kernel refused on write (ENOBUFS, EAGAIN…), counted rather than thrown. */
  sendErrors = 0;
  /** Read errors other than EAGAIN, counted. */
  receiveErrors = 0;

  private constructor(
    name: string,
    medium: Medium,
    mtu: number,
    fd: number,
    waiter: FdWaiter,
    offload: boolean,
  ) {
    this.name = name;
    this.medium = medium;
    this.mtu = mtu;
    this.offloads = offload;
    this.#fd = fd;
    this.#waiter = waiter;
    // Room for the largest frame of this MTU (Ethernet header and VLAN tag for TAP) and then some; with
    // offload, for a 64 KiB super-segment after its virtio_net_hdr.
    this.#buffer = new Uint8Array(offload ? VIRTIO_NET_HDR_LENGTH + 18 + 65536 : mtu + 18 + 4096);
    this.#bufferLength = BigInt(this.#buffer.length);
    this.#txBuffer = offload ? new Uint8Array(VIRTIO_NET_HDR_LENGTH + 18 + 65536) : null;
    this.#linkHeaderLength = medium === "ethernet" ? ETHERNET_HEADER_LENGTH : 0;
  }

  /**
   * Creates the device (and configures the host side when `hostAddress` is given).
   * Throws {@link SystemError} with a message that says what to do on the usual failures.
   */
  static open(options: TunOptions = {}): TunDevice {
    const c = libc();
    const requested = options.name ?? "tun0";
    const kind = options.kind ?? "tun";
    const mtu = options.mtu ?? 1500;
    const offload = options.offload === true;
    const openTun = (): number => {
      const fd = c.open(cString("/dev/net/tun"), Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
      if (fd < 0) {
        const code = errno();
        const hint = code === Errno.ENOENT
          ? "is the tun module loaded? try: modprobe tun"
          : code === Errno.EACCES || code === Errno.EPERM
          ? "it needs root, or CAP_NET_ADMIN and access to /dev/net/tun (run with sudo)"
          : undefined;
        throw new SystemError("opening /dev/net/tun", code, strerror(code), hint);
      }
      return fd;
    };
    // In another namespace: the TUN file belongs to the namespace it is opened in (the device is created
    // there by TUNSETIFF), and so do the sockets that configure it; open all three while inside.
    let fd = -1;
    let hostSockets: HostSockets | undefined;
    let routes: RtnetlinkSocket | null = null;
    const closeSockets = () => {
      if (hostSockets !== undefined) c.close(hostSockets.inet);
      if (hostSockets?.inet6 !== undefined) c.close(hostSockets.inet6);
      routes?.close();
    };
    const netns = options.netns;
    if (netns !== undefined) {
      inNetns(netns, () => {
        try {
          fd = openTun();
          hostSockets = { inet: inetSocket() };
          if (options.hostAddress6) hostSockets.inet6 = inetSocket(Libc.AF_INET6);
          if (options.defaultRoute !== undefined) routes = RtnetlinkSocket.open();
        } catch (error) {
          if (fd >= 0) c.close(fd);
          closeSockets();
          throw error;
        }
      });
    } else {
      fd = openTun();
      if (options.defaultRoute !== undefined) {
        try {
          routes = RtnetlinkSocket.open();
        } catch (error) {
          c.close(fd);
          throw error;
        }
      }
    }
    const where = netns !== undefined ? ` in network namespace ${netns}` : "";
    let waiter: FdWaiter | null = null;
    try {
      const req = ifreq(requested);
      const flags = (kind === "tun" ? IFF_TUN : IFF_TAP) | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
      new DataView(req.buffer).setUint16(16, flags, true);
      if (c.ioctl(fd, TUNSETIFF, req) < 0) {
        const code = errno();
        const hint = code === Errno.EPERM
          ? "it needs root or CAP_NET_ADMIN (run with sudo)"
          : code === Errno.EBUSY
          ? "another process holds it (choose another name with --iface)"
          : code === Errno.EINVAL
          ? `an interface of that name exists and is not a ${kind.toUpperCase()} device (choose another name with --iface)`
          : undefined;
        throw new SystemError(
          `creating ${kind.toUpperCase()} device ${requested}${where}`,
          code,
          strerror(code),
          hint,
        );
      }
      const name = ifreqName(req);
      if (offload) {
        const size = new Uint8Array(4);
        new DataView(size.buffer).setInt32(0, VIRTIO_NET_HDR_LENGTH, true);
        check(c.ioctl(fd, TUNSETVNETHDRSZ, size), `ioctl(TUNSETVNETHDRSZ) on ${name}`);
        check(
          c.ioctl_int(fd, TUNSETOFFLOAD, BigInt(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)),
          `ioctl(TUNSETOFFLOAD) on ${name}`,
        );
      }
      waiter = new FdWaiter(fd);
      const device = new TunDevice(name, kind === "tun" ? "ip" : "ethernet", mtu, fd, waiter, offload);
      const configured = options.hostAddress !== null && options.hostAddress !== undefined;
      if (kind === "tap" && configured && options.hostAddress6) {
        // The link's only other node is this stack, which runs DAD itself and whose addresses the CLI keeps
        // apart from the host's: the host side's own DAD (RFC 4862 §5.4, about a second) would only keep its
        // addresses tentative after `ready`. TUN is IFF_NOARP and skips DAD already.
        const skipDad = () => skipHostDad(name);
        if (netns !== undefined) inNetns(netns, skipDad);
        else skipDad();
      }
      configureHostInterface(name, {
        address: options.hostAddress ?? null,
        address6: configured ? options.hostAddress6 : null,
        mtu,
        txQueueLength: options.txQueueLength ?? DEFAULT_TX_QUEUE_LENGTH,
      }, hostSockets);
      if (options.defaultRoute !== undefined) {
        const ifindex = withInetSocket(
          (sock) => interfaceIndexOn(sock, name),
          Libc.AF_INET,
          hostSockets?.inet,
        );
        routes!.addDefaultRoute(options.defaultRoute, ifindex, `adding a default route via ${name}${where}`);
      }
      closeSockets();
      return device;
    } catch (error) {
      closeSockets();
      waiter?.close();
      c.close(fd);
      throw error;
    }
  }

  receive(onPacket: PacketHandler, max: number): number {
    const c = libc();
    const buffer = this.#buffer;
    let count = 0;
    while (count < max) {
      const n = Number(c.read(this.#fd, buffer, this.#bufferLength));
      if (n < 0) {
        const code = errno();
        if (code !== Errno.EAGAIN && code !== Errno.EINTR) this.receiveErrors++;
        break;
      }
      if (n === 0) break;
      count++;
      if (this.offloads) {
        if (n < VIRTIO_NET_HDR_LENGTH) continue;
        // NEEDS_CSUM: the local kernel left the checksum partial; DATA_VALID: it verified it.
        const flags = virtioRxFlags(buffer);
        if (flags < 0) {
          this.receiveErrors++; // a GSO type other than TCP: never offered to the kernel (TUNSETOFFLOAD)
          continue;
        }
        onPacket(buffer.subarray(VIRTIO_NET_HDR_LENGTH, n), flags);
      } else {
        onPacket(buffer.subarray(0, n));
      }
    }
    return count;
  }

  send(packet: Uint8Array, offload: TxOffload | null = null): boolean {
    let out = packet as Uint8Array<ArrayBuffer>;
    const tx = this.#txBuffer;
    if (tx !== null) {
      if (packet.length > tx.length - VIRTIO_NET_HDR_LENGTH) {
        this.sendErrors++;
        return false;
      }
      tx.set(packet, VIRTIO_NET_HDR_LENGTH);
      // The descriptor says where the checksum and headers are (TAP: after the Ethernet header); the
      // kernel completes the partial checksum (or, delivering locally, trusts it) and segments.
      writeVirtioNetHeaderFor(tx, 0, offload, this.#linkHeaderLength);
      out = tx.subarray(0, VIRTIO_NET_HDR_LENGTH + packet.length);
    }
    const n = Number(libc().write(this.#fd, out, BigInt(out.length)));
    if (n !== out.length) {
      this.sendErrors++;
      return false;
    }
    return true;
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

  /** Send and receive errors, whether offloads are on, and the kernel's counters of the device. */
  stats(): Record<string, unknown> {
    return {
      sendErrors: this.sendErrors,
      receiveErrors: this.receiveErrors,
      offloads: this.offloads,
      // The kernel's side of the device: what it queued for us, and what it dropped with the queue full.
      kernel: readLinkCounters(this.name),
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiter.close();
    libc().close(this.#fd);
  }
}

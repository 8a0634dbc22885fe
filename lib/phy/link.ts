/**
 * What an existing interface is, read by `ioctl` on an AF_INET socket (no `ip` command, no netlink):
 * index, MTU, flags, hardware type and address. The backends that attach to an interface (`packet`,
 * `pcap`) check it first, so that a missing, down, loopback or non-Ethernet interface is one clear line.
 *
 * @module
 */

import { errno, lastError, Libc, libc } from "../ffi/libc.ts";
import { Errno } from "../ffi/errno.ts";
import { type MacAddress, readMac } from "../wire/ethernet.ts";

// linux/sockios.h, linux/if.h, linux/if_arp.h.
const SIOCGIFFLAGS = 0x8913n;
const SIOCGIFMTU = 0x8921n;
const SIOCGIFHWADDR = 0x8927n;
const SIOCGIFINDEX = 0x8933n;
const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;
const ARPHRD_ETHER = 1;
const ARPHRD_LOOPBACK = 772;

/** An interface that cannot be attached to, with a message naming the cause and the remedy. */
export class InterfaceError extends Error {
  /** Creates the error; `message` is the one line the user sees. */
  constructor(message: string) {
    super(message);
    this.name = "InterfaceError";
  }
}

/** What {@link linkInfo} reads. */
export interface LinkInfo {
  /** Interface name. */
  name: string;
  /** Interface index in the calling thread's namespace. */
  index: number;
  /** IP MTU. */
  mtu: number;
  /** Whether it is administratively up. */
  up: boolean;
  /** Whether it is a loopback device (`lo`). */
  loopback: boolean;
  /** ARPHRD_* hardware type (1 = Ethernet, 772 = loopback). */
  hardwareType: number;
  /** The MAC address (Ethernet devices). */
  mac: MacAddress;
}

function ifreq(name: string): Uint8Array<ArrayBuffer> {
  const encoded = new TextEncoder().encode(name);
  if (encoded.length >= 16 || encoded.length === 0) {
    throw new InterfaceError(`'${name}' is not an interface name (1 to 15 bytes)`);
  }
  const req = new Uint8Array(40);
  req.set(encoded);
  return req;
}

/**
 * Reads an interface's index, MTU, flags and hardware address. Throws {@link InterfaceError} when there is
 * no such interface in this namespace, `SystemError` on other failures.
 */
export function linkInfo(name: string): LinkInfo {
  const c = libc();
  const sock = c.socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
  if (sock < 0) throw lastError("socket(AF_INET)");
  try {
    const get = (request: bigint, what: string): DataView => {
      const req = ifreq(name);
      if (c.ioctl(sock, request, req) < 0) {
        const code = errno();
        if (code === Errno.ENODEV) throw new InterfaceError(`no interface named ${name} in this namespace`);
        throw lastError(`ioctl(${what}) on ${name}`);
      }
      return new DataView(req.buffer);
    };
    const index = get(SIOCGIFINDEX, "SIOCGIFINDEX").getInt32(16, true);
    const mtu = get(SIOCGIFMTU, "SIOCGIFMTU").getInt32(16, true);
    const flags = get(SIOCGIFFLAGS, "SIOCGIFFLAGS").getUint16(16, true);
    const hw = get(SIOCGIFHWADDR, "SIOCGIFHWADDR");
    return {
      name,
      index,
      mtu,
      up: (flags & IFF_UP) !== 0,
      loopback: (flags & IFF_LOOPBACK) !== 0,
      hardwareType: hw.getUint16(16, true),
      mac: readMac(new Uint8Array(hw.buffer), 18),
    };
  } finally {
    c.close(sock);
  }
}

/**
 * Reads `name` and checks that the stack can share its wire: it exists, is Ethernet, is up, and is not the
 * loopback device. Throws {@link InterfaceError} with one line naming the cause and what to do.
 *
 * Loopback is refused rather than supported: the kernel sends on `lo` only packets for its own addresses,
 * with MAC 00:00:00:00:00:00 and no ARP, and takes back whatever goes out on it, so no other host can live
 * there; a veth pair gives the same "stack next to the host" with a real link.
 */
export function attachableLink(name: string): LinkInfo {
  const info = linkInfo(name);
  if (info.loopback || info.hardwareType === ARPHRD_LOOPBACK) {
    throw new InterfaceError(
      `${name} is the loopback device: the kernel keeps its traffic to itself, so no stack can be reached ` +
        `on it; attach to a veth pair instead (see the README: ip link add my0 type veth peer name my1)`,
    );
  }
  if (info.hardwareType !== ARPHRD_ETHER) {
    throw new InterfaceError(
      `${name} is not an Ethernet interface (hardware type ${info.hardwareType}); the stack needs Ethernet ` +
        `frames: use --backend tun for an IP-only link`,
    );
  }
  if (!info.up) throw new InterfaceError(`interface ${name} is down; bring it up: ip link set ${name} up`);
  return info;
}

/**
 * Interfaces that come up while `netstack trace -i any` runs (a container started, a veth created):
 * an rtnetlink socket subscribed to RTMGRP_LINK, read without blocking whenever the tracer is idle, as
 * ptcpdump does. Each RTM_NEWLINK message that shows an interface up (and not loopback) is reported.
 *
 * Message layout (linux/netlink.h, linux/rtnetlink.h, x86-64): nlmsghdr {len u32, type u16, flags u16,
 * seq u32, pid u32} (16 bytes), then ifinfomsg {family u8, pad u8, type u16, index i32, flags u32,
 * change u32} (16 bytes), then rtattr {len u16, type u16} attributes aligned to 4; IFLA_IFNAME = 3.
 *
 * @module
 */

import { Errno } from "../ffi/errno.ts";
import { errno, lastError, Libc, libc } from "../ffi/libc.ts";
import { upInterfaces } from "./link_type.ts";

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const NETLINK_ROUTE = 0;
const RTMGRP_LINK = 1;
const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;
const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;

/** An interface that is up, as announced by the kernel. */
export interface LinkUp {
  name: string;
  ifindex: number;
}

/** Parses a buffer of rtnetlink messages; returns the interfaces announced up (not loopback). */
export function parseLinkMessages(bytes: Uint8Array, length = bytes.length): LinkUp[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: LinkUp[] = [];
  let at = 0;
  while (at + 16 <= length) {
    const size = view.getUint32(at, true);
    if (size < 16 || at + size > length) break;
    if (view.getUint16(at + 4, true) === RTM_NEWLINK && size >= 32) {
      const ifindex = view.getInt32(at + 20, true);
      const flags = view.getUint32(at + 24, true);
      let attr = at + 32;
      let name: string | undefined;
      while (attr + 4 <= at + size) {
        const attrLength = view.getUint16(attr, true);
        if (attrLength < 4 || attr + attrLength > at + size) break;
        if (view.getUint16(attr + 2, true) === IFLA_IFNAME) {
          const value = bytes.subarray(attr + 4, attr + attrLength);
          const end = value.indexOf(0);
          name = new TextDecoder().decode(end < 0 ? value : value.subarray(0, end));
        }
        attr += (attrLength + 3) & ~3;
      }
      if (name !== undefined && (flags & IFF_UP) !== 0 && (flags & IFF_LOOPBACK) === 0) {
        found.push({ name, ifindex });
      }
    }
    at += (size + 3) & ~3;
  }
  return found;
}

/** An rtnetlink socket listening for link changes in the current namespace. */
export class LinkWatcher {
  readonly #fd: number;
  readonly #buffer = new Uint8Array(65536);
  #closed = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens and subscribes the socket; throws a SystemError when the kernel refuses. */
  static open(): LinkWatcher {
    const fd = libc().socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw lastError("socket(AF_NETLINK)");
    const address = new Uint8Array(12); // sockaddr_nl: family, pad, pid 0 (kernel assigns), groups
    const view = new DataView(address.buffer);
    view.setUint16(0, AF_NETLINK, true);
    view.setUint32(8, RTMGRP_LINK, true);
    if (libc().bind(fd, address, address.length) !== 0) {
      const error = lastError("bind(AF_NETLINK)");
      libc().close(fd);
      throw error;
    }
    return new LinkWatcher(fd);
  }

  /**
   * Reads what is pending without blocking; returns the interfaces that were announced up (with
   * ifindex 0 when they come from a rescan after an overflow).
   */
  poll(): LinkUp[] {
    if (this.#closed) return [];
    const found: LinkUp[] = [];
    // Bounded: at most 64 reads of 64 KiB per call.
    for (let i = 0; i < 64; i++) {
      const n = Number(libc().read(this.#fd, this.#buffer, BigInt(this.#buffer.length)));
      if (n < 0) {
        const code = errno();
        if (code === Errno.EAGAIN) break;
        if (code === Errno.ENOBUFS) {
          // The kernel dropped messages (a burst of changes): list what is up instead.
          for (const name of upInterfaces()) found.push({ name, ifindex: 0 });
          continue;
        }
        throw lastError("read(AF_NETLINK)");
      }
      if (n === 0) break;
      found.push(...parseLinkMessages(this.#buffer, n));
    }
    return found;
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.#fd);
  }
}

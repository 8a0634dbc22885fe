/**
 * A minimal rtnetlink client (RFC 3549; linux/netlink.h, linux/rtnetlink.h, x86-64) for what `ioctl`
 * cannot do: adding a route. Requests carry NLM_F_ACK and the kernel answers each with an NLMSG_ERROR
 * message whose error field is 0 or `-errno`. The socket is blocking: the kernel answers a request
 * synchronously, so one read gets the acknowledgement.
 *
 * Layouts: nlmsghdr {len u32, type u16, flags u16, seq u32, pid u32} (16 bytes); rtmsg {family, dst_len,
 * src_len, tos, table, protocol, scope, type: u8; flags u32} (12 bytes); rtattr {len u16, type u16} then
 * the value, padded to 4.
 *
 * @module
 */

import { errno, lastError, Libc, libc, strerror } from "../ffi/libc.ts";
import { SystemError } from "../ffi/errno.ts";
import { type Ipv4Address, writeIpv4 } from "../wire/ipv4_address.ts";

const NETLINK_ROUTE = 0;
const NLMSG_ERROR = 2;
const RTM_NEWROUTE = 24;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const RT_TABLE_MAIN = 254;
const RTPROT_STATIC = 4;
const RT_SCOPE_UNIVERSE = 0;
const RTN_UNICAST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const NLMSG_HEADER_LENGTH = 16;
const RTMSG_LENGTH = 12;

/**
 * Writes an RTM_NEWROUTE request for `0.0.0.0/0 via gateway dev ifindex` into `buffer`; returns its
 * length. Exported for tests.
 */
export function writeDefaultRouteRequest(
  buffer: Uint8Array,
  sequence: number,
  gateway: Ipv4Address,
  ifindex: number,
): number {
  const length = NLMSG_HEADER_LENGTH + RTMSG_LENGTH + 8 + 8;
  buffer.fill(0, 0, length);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  view.setUint32(0, length, true);
  view.setUint16(4, RTM_NEWROUTE, true);
  view.setUint16(6, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, true);
  view.setUint32(8, sequence, true);
  let at = NLMSG_HEADER_LENGTH;
  buffer[at] = Libc.AF_INET; // family; dst_len 0: the default route; src_len, tos 0
  buffer[at + 4] = RT_TABLE_MAIN;
  buffer[at + 5] = RTPROT_STATIC;
  buffer[at + 6] = RT_SCOPE_UNIVERSE;
  buffer[at + 7] = RTN_UNICAST;
  at += RTMSG_LENGTH;
  view.setUint16(at, 8, true);
  view.setUint16(at + 2, RTA_GATEWAY, true);
  writeIpv4(buffer, at + 4, gateway);
  at += 8;
  view.setUint16(at, 8, true);
  view.setUint16(at + 2, RTA_OIF, true);
  view.setUint32(at + 4, ifindex, true);
  return length;
}

/**
 * Reads the acknowledgement of request `sequence` from `bytes`: 0 on success, a positive errno on
 * failure, or `null` when no acknowledgement of that request is there. Exported for tests.
 */
export function parseAck(bytes: Uint8Array, length: number, sequence: number): number | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + NLMSG_HEADER_LENGTH <= length) {
    const size = view.getUint32(at, true);
    if (size < NLMSG_HEADER_LENGTH || at + size > length) return null;
    if (view.getUint16(at + 4, true) === NLMSG_ERROR && view.getUint32(at + 8, true) === sequence) {
      if (size < NLMSG_HEADER_LENGTH + 4) return null;
      const error = view.getInt32(at + NLMSG_HEADER_LENGTH, true);
      return error === 0 ? 0 : -error;
    }
    at += (size + 3) & ~3;
  }
  return null;
}

/** An rtnetlink socket of the namespace it was opened in. */
export class RtnetlinkSocket {
  readonly #fd: number;
  readonly #buffer = new Uint8Array(8192);
  #sequence = 1;
  #closed = false;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** Opens a socket (in the calling thread's namespace); throws {@link SystemError}. */
  static open(): RtnetlinkSocket {
    const fd = libc().socket(Libc.AF_NETLINK, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) throw lastError("socket(AF_NETLINK)");
    return new RtnetlinkSocket(fd);
  }

  /** Adds `default via gateway dev ifindex` to the main table; throws {@link SystemError} (EEXIST…). */
  addDefaultRoute(gateway: Ipv4Address, ifindex: number, what = "adding the default route"): void {
    const sequence = this.#sequence++;
    const length = writeDefaultRouteRequest(this.#buffer, sequence, gateway, ifindex);
    this.#request(length, sequence, what);
  }

  #request(length: number, sequence: number, what: string): void {
    const c = libc();
    if (Number(c.write(this.#fd, this.#buffer, BigInt(length))) !== length) throw lastError(what);
    // Bounded: the kernel acknowledges at once; a few reads skip anything unrelated.
    for (let i = 0; i < 8; i++) {
      const n = Number(c.read(this.#fd, this.#buffer, BigInt(this.#buffer.length)));
      if (n < 0) throw lastError(what);
      const result = parseAck(this.#buffer, n, sequence);
      if (result === null) continue;
      if (result !== 0) throw new SystemError(what, result, strerror(result));
      return;
    }
    throw new SystemError(what, errno(), "no acknowledgement from the kernel");
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.#fd);
  }
}

/**
 * errno values of Linux x86-64 by name, and the error type for failed system calls.
 *
 * @module
 */

/** errno numbers netstack meets, by their C names (Linux, asm-generic). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ENOSPC: 28,
  EPIPE: 32,
  ERANGE: 34,
  ENOSYS: 38,
  ENOMSG: 42,
  ENODATA: 61,
  EPROTO: 71,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNRESET: 104,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  E2BIG: 7,
  ESRCH: 3,
  ENOTSUPP: 524,
} as const;

const NAMES = new Map<number, string>(Object.entries(Errno).map(([name, value]) => [value, name]));

/** The C name of an errno value, e.g. `EPERM`, or `errno N` when unknown. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `errno ${errno}`;
}

/** A failed system or library call, carrying errno and the name of what failed. */
export class SystemError extends Error {
  /** The positive errno value. */
  readonly errno: number;
  /** The errno name, e.g. `EPERM`. */
  readonly code: string;
  /** What was called, e.g. `ioctl(TUNSETIFF)`. */
  readonly operation: string;

  /** What the user can do about it, appended to the message after a semicolon. */
  readonly hint?: string;

  /** Builds the message `operation failed: CODE (text)`, followed by `; hint` when there is one. */
  constructor(operation: string, errno: number, text: string, hint?: string) {
    super(`${operation} failed: ${errnoName(errno)} (${text})${hint ? `; ${hint}` : ""}`);
    this.hint = hint;
    this.name = "SystemError";
    this.errno = errno;
    this.code = errnoName(errno);
    this.operation = operation;
  }
}

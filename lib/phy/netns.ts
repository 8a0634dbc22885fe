/**
 * Network namespaces by name (`ip netns` names, files under `/run/netns`): running a short synchronous
 * piece of code with the calling thread inside another namespace, to create file descriptors that stay
 * bound to it (a TUN device, sockets for `ioctl` and rtnetlink).
 *
 * `setns(2)` moves only the calling thread. Deno runs other threads (the pool that runs nonblocking FFI
 * calls, I/O), so nothing asynchronous may happen while the thread is elsewhere: {@link inNetns} takes a
 * synchronous function, and the thread returns to its own namespace before anything else runs. A socket or
 * TUN file opened meanwhile keeps the namespace it was created in (`sock_net`), after the thread has left.
 *
 * @module
 */

import { cString, errno, Libc, libc, strerror } from "../ffi/libc.ts";
import { Errno, SystemError } from "../ffi/errno.ts";

/** Where `ip netns add NAME` mounts the namespace's file. */
export const NETNS_RUN_DIR = "/run/netns";

/** Whether `name` can name a namespace under {@link NETNS_RUN_DIR} (no path separators, not `.`/`..`). */
export function isValidNetnsName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && !name.includes("/") && name !== "." && name !== ".." &&
    !name.includes("\0");
}

function openReadOnly(path: string, what: string, hint?: string): number {
  const fd = libc().open(cString(path), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
  if (fd < 0) {
    const code = errno();
    throw new SystemError(what, code, strerror(code), code === Errno.ENOENT ? hint : undefined);
  }
  return fd;
}

/**
 * Runs `fn` with the calling thread in the network namespace `name`, and returns its result after the
 * thread is back in its own namespace. `fn` must be synchronous and should only create descriptors.
 * Throws {@link SystemError} when the namespace does not exist or cannot be entered (CAP_SYS_ADMIN).
 */
export function inNetns<T>(name: string, fn: () => T): T {
  if (!isValidNetnsName(name)) throw new RangeError(`'${name}' is not a network namespace name`);
  const c = libc();
  const target = openReadOnly(
    `${NETNS_RUN_DIR}/${name}`,
    `opening network namespace ${name}`,
    `create it first: ip netns add ${name}`,
  );
  let own = -1;
  try {
    own = openReadOnly("/proc/thread-self/ns/net", "opening this thread's network namespace");
    if (c.setns(target, Libc.CLONE_NEWNET) !== 0) {
      const code = errno();
      throw new SystemError(
        `entering network namespace ${name}`,
        code,
        strerror(code),
        code === Errno.EPERM ? "it needs root (CAP_SYS_ADMIN)" : undefined,
      );
    }
    try {
      return fn();
    } finally {
      if (c.setns(own, Libc.CLONE_NEWNET) !== 0) {
        // The main thread would go on in the wrong namespace: nothing sensible can follow.
        const code = errno();
        console.error(`netstack: cannot return to the original network namespace: ${strerror(code)}`);
        Deno.exit(1);
      }
    }
  } finally {
    if (own >= 0) c.close(own);
    c.close(target);
  }
}

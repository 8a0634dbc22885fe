/**
 * FdWaiter's synchronous wait: it returns when the watched fd is readable, when wake() was called before
 * it, and after its timeout when nothing happens; the awaited wait behaves the same. The watched fd is an
 * eventfd (readable while its counter is non-zero), so no privileges are needed.
 */

import assert from "node:assert/strict";
import { Libc, libc } from "../../lib/ffi/libc.ts";
import { FdWaiter } from "../../lib/phy/fd_waiter.ts";

function withEventFd(fn: (fd: number, signal: () => void, drain: () => void) => void | Promise<void>) {
  return async () => {
    const fd = libc().eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
    assert(fd >= 0, "eventfd");
    const one = new Uint8Array(8);
    one[0] = 1;
    const sink = new Uint8Array(8);
    try {
      await fn(fd, () => void libc().write(fd, one, 8n), () => void libc().read(fd, sink, 8n));
    } finally {
      libc().close(fd);
    }
  };
}

// A wait that did not return would hang the test: the long timeouts below are the failure mode, never
// reached when the behaviour is right.
const FOREVER_MS = 600_000;

Deno.test(
  "FdWaiter.waitSync returns when the fd is readable",
  withEventFd((fd, signal, drain) => {
    const waiter = new FdWaiter(fd);
    try {
      signal();
      waiter.waitSync(FOREVER_MS);
      drain();
      // Readable again later: the waiter keeps working across waits.
      signal();
      waiter.waitSync(FOREVER_MS);
    } finally {
      waiter.close();
    }
  }),
);

Deno.test(
  "FdWaiter.waitSync returns at once after wake(), once",
  withEventFd((fd) => {
    const waiter = new FdWaiter(fd);
    try {
      waiter.wake();
      waiter.waitSync(FOREVER_MS);
      // The wake-up is consumed: the next wait sleeps for its (short) timeout.
      const t0 = performance.now();
      waiter.waitSync(30);
      assert(performance.now() - t0 >= 25, "the second wait blocked for its timeout");
    } finally {
      waiter.close();
    }
  }),
);

Deno.test(
  "FdWaiter: the awaited wait also returns on readiness and on wake()",
  withEventFd(async (fd, signal) => {
    const waiter = new FdWaiter(fd);
    try {
      const waiting = waiter.wait(FOREVER_MS);
      assert.equal(waiter.waiting, true);
      waiter.wake(); // writes the waiter's own eventfd, interrupting the pool thread's poll
      await waiting;
      assert.equal(waiter.waiting, false);
      signal();
      await waiter.wait(FOREVER_MS);
    } finally {
      waiter.close();
    }
  }),
);

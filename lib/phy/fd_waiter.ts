/**
 * Waits until a file descriptor is readable with one awaited non-blocking `poll` (run on a pool thread),
 * interruptible from the event loop through an eventfd. Shared by the devices that wait on an fd
 * (TUN/TAP, libpcap).
 *
 * @module
 */

import { errno, lastError, Libc, libc } from "../ffi/libc.ts";
import { Errno } from "../ffi/errno.ts";

/** Readiness of one fd, plus a wake-up eventfd of its own. */
export class FdWaiter {
  readonly #eventFd: number;
  readonly #pollFds = new Uint8Array(16);
  readonly #pollFdsView = new DataView(this.#pollFds.buffer);
  readonly #eventValue = new Uint8Array(8);
  #waiting: Promise<void> | null = null;
  #wakePending = false;
  #closed = false;

  /** Watches `fd` for POLLIN. Throws a SystemError when no eventfd can be made. */
  constructor(fd: number) {
    const eventFd = libc().eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
    if (eventFd < 0) throw lastError("eventfd");
    this.#eventFd = eventFd;
    this.#pollFdsView.setInt32(0, fd, true);
    this.#pollFdsView.setInt16(4, Libc.POLLIN, true);
    this.#pollFdsView.setInt32(8, eventFd, true);
    this.#pollFdsView.setInt16(12, Libc.POLLIN, true);
    new DataView(this.#eventValue.buffer).setBigUint64(0, 1n, true);
  }

  /** Resolves when the fd is readable, after {@link FdWaiter.wake}, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#wakePending) {
      this.#wakePending = false;
      return Promise.resolve();
    }
    this.#waiting ??= this.#poll(timeoutMs);
    return this.#waiting;
  }

  async #poll(timeoutMs: number): Promise<void> {
    try {
      const timeout = Math.max(0, Math.min(Math.ceil(timeoutMs), 2 ** 31 - 1));
      await libc().poll_nb(this.#pollFds, 2n, timeout);
      // Drain the eventfd so that the next poll blocks again.
      if ((this.#pollFdsView.getInt16(14, true) & Libc.POLLIN) !== 0) {
        libc().read(this.#eventFd, this.#eventValue, 8n);
      }
    } finally {
      this.#waiting = null;
      this.#wakePending = false;
    }
  }

  /**
   * Blocks this thread in a synchronous `poll` until the fd is readable, {@link FdWaiter.wake} was
   * called since the last wait, a signal interrupts it (EINTR: the event loop then runs the signal's
   * listeners), or `timeoutMs` passes. No thread hand-off: the thread that handles the packets is the
   * one the kernel wakes (about half the round trip of an awaited poll, and a shorter cold wake-up).
   * Returns true when a signal interrupted it.
   */
  waitSync(timeoutMs: number): boolean {
    if (this.#closed) return false;
    if (this.#wakePending) {
      this.#wakePending = false;
      return false;
    }
    const timeout = Math.max(0, Math.min(Math.ceil(timeoutMs), 2 ** 31 - 1));
    const ready = libc().poll(this.#pollFds, 2n, timeout);
    if (ready < 0) return errno() === Errno.EINTR;
    if (ready > 0 && (this.#pollFdsView.getInt16(14, true) & Libc.POLLIN) !== 0) {
      libc().read(this.#eventFd, this.#eventValue, 8n);
    }
    return false;
  }

  /** Makes the pending (or the next) wait return at once. */
  wake(): void {
    if (this.#closed) return;
    if (this.#waiting === null) {
      // Not blocked: the loop looks for work before it waits again.
      this.#wakePending = true;
      return;
    }
    new DataView(this.#eventValue.buffer).setBigUint64(0, 1n, true);
    libc().write(this.#eventFd, this.#eventValue, 8n);
  }

  /** Whether a wait is in progress (an FFI call is pending). */
  get waiting(): boolean {
    return this.#waiting !== null;
  }

  /** Closes the eventfd; call once no wait is pending. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    libc().close(this.#eventFd);
  }
}

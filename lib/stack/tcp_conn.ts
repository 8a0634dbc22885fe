/**
 * The stack's TCP connections as `Deno.Conn`-like objects: `read`/`write` (and their non-waiting forms
 * `tryRead`/`tryWrite`), a ReadableStream pulled from the receive buffer (so an application that stops
 * reading closes the window) and a WritableStream that waits while the send buffer is full (both made on
 * first use: a connection served with `read`/`write` carries no stream), half-close, close, and typed errors (`Deno.errors.ConnectionRefused`, `TimedOut`,
 * `ConnectionReset`) so that Deno code ports over unchanged.
 *
 * @module
 */

import { type TcpConnection, TcpEvent } from "../tcp/connection.ts";
import { closeError } from "../errors.ts";
import type { TcpListener } from "../tcp/layer.ts";
import { formatIpv4 } from "../wire/ipv4_address.ts";
import type { NetAddr } from "./datagram.ts";
import type { StreamConn } from "./stream_conn.ts";

/** Largest chunk handed to a reader at once. */
const READ_CHUNK = 256 * 1024;

/** A TCP connection of the stack. */
export class TcpConn implements StreamConn {
  /** The protocol connection underneath. */
  readonly #connection: TcpConnection;
  // Made on first use: a held connection that is only read and written with read()/write() (the
  // services) carries no stream objects (~3 KiB of heap each), and its addresses are formatted only
  // when asked for.
  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;
  #localAddr: NetAddr | null = null;
  #remoteAddr: NetAddr | null = null;
  readonly #format: (address: number) => string;
  #readWaiter: (() => void) | null = null;
  /** Set by {@link whenReadable}. */
  #readCallback: (() => void) | null = null;
  #writeWaiter: (() => void) | null = null;
  #openWaiter: (() => void) | null = null;
  /** {@link close} was called: reads end. */
  #closed = false;

  /**
   * Wraps `connection`; takes over its `onEvent`. `formatAddress` turns its numeric addresses into text
   * (IPv6 connections carry handles, see `TcpLayer.formatAddress`).
   */
  constructor(connection: TcpConnection, formatAddress: (address: number) => string = formatIpv4) {
    this.#connection = connection;
    this.#format = formatAddress;
    connection.onEvent = (_c, events) => {
      if (events & (TcpEvent.READABLE | TcpEvent.EOF | TcpEvent.CLOSED)) this.#wakeReader();
      if (events & (TcpEvent.WRITABLE | TcpEvent.CLOSED)) this.#wakeWriter();
      if (events & (TcpEvent.OPEN | TcpEvent.CLOSED)) this.#wakeOpen();
    };
  }

  /** Our address and port. */
  get localAddr(): NetAddr {
    const c = this.#connection;
    return this.#localAddr ??= {
      transport: "tcp",
      hostname: this.#format(c.localAddress),
      port: c.localPort,
    };
  }

  /** The peer's address and port. */
  get remoteAddr(): NetAddr {
    const c = this.#connection;
    return this.#remoteAddr ??= {
      transport: "tcp",
      hostname: this.#format(c.remoteAddress),
      port: c.remotePort,
    };
  }

  /**
   * Bytes from the peer, pulled from the receive buffer (made on first use), so an application that
   * stops reading closes the window. Read a connection either through this stream or with
   * {@link read}/{@link tryRead}, not both at once.
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.#readable ??= new ReadableStream<Uint8Array>({
      pull: (controller) => this.#pull(controller),
      cancel: () => {
        // The application will not read any more: closing now resets if data is pending, like Linux.
        this.#connection.close();
      },
    }, { highWaterMark: 0 });
  }

  /** Bytes to the peer; a writer waits while the send buffer is full; closing it sends FIN (made on first use). */
  get writable(): WritableStream<Uint8Array> {
    return this.#writable ??= new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => this.#connection.shutdownWrite(),
      abort: () => this.#connection.abort(),
    }, { highWaterMark: 1 });
  }

  /**
   * Reads into `p` like `Deno.Conn.read`: resolves to the bytes read once some are there, or null once
   * the peer closed its side and everything was read; rejects with the typed error after a reset. An
   * empty `p` only waits: it resolves to 0 when data is there (null at the end), so that a server can
   * wait without holding a buffer and then take the data with {@link tryRead}.
   */
  read(p: Uint8Array): Promise<number | null> {
    // Not an async function: a held connection waiting here costs one promise and one closure, not an
    // async frame (~0.4 KiB each, measured).
    return new Promise<number | null>((resolve, reject) => {
      const attempt = () => {
        try {
          const n = this.tryRead(p);
          if (n !== 0 || (p.length === 0 && this.#connection.readableBytes > 0)) resolve(n);
          else this.#readWaiter = attempt;
        } catch (error) {
          reject(error);
        }
      };
      attempt();
    });
  }

  /**
   * Calls `callback` once, when data, the end of the stream or an error is there to be taken with
   * {@link tryRead} (soon, as a microtask, if it already is). A server waiting like this holds no buffer,
   * no promise and no async frame: only the callback (the built-in services wait so). One waiting
   * callback at a time; it must not throw.
   */
  whenReadable(callback: () => void): void {
    const c = this.#connection;
    if (
      this.#closed || c.readableBytes > 0 || c.peerClosed || c.state === "CLOSED" || c.state === "TIME_WAIT"
    ) {
      queueMicrotask(callback);
    } else {
      this.#readCallback = callback;
    }
  }

  /**
   * Takes what the receive buffer holds now, up to `p.length` bytes, without waiting: the bytes read
   * (0 when none are there yet), or null once the peer closed its side and everything was read; throws
   * the typed error after a reset. After {@link close} it returns null.
   */
  tryRead(p: Uint8Array): number | null {
    const c = this.#connection;
    if (this.#closed) return null;
    if (c.readableBytes > 0) return p.length === 0 ? 0 : c.recv(p) ?? 0;
    if (c.peerClosed || c.state === "CLOSED" || c.state === "TIME_WAIT") {
      if (c.error !== null && c.error !== "aborted") throw closeError(c.error);
      return null;
    }
    return 0;
  }

  /** Writes all of `p` like `Deno.Conn.write`, waiting while the send buffer is full; resolves to its length. */
  async write(p: Uint8Array): Promise<number> {
    await this.#write(p);
    return p.length;
  }

  /**
   * Queues as much of `p` as the send buffer takes now, without waiting; returns the bytes queued
   * (copied: `p` may be reused at once). Throws when the connection or its sending side is closed.
   */
  tryWrite(p: Uint8Array): number {
    const c = this.#connection;
    if (c.state === "CLOSED") throw closeError(c.error);
    if (c.writeShut) throw new Deno.errors.BrokenPipe("the connection's sending side is closed");
    return c.send(p);
  }

  /** Resolves once the handshake completed; rejects with the typed error when it failed. */
  async opened(): Promise<void> {
    const c = this.#connection;
    while (c.state === "SYN_SENT" || c.state === "SYN_RECEIVED") {
      await new Promise<void>((resolve) => (this.#openWaiter = resolve));
    }
    if (c.state === "CLOSED" && c.error !== null) throw closeError(c.error);
  }

  /**
   * Resolves once everything we sent is acknowledged and both sides closed (TIME-WAIT or CLOSED), or
   * after `lingerMs`; resolves to whether the connection finished in time.
   */
  async finished(lingerMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + lingerMs;
    const c = this.#connection;
    // The state changes inside the stack's loop; checking every few ms is cheap on this exit path.
    while (c.state !== "CLOSED" && c.state !== "TIME_WAIT") {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return c.error === null || c.error === "aborted";
  }

  /** Closes the sending side (FIN after the queued data); reading goes on. */
  async closeWrite(): Promise<void> {
    // Never written through the stream: no stream to close, only the connection's sending side.
    if (this.#writable === null || this.#writable.locked) this.#connection.shutdownWrite();
    else await this.#writable.close();
  }

  /** Closes both directions: FIN after the queued data (or RST when received data was left unread). */
  close(): void {
    this.#closed = true;
    this.#connection.close();
    this.#wakeReader();
    this.#wakeWriter();
  }

  /** Sets or clears TCP_NODELAY (Nagle's algorithm off when true). */
  setNoDelay(noDelay = true): void {
    this.#connection.noDelay = noDelay;
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    const c = this.#connection;
    while (true) {
      const available = c.readableBytes;
      if (available > 0) {
        const chunk = new Uint8Array(Math.min(available, READ_CHUNK));
        const n = c.recv(chunk) ?? 0;
        controller.enqueue(n === chunk.length ? chunk : chunk.subarray(0, n));
        return;
      }
      if (c.peerClosed || c.state === "CLOSED" || c.state === "TIME_WAIT") {
        if (c.error !== null && c.error !== "aborted") controller.error(closeError(c.error));
        else controller.close();
        return;
      }
      await new Promise<void>((resolve) => (this.#readWaiter = resolve));
    }
  }

  async #write(chunk: Uint8Array): Promise<void> {
    const c = this.#connection;
    let offset = 0;
    while (offset < chunk.length) {
      if (c.state === "CLOSED") throw closeError(c.error);
      if (c.writeShut) throw new Deno.errors.BrokenPipe("the connection's sending side is closed");
      offset += c.send(offset === 0 ? chunk : chunk.subarray(offset));
      if (offset < chunk.length) await new Promise<void>((resolve) => (this.#writeWaiter = resolve));
    }
  }

  #wakeReader(): void {
    const waiter = this.#readWaiter;
    this.#readWaiter = null;
    waiter?.();
    const callback = this.#readCallback;
    this.#readCallback = null;
    // After the stack's turn, as a promise's continuation would run.
    if (callback !== null) queueMicrotask(callback);
  }

  #wakeWriter(): void {
    const waiter = this.#writeWaiter;
    this.#writeWaiter = null;
    waiter?.();
  }

  #wakeOpen(): void {
    const waiter = this.#openWaiter;
    this.#openWaiter = null;
    waiter?.();
  }
}

/** A listening TCP port of the stack, like `Deno.Listener`: accept connections or iterate over them. */
export class TcpConnListener implements AsyncIterable<TcpConn> {
  /** The local address and port. */
  readonly addr: NetAddr;
  readonly #listener: TcpListener;
  readonly #format: (address: number) => string;
  #waiter: (() => void) | null = null;
  #closed = false;
  /** Set by {@link onConnection}: connections go to it instead of {@link accept}. */
  #onConnection: ((conn: TcpConn) => void) | null = null;
  /** A drain of the accept queue is scheduled (one microtask for a burst of connections). */
  #drainQueued = false;

  /** Wraps a protocol listener; takes over its `onAcceptable`. */
  constructor(
    listener: TcpListener,
    hostname: string,
    formatAddress: (address: number) => string = formatIpv4,
  ) {
    this.#listener = listener;
    this.#format = formatAddress;
    this.addr = { transport: "tcp", hostname, port: listener.port };
    listener.onAcceptable = () => {
      if (this.#onConnection !== null) {
        // After the stack's turn (as an awaiting accept() would resume), not inside the segment's
        // processing: one microtask hands over every connection that completed in this turn.
        if (!this.#drainQueued) {
          this.#drainQueued = true;
          queueMicrotask(this.#drain);
        }
        return;
      }
      const waiter = this.#waiter;
      this.#waiter = null;
      waiter?.();
    };
  }

  /**
   * Hands every established connection to `callback` (as a microtask after the stack's turn), in place of
   * {@link accept} and iteration: no promise, async frame or generator step per connection, for servers
   * that accept many short connections (the built-in services do). Connections already waiting are handed
   * over at once. The callback must not throw; set it once, before accepting otherwise.
   */
  onConnection(callback: (conn: TcpConn) => void): void {
    this.#onConnection = callback;
    if (this.#listener.acceptable > 0 && !this.#drainQueued) {
      this.#drainQueued = true;
      queueMicrotask(this.#drain);
    }
  }

  readonly #drain = (): void => {
    this.#drainQueued = false;
    const callback = this.#onConnection;
    if (callback === null) return;
    for (let c = this.#listener.accept(); c !== null && !this.#closed; c = this.#listener.accept()) {
      callback(new TcpConn(c, this.#format));
    }
  };

  /** Waits for the next established connection; rejects once the listener is closed. */
  async accept(): Promise<TcpConn> {
    while (true) {
      if (this.#closed) throw new Deno.errors.BadResource("the listener is closed");
      const connection = this.#listener.accept();
      if (connection !== null) return new TcpConn(connection, this.#format);
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  /** Stops listening; connections not yet accepted are reset, pending accepts reject. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener.close();
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.();
  }

  /** Accepts connections until the listener is closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<TcpConn> {
    while (!this.#closed) {
      try {
        yield await this.accept();
      } catch (error) {
        if (this.#closed) return;
        throw error;
      }
    }
  }
}

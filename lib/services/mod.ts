/**
 * The stack's built-in services, started by the application (the command line) on the public API like any
 * other application would: echo (TCP and UDP 7, RFC 862), discard (TCP 9, RFC 863), chargen (TCP 19,
 * RFC 864), http (TCP 80). They see the stack only through {@link ServiceHost}.
 * Each TCP service holds at most a bounded number of connections ({@link ConnectionPool}): HTTP makes room
 * by closing its longest-idle keep-alive connection, and a connection that finds no room is reset.
 *
 * @module
 */

import type { StreamConn } from "./conn.ts";
import type { DatagramResponder } from "../udp/responder.ts";
import { ECHO_PORT, serveUdpEcho } from "./udp_echo.ts";
import { echoConnection } from "./echo.ts";
import { DISCARD_PORT, discardConnection } from "./discard.ts";
import { CHARGEN_PORT, serveChargen } from "./chargen.ts";
import { HTTP_PORT, HttpCounters, serveHttp } from "./http.ts";
import { statusSite } from "./status_site.ts";
import { ConnectionPool, type PoolSlot } from "./pool.ts";
import { logger } from "../log.ts";

/** The services the stack can run, in the order of docs/cli.md. */
export const SERVICE_NAMES = ["echo", "discard", "chargen", "http"] as const;

/** One service name. */
export type ServiceName = typeof SERVICE_NAMES[number];

const log = logger("services");

/** Concurrent connections per TCP service unless told otherwise. */
export const DEFAULT_MAX_CONNECTIONS = 256;

/**
 * The TCP layer's bound for services holding `maxConnections` each: room for two services full at once
 * (or one full and its closing connections in TIME-WAIT), and never below the layer's default of 65536.
 */
export function tcpConnectionBound(maxConnections: number): number {
  return Math.max(65536, 2 * maxConnections);
}

/** A listening TCP port, like `Deno.Listener`: iterate to accept, close to stop. */
export interface ServiceListener extends AsyncIterable<StreamConn> {
  /** Stops listening. */
  close(): void;
  /**
   * Hands each new connection to `callback` instead of iteration, when the listener offers it (the
   * stack's does): no promise or generator step per accepted connection.
   */
  onConnection?(callback: (conn: StreamConn) => void): void;
}

/** What the services need from a stack: TCP listeners, UDP answers and the counters (for `/stats`). */
export interface ServiceHost extends DatagramResponder {
  /** Listens on a TCP port. */
  listen(options: { port: number }): ServiceListener;
  /** Every counter, as a JSON-able object. */
  stats(): Record<string, unknown>;
}

/** Running services; {@link RunningServices.close} stops listening and waits for open connections. */
export interface RunningServices {
  /** Stops accepting and resolves when every connection's handler has finished. */
  close(): Promise<void>;
  /** Counters per service: connections (bound, active, accepted, refused, idle closed), HTTP requests. */
  stats(): Record<string, unknown>;
}

/** Options of {@link startServices}. */
export interface ServicesOptions {
  /** Concurrent connections per TCP service; default {@link DEFAULT_MAX_CONNECTIONS}. */
  maxConnections?: number;
  /** Wall clock (ms since the epoch) for HTTP's Date field; default `Date.now`. */
  wallClock?: () => number;
}

/** Serves one connection; calls `done` once when it has ended (with the error if it failed). */
type Handler = (conn: StreamConn, slot: PoolSlot, done: (error?: unknown) => void) => void;

/** Calls `done` when `served` settles. */
function settle(served: Promise<unknown>, done: (error?: unknown) => void): void {
  served.then(() => done(), (error) => done(error ?? new Error("service failed")));
}

/** Starts `names` on `stack`. HTTP's `/stats` shows the stack's counters and the services' own. */
export function startServices(
  stack: ServiceHost,
  names: readonly ServiceName[],
  options: ServicesOptions = {},
): RunningServices {
  const listeners: ServiceListener[] = [];
  const unbinds: (() => void)[] = [];
  // Connections being served, and who waits for the last one to end (close): a held connection costs
  // one set entry and its handler's own promise, no chain of promises.
  const active = new Set<StreamConn>();
  let allDone: (() => void) | null = null;
  const run = (handler: Handler, conn: StreamConn, slot: PoolSlot, pool: ConnectionPool, port: number) => {
    // One completion callback: echo and discard call it directly (no promise and no reactions per
    // connection); the others settle a promise into it.
    handler(conn, slot, (error?: unknown) => {
      if (error !== undefined) log.debug("service on port {port}: {error}", { port, error });
      pool.release(slot);
      active.delete(conn);
      if (active.size === 0) allDone?.();
    });
  };
  const pools: Record<string, ConnectionPool> = {};
  const httpCounters = new HttpCounters();
  const serve = (
    name: ServiceName,
    port: number,
    handler: Handler,
  ) => {
    const pool = pools[name] = new ConnectionPool(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS);
    const listener = stack.listen({ port });
    listeners.push(listener);
    const admit = (conn: StreamConn) => {
      const slot = pool.admit();
      if (slot === null) {
        // Full of busy connections: reset the newcomer rather than let it wait unbounded.
        conn.writable.abort().catch(() => {});
        return;
      }
      active.add(conn);
      run(handler, conn, slot, pool, port);
    };
    if (listener.onConnection !== undefined) {
      listener.onConnection(admit);
      return;
    }
    (async () => {
      for await (const conn of listener) admit(conn);
    })().catch((error) => log.error("service on port {port} stopped: {error}", { port, error }));
  };
  const running: RunningServices = {
    stats() {
      const out: Record<string, unknown> = {};
      for (const [name, pool] of Object.entries(pools)) {
        out[name] = name === "http"
          ? { connections: pool.stats(), ...httpCounters.stats() }
          : { connections: pool.stats() };
      }
      return out;
    },
    async close() {
      for (const listener of listeners) listener.close();
      for (const unbind of unbinds) unbind();
      if (active.size > 0) await new Promise<void>((resolve) => (allDone = resolve));
    },
  };
  for (const name of names) {
    switch (name) {
      case "echo":
        unbinds.push(serveUdpEcho(stack, ECHO_PORT));
        serve(name, ECHO_PORT, (conn, _slot, done) => echoConnection(conn, done));
        break;
      case "discard":
        serve(name, DISCARD_PORT, (conn, _slot, done) => discardConnection(conn, () => done()));
        break;
      case "chargen":
        serve(name, CHARGEN_PORT, (conn, _slot, done) => settle(serveChargen(conn), done));
        break;
      case "http": {
        const site = statusSite(() => ({ ...stack.stats(), services: running.stats() }));
        const wallClock = options.wallClock ?? Date.now;
        serve(
          name,
          HTTP_PORT,
          (conn, slot, done) =>
            settle(serveHttp(conn, site, { slot, wallClock, counters: httpCounters }), done),
        );
        break;
      }
    }
  }
  return running;
}

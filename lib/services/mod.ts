/**
 * The stack's built-in services, started on the public API like any application would:
 * echo (TCP and UDP 7, RFC 862), discard (TCP 9, RFC 863), chargen (TCP 19, RFC 864), http (TCP 80).
 *
 * @module
 */

import type { Stack } from "../stack/stack.ts";
import type { TcpConn, TcpConnListener } from "../stack/tcp_conn.ts";
import { bindUdpEcho, ECHO_PORT } from "./udp_echo.ts";
import { serveEcho } from "./echo.ts";
import { DISCARD_PORT, serveDiscard } from "./discard.ts";
import { CHARGEN_PORT, serveChargen } from "./chargen.ts";
import { HTTP_PORT, serveHttp } from "./http.ts";
import { statusSite } from "./status_site.ts";
import { logger } from "../log.ts";

/** The services the stack can run, in the order of docs/cli.md. */
export const SERVICE_NAMES = ["echo", "discard", "chargen", "http"] as const;

/** One service name. */
export type ServiceName = typeof SERVICE_NAMES[number];

const log = logger("services");

/** Running services; {@link RunningServices.close} stops listening and waits for open connections. */
export interface RunningServices {
  /** Stops accepting and resolves when every connection's handler has finished. */
  close(): Promise<void>;
}

/** Starts `names` on `stack`. */
export function startServices(stack: Stack, names: readonly ServiceName[]): RunningServices {
  const listeners: TcpConnListener[] = [];
  const active = new Set<Promise<unknown>>();
  const serve = (port: number, handler: (conn: TcpConn) => Promise<unknown>) => {
    const listener = stack.listen({ port });
    listeners.push(listener);
    (async () => {
      for await (const conn of listener) {
        const task = handler(conn).catch((error) =>
          log.debug("service on port {port}: {error}", { port, error })
        );
        active.add(task);
        task.finally(() => active.delete(task));
      }
    })().catch((error) => log.error("service on port {port} stopped: {error}", { port, error }));
  };
  for (const name of names) {
    switch (name) {
      case "echo":
        bindUdpEcho(stack.udp, () => stack.address.address, ECHO_PORT);
        serve(ECHO_PORT, serveEcho);
        break;
      case "discard":
        serve(DISCARD_PORT, serveDiscard);
        break;
      case "chargen":
        serve(CHARGEN_PORT, serveChargen);
        break;
      case "http": {
        const site = statusSite(() => stack.stats());
        serve(HTTP_PORT, (conn) => serveHttp(conn, site));
        break;
      }
    }
  }
  return {
    async close() {
      for (const listener of listeners) listener.close();
      if (names.includes("echo")) stack.udp.unbind(ECHO_PORT);
      await Promise.allSettled([...active]);
    },
  };
}

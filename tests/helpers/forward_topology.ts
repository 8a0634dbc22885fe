/**
 * The three namespaces of forwarding mode: `run`, where netstack runs (its relaying sockets live there);
 * `app`, the confined application's namespace, which gets only netstack's TUN device (created there by
 * `--netns`); and `server`, joined to `run` by a veth pair, where the servers the application reaches
 * live. Nothing routes between `app` and `server`: traffic gets across only through netstack's relay.
 *
 * @module
 */

import { type Netns, runOk, withNetns } from "./netns.ts";

/** The namespaces of one forwarding test, and the veth addresses between `run` and `server`. */
export interface ForwardTopology {
  /** Where netstack runs. */
  run: Netns;
  /** The confined application's namespace (netstack's TUN device only). */
  app: Netns;
  /** The server side, behind a veth from `run`. */
  server: Netns;
  /** `run`'s address on the veth: what servers see as the client. */
  runAddress: string;
  /** `server`'s address on the veth: what the application connects to. */
  serverAddress: string;
}

/** The veth addresses (a /24 of their own, far from the stack's 10.0.0.0/24). */
const RUN_ADDRESS = "10.77.0.1";
const SERVER_ADDRESS = "10.77.0.2";

/** Creates the three namespaces and the veth, runs `fn`, and deletes them all whatever happens. */
export function withForwardTopology<T>(prefix: string, fn: (t: ForwardTopology) => Promise<T>): Promise<T> {
  return withNetns(
    `${prefix}-run`,
    (run) =>
      withNetns(`${prefix}-app`, (app) =>
        withNetns(`${prefix}-srv`, async (server) => {
          await runOk([
            "ip",
            "link",
            "add",
            "fwr0",
            "netns",
            run.name,
            "type",
            "veth",
            "peer",
            "name",
            "fws0",
            "netns",
            server.name,
          ]);
          await run.exec(["ip", "addr", "add", `${RUN_ADDRESS}/24`, "dev", "fwr0"]);
          await server.exec(["ip", "addr", "add", `${SERVER_ADDRESS}/24`, "dev", "fws0"]);
          await run.exec(["ip", "link", "set", "fwr0", "up"]);
          await server.exec(["ip", "link", "set", "fws0", "up"]);
          return await fn({ run, app, server, runAddress: RUN_ADDRESS, serverAddress: SERVER_ADDRESS });
        })),
  );
}

/**
 * Errors the library throws that applications may catch and act on. The command line turns them into one
 * line on stderr and an exit code, never a stack trace.
 *
 * @module
 */

import type { TcpCloseError } from "./tcp/state.ts";

/** A failure at run time the user can act on (no privileges, device missing): exit code 1 in the CLI. */
export class RuntimeError extends Error {
  /** Creates a runtime error; `message` names the cause and, where there is one, the remedy. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
  }
}

/** The typed error for how a connection ended abnormally, as `Deno.connect`'s connections report it. */
export function closeError(error: TcpCloseError | null): Error {
  switch (error) {
    case "refused":
      return new Deno.errors.ConnectionRefused("connection refused (the peer answered with a reset)");
    case "timeout":
      return new Deno.errors.TimedOut("connection timed out (no answer after the last retransmission)");
    case "reset":
      return new Deno.errors.ConnectionReset("connection reset by peer");
    case "aborted":
      return new Deno.errors.ConnectionAborted("connection aborted");
    default:
      return new Deno.errors.NotConnected("the connection is closed");
  }
}

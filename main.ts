/**
 * The `netstack` program: `netstack stack` runs the user-space stack, `netstack trace` the XDP tracer.
 * Usage mistakes exit 2 and runtime failures exit 1, each with one line on stderr and no stack trace.
 *
 * @module
 */

import { RuntimeError, UsageError } from "./lib/cli/errors.ts";
import { runStack } from "./lib/cli/stack_cmd.ts";
import { SystemError } from "./lib/ffi/errno.ts";
import { VERSION } from "./lib/version.ts";

const HELP = `Usage: netstack <command> [options]

Commands:
  stack    run a user-space TCP/IP stack on a TUN device
  trace    trace packets on interfaces with XDP (and TC egress)

Options:
  -h, --help     show this help (each command has its own --help)
  -V, --version  print the version

Both commands need root (or CAP_NET_ADMIN, and CAP_BPF for trace).
`;

/** Runs the program with `args` and resolves to the exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "stack":
        return await runStack(rest);
      case "trace":
        // Loaded on demand: the stack never pays for the tracer's libbpf bindings and embedded object.
        return await (await import("./lib/cli/trace_cmd.ts")).runTrace(rest);
      case "-V":
      case "--version":
        console.log(`netstack ${VERSION}`);
        return 0;
      case "-h":
      case "--help":
        console.log(HELP);
        return 0;
      case undefined:
        throw new UsageError("", "a command is needed: stack or trace");
      default:
        throw new UsageError("", `unknown command '${command}'; the commands are stack and trace`);
    }
  } catch (error) {
    return report(error);
  }
}

function report(error: unknown): number {
  if (error instanceof UsageError) {
    const name = error.command ? `netstack ${error.command}` : "netstack";
    console.error(`${name}: ${error.message}\nTry '${name} --help' for more information.`);
    return 2;
  }
  if (error instanceof RuntimeError || error instanceof SystemError) {
    console.error(`netstack: ${error.message}`);
    return 1;
  }
  // Not a user mistake: a bug. Say so, with the stack trace that helps report it.
  console.error(
    `netstack: internal error: ${error instanceof Error ? (error.stack ?? error.message) : error}`,
  );
  return 1;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  // A pending non-blocking FFI call would keep the process alive: exit explicitly after cleanup.
  Deno.exit(code);
}

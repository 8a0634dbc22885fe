/**
 * Starts `tests/helpers/ethernet_entry.ts` inside a namespace (with `ip netns exec`, see DENO-FFI-NOTES)
 * and collects its stderr (logs, the `ready` line) and stdout (the counters printed at exit).
 *
 * @module
 */

import type { Netns } from "./netns.ts";
import { REPO, StackProcess } from "./stack_process.ts";

/** A running entry process. */
export interface EthernetProcess {
  /** The process, with `waitFor` on stderr and `stop`. */
  process: StackProcess;
  /** Resolves with everything written to stdout, once the process exits. */
  stdout: Promise<string>;
}

/** Spawns the entry script with `args` inside `ns` (not waiting for `ready`). */
export function spawnEthernetEntry(ns: Netns, args: string[]): EthernetProcess {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns.name,
      Deno.execPath(),
      "run",
      "--allow-all",
      "--config",
      `${REPO}deno.json`,
      `${REPO}tests/helpers/ethernet_entry.ts`,
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new Response(child.stdout).text();
  return { process: new StackProcess(child), stdout };
}

/** Spawns the entry script and waits for its `ready` line; kills it if that does not come. */
export async function startEthernetEntry(
  ns: Netns,
  args: string[],
  timeoutMs = 20_000,
): Promise<EthernetProcess> {
  const entry = spawnEthernetEntry(ns, args);
  try {
    await entry.process.waitFor("ready", timeoutMs);
  } catch (error) {
    await entry.process.stop("SIGKILL");
    throw error;
  }
  return entry;
}

/**
 * The "MIP over pcap" topology of the Ethernet tests: a veth pair my0 (the stack's side, in one
 * namespace) and my1 (the host's side, 192.168.77.1/24, in another), with dnsmasq serving DHCP on my1.
 * Everything is created for one test and deleted afterwards; dnsmasq is stopped by its PID.
 *
 * my1 has TX checksum offload turned off (`ethtool -K my1 tx off`): a veth hands its peer packets with
 * CHECKSUM_PARTIAL, whose UDP/TCP checksums libpcap delivers unfinished, so the stack would rightly drop
 * them as bad-checksum.
 *
 * @module
 */

import { Netns, runOk } from "./netns.ts";

/** Polls `condition` every 50 ms until it holds, or throws after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The two namespaces and dnsmasq's log. */
export interface MipTopology {
  /** Where the stack runs (my0). */
  stackNs: Netns;
  /** The host (my1, 192.168.77.1/24, dnsmasq). */
  hostNs: Netns;
  /** Everything dnsmasq logged so far. */
  dnsmasqLog(): string;
}

/** Builds the topology with dnsmasq started with `dnsmasqArgs`, runs `fn`, and tears everything down. */
export async function withMipTopology(
  options: { dnsmasqArgs: string[]; extraHostAddresses?: string[] },
  fn: (topology: MipTopology) => Promise<void>,
): Promise<void> {
  const stackNs = await Netns.create("ns-mip");
  let hostNs: Netns | null = null;
  let dnsmasq: Deno.ChildProcess | null = null;
  let dnsmasqDone: Promise<void> = Promise.resolve();
  const tmp = await Deno.makeTempDir({ prefix: "netstack-dnsmasq-" });
  try {
    hostNs = await Netns.create("ns-mip-host");
    await runOk([
      "ip",
      "link",
      "add",
      "my0",
      "netns",
      stackNs.name,
      "type",
      "veth",
      "peer",
      "name",
      "my1",
      "netns",
      hostNs.name,
    ]);
    await stackNs.exec(["ip", "link", "set", "my0", "up"]);
    for (const address of ["192.168.77.1/24", ...(options.extraHostAddresses ?? [])]) {
      await hostNs.exec(["ip", "addr", "add", address, "dev", "my1"]);
    }
    await hostNs.exec(["ip", "link", "set", "my1", "up"]);
    await hostNs.exec(["ethtool", "-K", "my1", "tx", "off"]);
    dnsmasq = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        hostNs.name,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--interface=my1",
        "--bind-interfaces",
        "--except-interface=lo",
        "--port=0",
        "--log-facility=-",
        "--log-dhcp",
        `--dhcp-leasefile=${tmp}/leases`,
        `--pid-file=${tmp}/pid`,
        ...options.dnsmasqArgs,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const stderr = dnsmasq.stderr;
    dnsmasqDone = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stderr) log += decoder.decode(chunk, { stream: true });
    })();
    await waitUntil(() => log.includes("DHCP, IP range"), "dnsmasq to start");
    await fn({ stackNs, hostNs, dnsmasqLog: () => log });
  } finally {
    if (dnsmasq !== null) {
      // `ip netns exec` execs dnsmasq, so this PID is dnsmasq's own.
      try {
        dnsmasq.kill("SIGTERM");
      } catch { /* gone */ }
      await dnsmasq.status;
      await dnsmasqDone;
    }
    await stackNs.delete();
    await hostNs?.delete();
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Escapes a literal for use in a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The counters the stack logs at shutdown (`stats {…}` on stderr). */
export function loggedStats(stderr: string): Record<string, Record<string, unknown>> {
  const match = /stats (\{.*\})\s*$/m.exec(stderr);
  if (match === null) throw new Error(`the stack logged no stats at shutdown:\n${stderr}`);
  return JSON.parse(match[1]);
}

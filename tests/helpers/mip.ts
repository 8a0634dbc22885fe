/**
 * The "MIP over pcap" topology of the Ethernet tests: a veth pair my0 (the stack's side) and my1 (the
 * host's side, 192.168.77.1/24 by default), in two namespaces or both in one, with dnsmasq serving DHCP on
 * my1. Everything is created for one test and deleted afterwards; dnsmasq is stopped by its PID.
 *
 * By default my1 has TX checksum offload turned off (`ethtool -K my1 tx off`): a veth hands its peer
 * packets with CHECKSUM_PARTIAL, whose UDP/TCP checksums libpcap delivers unfinished. The packet backend's
 * tests keep the offload on (`hostTxOffload`), as the recipe does.
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

/** The namespaces and dnsmasq's log. */
export interface MipTopology {
  /** Where the stack runs (my0). */
  stackNs: Netns;
  /** The host (my1 with the subnet's .1, dnsmasq); the same as `stackNs` in the one-namespace layout. */
  hostNs: Netns;
  /** Everything dnsmasq logged so far. */
  dnsmasqLog(): string;
}

/** How {@link withMipTopology} builds the pair. */
export interface MipOptions {
  /** dnsmasq's options beyond the fixed ones (the range, lease options). */
  dnsmasqArgs: string[];
  /** More addresses for my1. */
  extraHostAddresses?: string[];
  /**
   * `two-namespaces` (default): my0 in one namespace, my1 in another (the README's safer recipe).
   * `one-namespace`: both ends in one namespace, as the recipe is written for a machine's own namespace.
   */
  layout?: "two-namespaces" | "one-namespace";
  /** First three octets of the /24 on my1 (my1 gets .1); default `192.168.77`. */
  subnet?: string;
  /**
   * Leave my1's transmit checksum offload on (the veth default: the recipe's point). Default false:
   * `ethtool -K my1 tx off`, which the libpcap backend needs.
   */
  hostTxOffload?: boolean;
}

/** A dnsmasq serving DHCP on one interface of a namespace, stopped by its own PID. */
export interface Dnsmasq {
  /** Everything it logged so far. */
  log(): string;
  /** Stops it and removes its files. */
  stop(): Promise<void>;
}

/** Starts dnsmasq (DHCP only, logging to stderr) on `iface` inside `ns` and waits until it serves. */
export async function startDnsmasq(ns: Netns, iface: string, args: string[]): Promise<Dnsmasq> {
  const tmp = await Deno.makeTempDir({ prefix: "netstack-dnsmasq-" });
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns.name,
      "dnsmasq",
      "--no-daemon",
      "--conf-file=/dev/null",
      `--interface=${iface}`,
      "--bind-interfaces",
      "--except-interface=lo",
      "--port=0",
      "--log-facility=-",
      "--log-dhcp",
      `--dhcp-leasefile=${tmp}/leases`,
      `--pid-file=${tmp}/pid`,
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const stderr = child.stderr;
  const done = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stderr) log += decoder.decode(chunk, { stream: true });
  })();
  const stop = async () => {
    // `ip netns exec` execs dnsmasq, so this PID is dnsmasq's own.
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await done;
    await Deno.remove(tmp, { recursive: true });
  };
  try {
    await waitUntil(() => log.includes("DHCP, IP range"), "dnsmasq to start");
  } catch (error) {
    await stop();
    throw error;
  }
  return { log: () => log, stop };
}

/** Builds the topology with dnsmasq started with `dnsmasqArgs`, runs `fn`, and tears everything down. */
export async function withMipTopology(
  options: MipOptions,
  fn: (topology: MipTopology) => Promise<void>,
): Promise<void> {
  const subnet = options.subnet ?? "192.168.77";
  const oneNamespace = options.layout === "one-namespace";
  const stackNs = await Netns.create("ns-mip");
  let hostNs: Netns | null = null;
  let dnsmasq: Dnsmasq | null = null;
  try {
    hostNs = oneNamespace ? stackNs : await Netns.create("ns-mip-host");
    if (oneNamespace) {
      // The recipe as written: ip link add my0 type veth peer name my1 (both ends where it runs).
      await stackNs.exec(["ip", "link", "add", "my0", "type", "veth", "peer", "name", "my1"]);
    } else {
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
    }
    await stackNs.exec(["ip", "link", "set", "my0", "up"]);
    await hostNs.exec(["ip", "link", "set", "my1", "up"]);
    for (const address of [`${subnet}.1/24`, ...(options.extraHostAddresses ?? [])]) {
      await hostNs.exec(["ip", "addr", "add", address, "dev", "my1"]);
    }
    if (!options.hostTxOffload) await hostNs.exec(["ethtool", "-K", "my1", "tx", "off"]);
    dnsmasq = await startDnsmasq(hostNs, "my1", options.dnsmasqArgs);
    await fn({ stackNs, hostNs, dnsmasqLog: dnsmasq.log });
  } finally {
    await dnsmasq?.stop();
    await stackNs.delete();
    if (hostNs !== null && hostNs !== stackNs) await hostNs.delete();
  }
}

/** The interface's promiscuity count (`ip -d link show`), inside `ns`. */
export async function promiscuity(ns: Netns, iface: string): Promise<number> {
  const out = await ns.exec(["ip", "-d", "link", "show", iface]);
  const match = /promiscuity (\d+)/.exec(out);
  if (match === null) throw new Error(`no promiscuity in: ${out}`);
  return Number(match[1]);
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

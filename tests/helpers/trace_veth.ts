/**
 * A veth pair between two fresh namespaces for netstack trace's privileged tests, and a way to run the
 * tracer inside one of them as a subprocess. Never touches the machine's own interfaces.
 *
 * Layout: namespace `peer` holds `va` 10.99.0.1/24, namespace `local` holds `vb` 10.99.0.2/24. IPv6 is
 * disabled and the neighbours are static, so the only packets on the link are the ones a test sends.
 *
 * @module
 */

import { type CommandResult, Netns, runOk } from "./netns.ts";
import { netstackCommand } from "./stack_process.ts";

export const PEER_ADDRESS = "10.99.0.1";
export const LOCAL_ADDRESS = "10.99.0.2";
const QUERY = new URL("./trace_query.ts", import.meta.url).pathname;

/** Two namespaces joined by a veth pair. */
export interface VethPair {
  peer: Netns;
  local: Netns;
}

async function macOf(ns: Netns, name: string): Promise<string> {
  const text = await ns.exec(["cat", `/sys/class/net/${name}/address`]);
  return text.trim();
}

/** Creates the pair, runs `fn`, deletes both namespaces whatever happens. */
export async function withVethPair<T>(fn: (pair: VethPair) => Promise<T>): Promise<T> {
  const peer = await Netns.create("ns-trace");
  let local: Netns | undefined;
  try {
    local = await Netns.create("ns-trace");
    for (const ns of [peer, local]) {
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    await runOk([
      "ip",
      "link",
      "add",
      "va",
      "netns",
      peer.name,
      "type",
      "veth",
      "peer",
      "name",
      "vb",
      "netns",
      local.name,
    ]);
    await peer.exec(["ip", "addr", "add", `${PEER_ADDRESS}/24`, "dev", "va"]);
    await local.exec(["ip", "addr", "add", `${LOCAL_ADDRESS}/24`, "dev", "vb"]);
    await peer.exec(["ip", "link", "set", "va", "up"]);
    await local.exec(["ip", "link", "set", "vb", "up"]);
    const [macA, macB] = [await macOf(peer, "va"), await macOf(local, "vb")];
    await peer.exec([
      "ip",
      "neigh",
      "replace",
      LOCAL_ADDRESS,
      "lladdr",
      macB,
      "dev",
      "va",
      "nud",
      "permanent",
    ]);
    await local.exec([
      "ip",
      "neigh",
      "replace",
      PEER_ADDRESS,
      "lladdr",
      macA,
      "dev",
      "vb",
      "nud",
      "permanent",
    ]);
    return await fn({ peer, local });
  } finally {
    await local?.delete();
    await peer.delete();
  }
}

/** A tracer process running inside a namespace. */
export class TracerProcess {
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #done: Promise<void>;
  readonly #killTimer: ReturnType<typeof setTimeout>;

  private constructor(child: Deno.ChildProcess, limitMs: number) {
    this.#child = child;
    const collect = async (stream: ReadableStream<Uint8Array>, into: (text: string) => void) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) into(decoder.decode(chunk, { stream: true }));
    };
    this.#done = Promise.all([
      collect(child.stdout, (t) => this.#stdout += t),
      collect(child.stderr, (t) => this.#stderr += t),
    ]).then(() => {});
    // Hard bound on the process's life, whatever the test does.
    this.#killTimer = setTimeout(() => this.kill("SIGKILL"), limitMs);
  }

  /** Starts `netstack trace ARGS` in `ns` and waits until every hook is attached (`tracing` lines). */
  static async start(ns: Netns, args: string[], hooks = 1, limitMs = 20_000): Promise<TracerProcess> {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, ...netstackCommand("trace", ...args)],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const tracer = new TracerProcess(child, limitMs);
    const deadline = Date.now() + 15_000;
    while ((tracer.stderr.match(/^tracing /gm) ?? []).length < hooks) {
      if (Date.now() > deadline) {
        tracer.kill("SIGKILL");
        await tracer.wait();
        throw new Error(`tracer did not attach in time; stderr: ${tracer.stderr}`);
      }
      const status = await Promise.race([child.status, new Promise((r) => setTimeout(r, 50, null))]);
      if (status !== null) throw new Error(`tracer exited early: ${tracer.stderr}`);
    }
    return tracer;
  }

  get pid(): number {
    return this.#child.pid;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Sends a signal to the tracer (the process `ip netns exec` became). */
  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Waits for the exit; returns the exit code (or 128+signal). */
  async wait(): Promise<number> {
    const status = await this.#child.status;
    await this.#done;
    clearTimeout(this.#killTimer);
    return status.signal ? 128 : status.code;
  }
}

/** Runs the tracer to completion (for error cases); `wrapper` goes before deno, e.g. setpriv. */
export function runTracer(ns: Netns, args: string[], wrapper: string[] = []): Promise<CommandResult> {
  return ns.run([...wrapper, ...netstackCommand("trace", ...args)], { timeoutMs: 30_000 });
}

/** What is attached to an interface: `{xdp, tcxEgress, tcxIngress}`. */
export async function attachedPrograms(
  ns: Netns,
  iface: string,
): Promise<{ xdp: boolean; tcxEgress: number }> {
  return JSON.parse(await ns.exec([Deno.execPath(), "run", "-A", QUERY, iface]));
}

/** Sends UDP datagrams from `sport` (python3, bounded). */
export async function sendUdp(
  ns: Netns,
  dst: string,
  sport: number,
  dport: number,
  payloads: string[],
): Promise<void> {
  const script = `import socket,sys,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.bind(("0.0.0.0",${sport}))
for p in ${JSON.stringify(payloads)}:
    s.sendto(p.encode(),("${dst}",${dport})); time.sleep(0.02)
`;
  await ns.exec(["/usr/bin/python3", "-c", script], { timeoutMs: 10_000 });
}

/** Starts a python3 script in `ns` in the background, killed after `limitMs`; await `.done` for its end. */
export function spawnPython(
  ns: Netns,
  script: string,
  limitMs = 10_000,
): { done: Promise<Deno.CommandStatus> } {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns.name, "/usr/bin/python3", "-c", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, limitMs);
  return { done: child.status.finally(() => clearTimeout(timer)) };
}

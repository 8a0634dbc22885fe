/**
 * Runs `netstack stack` as a subprocess inside a test namespace (FFI `setns` would move only some of
 * Deno's threads, so the whole process is started inside with `ip netns exec`).
 *
 * @module
 */

import type { Netns } from "./netns.ts";

/** The repository's root directory. */
export const REPO = new URL("../../", import.meta.url).pathname;

/** The command that runs `main.ts` with the repository's configuration. */
export function netstackCommand(...args: string[]): string[] {
  return [Deno.execPath(), "run", "--allow-all", "--config", `${REPO}deno.json`, `${REPO}main.ts`, ...args];
}

/** A running stack process. */
export class StackProcess {
  readonly #child: Deno.ChildProcess;
  #stderr = "";
  readonly #done: Promise<void>;

  /** Wraps a spawned child and starts collecting its stderr. */
  constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#done = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) this.#stderr += decoder.decode(chunk, { stream: true });
    })();
  }

  /** Everything the process wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** The process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Waits until stderr contains `text`; throws with the log after `timeoutMs` or if the process exits. */
  async waitFor(text: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    this.#child.status.then(() => (exited = true));
    while (!this.#stderr.includes(text)) {
      if (exited) throw new Error(`the stack exited before logging '${text}':\n${this.#stderr}`);
      if (Date.now() > deadline) {
        throw new Error(`the stack did not log '${text}' in ${timeoutMs} ms:\n${this.#stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after 10 s); returns the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    try {
      this.#child.kill(signal);
    } catch { /* already exited */ }
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    const status = await this.#child.status;
    clearTimeout(timer);
    await this.#done;
    return status.code;
  }

  /** Waits for the process to exit by itself; returns the exit code. */
  async exited(): Promise<number> {
    const status = await this.#child.status;
    await this.#done;
    return status.code;
  }
}

/** The `ip` arguments that run `netstack stack ARGS` inside `ns`. */
function stackInNetns(ns: Netns, args: string[]): string[] {
  return ["netns", "exec", ns.name, ...netstackCommand("stack", ...args)];
}

/** Starts `netstack stack ARGS` inside `ns` without waiting for anything. */
export function spawnStack(ns: Netns, args: string[] = []): StackProcess {
  const child = new Deno.Command("ip", {
    args: stackInNetns(ns, args),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return new StackProcess(child);
}

/** Starts `netstack stack ARGS` inside `ns` and waits for its `ready` line. */
export async function startStack(ns: Netns, args: string[] = [], timeoutMs = 20_000): Promise<StackProcess> {
  const stack = spawnStack(ns, args);
  try {
    await stack.waitFor("ready", timeoutMs);
  } catch (error) {
    await stack.stop("SIGKILL");
    throw error;
  }
  return stack;
}

/** The command that runs `tests/helpers/tcp_peer.ts ARGS` with the repository's configuration. */
function tcpPeerCommand(...args: (string | number)[]): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--config",
    `${REPO}deno.json`,
    `${REPO}tests/helpers/tcp_peer.ts`,
    ...args.map(String),
  ];
}

/**
 * Runs `tests/helpers/tcp_peer.ts ARGS` (the kernel's TCP through Deno sockets) inside `ns` and returns
 * the JSON object of its last output line.
 */
export async function kernelPeer(
  ns: Netns,
  args: (string | number)[],
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const out = await ns.exec(tcpPeerCommand(...args), { timeoutMs });
  const lines = out.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

/** A kernel listener from `tcp_peer.ts serve`, running inside a namespace. */
export interface KernelListener {
  /** Resolves to the JSON object the peer printed at the end (it fails the test when the peer failed). */
  result: Promise<Record<string, unknown>>;
  /** Kills the peer (after a test failure). */
  kill(): void;
}

/**
 * Starts `tcp_peer.ts serve HOST PORT BYTES` inside `ns` (accept one connection, send BYTES, read to
 * the end; HOST `0.0.0.0` unless given, `::` for IPv6) and waits until it listens.
 */
export async function serveKernelPeer(
  ns: Netns,
  port: number,
  bytes: number,
  host = "0.0.0.0",
): Promise<KernelListener> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns.name, ...tcpPeerCommand("serve", host, port, bytes)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  const done = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) text += chunk;
    return await child.status;
  })();
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  };
  const deadline = Date.now() + 20_000;
  while (!text.includes("listening")) {
    if (Date.now() > deadline) {
      kill();
      throw new Error("the kernel listener did not start");
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const result = done.then((status) => {
    if (status.code !== 0) throw new Error(`the kernel peer exited ${status.code}: ${text}`);
    return JSON.parse(text.trim().split("\n").pop()!) as Record<string, unknown>;
  });
  return { result, kill };
}

/** Runs `netstack stack ARGS` inside `ns` with `input` on stdin, to its end (killed after `timeoutMs`). */
export async function runStackWithInput(
  ns: Netns,
  args: string[],
  input: Uint8Array,
  timeoutMs = 60_000,
): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const child = new Deno.Command("ip", {
    args: stackInNetns(ns, args),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  try {
    const writer = child.stdin.getWriter();
    await writer.write(input);
    await writer.close();
    const output = await child.output();
    return { code: output.code, stdout: output.stdout, stderr: new TextDecoder().decode(output.stderr) };
  } finally {
    clearTimeout(killer);
  }
}

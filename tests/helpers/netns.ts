/**
 * Network namespaces for privileged tests: each test makes its own, runs everything that touches the
 * network inside it, and deletes it afterwards, also when the test fails. No default routes are added.
 *
 * @module
 */

const decoder = new TextDecoder();

/** The result of a finished command. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Standard output as text. */
  stdout: string;
  /** Standard error as text. */
  stderr: string;
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its output. */
export async function run(
  cmd: string[],
  options: { stdin?: Uint8Array; timeoutMs?: number } = {},
): Promise<CommandResult> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin) {
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin);
    await writer.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs ?? 30_000);
  try {
    const output = await child.output();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command and throws with its stderr when it fails. */
export async function runOk(
  cmd: string[],
  options: { stdin?: Uint8Array; timeoutMs?: number } = {},
): Promise<string> {
  const result = await run(cmd, options);
  if (result.code !== 0) throw new Error(`${cmd.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

/** A network namespace created for one test. */
export class Netns {
  /** The namespace's name. */
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Creates a namespace named `<prefix>-<random>` with its loopback up. */
  static async create(prefix: string): Promise<Netns> {
    const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
    await runOk(["ip", "netns", "add", name]);
    const ns = new Netns(name);
    await ns.exec(["ip", "link", "set", "lo", "up"]);
    return ns;
  }

  /** The command prefix that runs a program inside the namespace. */
  prefix(): string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /** Runs a command inside the namespace and returns its output; throws when it fails. */
  exec(cmd: string[], options: { stdin?: Uint8Array; timeoutMs?: number } = {}): Promise<string> {
    return runOk([...this.prefix(), ...cmd], options);
  }

  /** Runs a command inside the namespace and returns its result whatever the exit code. */
  run(cmd: string[], options: { stdin?: Uint8Array; timeoutMs?: number } = {}): Promise<CommandResult> {
    return run([...this.prefix(), ...cmd], options);
  }

  /** Deletes the namespace (processes still inside lose their network). */
  async delete(): Promise<void> {
    await run(["ip", "netns", "delete", this.name]);
  }
}

/** Creates a namespace, runs `fn` with it, and deletes it whatever happens. */
export async function withNetns<T>(prefix: string, fn: (ns: Netns) => Promise<T>): Promise<T> {
  const ns = await Netns.create(prefix);
  try {
    return await fn(ns);
  } finally {
    await ns.delete();
  }
}

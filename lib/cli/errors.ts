/**
 * Errors the command line turns into one line on stderr and an exit code, never a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

export { RuntimeError } from "../errors.ts";

/** A mistake in how the command was called: exit code 2, with a hint to `--help`. */
export class UsageError extends Error {
  /** The subcommand whose `--help` the hint names, e.g. `stack`. */
  readonly command: string;
  /** Creates a usage error for `command`. */
  constructor(command: string, message: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Parses a whole decimal number within bounds, or throws a {@link UsageError} naming the flag. */
export function parseIntegerFlag(
  command: string,
  flag: string,
  text: string,
  min: number,
  max: number,
): number {
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`;
  // A negative number is a number out of range, not a malformed one.
  if (/^-\d+$/.test(text)) throw new UsageError(command, `--${flag} must be ${range}, got ${text}`);
  if (!/^\d+$/.test(text)) throw new UsageError(command, `--${flag} needs a whole number, got '${text}'`);
  const value = Number(text);
  if (value < min || value > max) {
    throw new UsageError(command, `--${flag} must be ${range}, got ${value}`);
  }
  return value;
}

/**
 * Checks `args` against `options` the way the rest of the command line words its mistakes (lower case, one
 * line, naming the flag), and returns them with a negative number after a flag joined to it (`-c -5` →
 * `--count=-5`), so that the flag's own check can say what is wrong with the value rather than
 * `node:util` calling the argument ambiguous.
 */
function normalizeArgs(
  command: string,
  args: string[],
  options: ParseArgsOptionsConfig,
  allowPositionals: boolean,
): string[] {
  const out: string[] = [];
  const shorts = new Map(
    Object.entries(options).filter(([, o]) => o.short !== undefined).map(([name, o]) => [o.short!, name]),
  );
  const takeValue = (name: string, at: number): string => {
    const next = args[at];
    if (next === undefined) throw new UsageError(command, `--${name} needs a value`);
    if (next.startsWith("-") && next.length > 1 && !/^-\d/.test(next)) {
      throw new UsageError(
        command,
        `--${name} needs a value, got the option '${next}' (write --${name}=${next} for a value starting with '-')`,
      );
    }
    return next;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--" || !arg.startsWith("-") || arg === "-") {
      if (allowPositionals && arg === "--") {
        out.push(...args.slice(i)); // "--" ends the flags
        break;
      }
      if (allowPositionals) {
        out.push(arg); // a word (e.g. of a filter expression); flags may follow
        continue;
      }
      const shown = arg === "--" ? args[i + 1] ?? "--" : arg;
      throw new UsageError(command, `unexpected argument '${shown}': this command takes options only`);
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const option = options[name];
      if (option === undefined) throw new UsageError(command, `unknown option '--${name}'`);
      if (option.type === "boolean") {
        if (eq >= 0) throw new UsageError(command, `--${name} takes no value`);
        out.push(arg);
      } else if (eq >= 0) {
        out.push(arg);
      } else {
        out.push(`--${name}=${takeValue(name, ++i)}`);
      }
      continue;
    }
    // One or more short flags: "-q", "-qv", "-c5", "-c 5".
    for (let j = 1; j < arg.length; j++) {
      const name = shorts.get(arg[j]);
      if (name === undefined) throw new UsageError(command, `unknown option '-${arg[j]}'`);
      if (options[name].type === "boolean") {
        out.push(`--${name}`);
        continue;
      }
      out.push(`--${name}=${j + 1 < arg.length ? arg.slice(j + 1) : takeValue(name, ++i)}`);
      break;
    }
  }
  return out;
}

/**
 * Parses `args` strictly (no unknown flags; positionals only when allowed) against `options` with
 * `node:util`'s `parseArgs`, after checking them with the project's wording: every mistake is a
 * {@link UsageError} of `command`.
 */
export function parseFlags<const T extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: T,
) {
  const normalized = normalizeArgs(command, args, options, false);
  try {
    return parseArgs({ args: normalized, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // Not expected after normalizeArgs; keep the project's style (lower case, one line) all the same.
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
    throw new UsageError(command, message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, ""));
  }
}

/**
 * Like {@link parseFlags}, but words that are not flags are collected (in order) instead of refused:
 * `tcpdump`'s trailing expression. Flags may come before or after them; `--` ends the flags.
 */
export function parseFlagsAndWords<const T extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: T,
) {
  const normalized = normalizeArgs(command, args, options, true);
  try {
    const { values, positionals } = parseArgs({
      args: normalized,
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values, words: positionals };
  } catch (error) {
    // Not expected after normalizeArgs; keep the project's style (lower case, one line) all the same.
    const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
    throw new UsageError(command, message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, ""));
  }
}

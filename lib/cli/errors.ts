/**
 * Errors the command line turns into one line on stderr and an exit code, never a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

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

/** A failure at run time the user can act on (no privileges, device missing): exit code 1. */
export class RuntimeError extends Error {
  /** Creates a runtime error; `message` names the cause and, where there is one, the remedy. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RuntimeError";
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
  if (!/^\d+$/.test(text)) throw new UsageError(command, `--${flag} needs a whole number, got '${text}'`);
  const value = Number(text);
  if (value < min || value > max) {
    throw new UsageError(command, `--${flag} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/**
 * Parses `args` strictly (no positionals, no unknown flags) against `options` with `node:util`'s
 * `parseArgs`, turning its complaints into a {@link UsageError} of `command` with the first line of the
 * message.
 */
export function parseFlags<const T extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(command, (error instanceof Error ? error.message : String(error)).split("\n")[0]);
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
  try {
    const { values, positionals } = parseArgs({ args, options, strict: true, allowPositionals: true });
    return { values, words: positionals };
  } catch (error) {
    throw new UsageError(command, (error instanceof Error ? error.message : String(error)).split("\n")[0]);
  }
}

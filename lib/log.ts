/**
 * Logging through LogTape: one category per layer under `netstack`, written to stderr as text lines.
 *
 * Library code only calls {@link logger}; the program (or an embedding application) decides where logs go
 * with {@link configureLogging}. Unconfigured, LogTape discards everything, which is right for a library.
 *
 * @module
 */

import { configure, getLogger, type Logger, type LogLevel, reset } from "@logtape/logtape";

/** The levels the CLI accepts for `--log-level`. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;

/** One of {@link LOG_LEVELS}. */
export type CliLogLevel = typeof LOG_LEVELS[number];

/** The logger of one layer, e.g. `logger("tun")` → category `["netstack", "tun"]`. */
export function logger(layer: string): Logger {
  return getLogger(["netstack", layer]);
}

const encoder = new TextEncoder();

function formatValue(value: unknown): string {
  if (typeof value === "string") return /\s/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return value.message;
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

/** Sends records at `level` and above to stderr: `time level layer: message key=value…`. */
export async function configureLogging(level: CliLogLevel): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      stderr(record) {
        const time = new Date(record.timestamp).toISOString().slice(11, 23);
        let message = "";
        for (let i = 0; i < record.message.length; i++) {
          message += i % 2 === 0 ? String(record.message[i]) : formatValue(record.message[i]);
        }
        const layer = record.category.slice(1).join(".") || "netstack";
        const line = `${time} ${record.level.toUpperCase().padEnd(7)} ${layer}: ${message}\n`;
        Deno.stderr.writeSync(encoder.encode(line));
      },
    },
    loggers: [
      { category: ["logtape", "meta"], sinks: ["stderr"], lowestLevel: "warning" },
      { category: ["netstack"], sinks: ["stderr"], lowestLevel: level as LogLevel },
    ],
  });
}

/** Removes the logging configuration (used by tests and at exit). */
export async function resetLogging(): Promise<void> {
  await reset();
}

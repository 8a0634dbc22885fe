/**
 * `netstack trace`: the XDP / TC egress packet tracer's command line (flags per docs/cli.md).
 *
 * Packet lines or JSON go to stdout, logs and the summary to stderr. Stops on SIGINT/SIGTERM, `--count`,
 * `--duration`, or a closed stdout, and always detaches before returning.
 *
 * @module
 */

import { parseFlags, parseIntegerFlag, RuntimeError, UsageError } from "./errors.ts";
import { type CliLogLevel, configureLogging, LOG_LEVELS, logger } from "../log.ts";
import { LinkType, PcapWriter } from "../pcap/writer.ts";
import { parseHostPrefix, parseProtocol, TRACE_MAX_SNAPLEN, type TraceFilter } from "../trace/filter.ts";
import { decodePacket, RecordError, RecordHeaderReader } from "../trace/record.ts";
import { formatJson, formatLine } from "../trace/format.ts";
import { type DirectionOption, type HookCounters, monotonicToWallMicros, Tracer } from "../trace/tracer.ts";
import type { EgressHookOption, XdpModeOption } from "../trace/attach.ts";

const COMMAND = "trace";

const HELP = `netstack trace — trace packets with XDP (ingress) and TC (egress), filtered in the kernel

Usage: netstack trace [options]

  -i, --iface NAME          interface to attach to; repeat for several (default eth0)
      --mode MODE           XDP mode: auto, native or generic (default auto: generic on virtual
                            devices such as veth, bridge, tun; native where the driver supports it)
      --direction DIR       ingress (XDP), egress (TC) or both (default ingress)
      --proto P             tcp, udp, icmp, icmp6, arp, ip, ip6, sctp (default any)
      --host ADDR[/PREFIX]  source or destination address in this IPv4/IPv6 prefix
      --port N              TCP/UDP/SCTP source or destination port
  -s, --snaplen N           bytes of each packet copied to user space, 1..${TRACE_MAX_SNAPLEN} (default 128)
  -w, --write FILE          write the packets to a pcap file (Ethernet link type)
      --json                one JSON object per packet instead of text lines
  -c, --count N             stop after N packets
      --duration SECONDS    stop after this long
      --stats-interval SEC  print the counters on stderr every SEC seconds
  -q, --quiet               no per-packet output (use with --write or --stats-interval)
      --egress-hook HOOK    auto, tcx or clsact (default auto: a tcx link, clsact on kernels before 6.6)
      --log-level LEVEL     debug, info, warning, error (default warning)
  -h, --help                show this help

Filters run in the kernel; only matching packets reach user space. At exit a summary per interface
and hook on stderr: packets seen, matched, captured, and lost because the ring buffer was full.
Programs are attached through BPF links, so even a killed process leaves nothing attached
(except with --egress-hook clsact).
`;

/** The parsed command line. */
export interface TraceArguments {
  interfaces: string[];
  mode: XdpModeOption;
  direction: DirectionOption;
  egressHook: EgressHookOption;
  filter: TraceFilter;
  write?: string;
  json: boolean;
  count?: number;
  durationSeconds?: number;
  statsIntervalSeconds?: number;
  quiet: boolean;
  logLevel: CliLogLevel;
  help: boolean;
}

function choice<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(COMMAND, `--${flag} must be one of ${allowed.join(", ")}, got '${value}'`);
  }
  return value as T;
}

function seconds(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value > 0)) {
    throw new UsageError(COMMAND, `--${flag} needs a positive number of seconds, got '${text}'`);
  }
  return value;
}

/** Parses the arguments after `trace`; throws UsageError. */
export function parseTraceArguments(args: string[]): TraceArguments {
  const v = parseFlags(COMMAND, args, {
    iface: { type: "string", short: "i", multiple: true },
    mode: { type: "string", default: "auto" },
    direction: { type: "string", default: "ingress" },
    proto: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    snaplen: { type: "string", short: "s", default: "128" },
    write: { type: "string", short: "w" },
    json: { type: "boolean", default: false },
    count: { type: "string", short: "c" },
    duration: { type: "string" },
    "stats-interval": { type: "string" },
    quiet: { type: "boolean", short: "q", default: false },
    "egress-hook": { type: "string", default: "auto" },
    "log-level": { type: "string", default: "warning" },
    help: { type: "boolean", short: "h", default: false },
  });
  const filter: TraceFilter = {
    snaplen: parseIntegerFlag(COMMAND, "snaplen", v.snaplen, 1, TRACE_MAX_SNAPLEN),
    proto: "any",
  };
  if (v.proto !== undefined) {
    const proto = parseProtocol(v.proto);
    if (proto === null) {
      throw new UsageError(
        COMMAND,
        `--proto must be tcp, udp, icmp, icmp6, arp, ip, ip6 or sctp, got '${v.proto}'`,
      );
    }
    filter.proto = proto;
  }
  if (v.host !== undefined) {
    const host = parseHostPrefix(v.host);
    if (host === null) {
      throw new UsageError(COMMAND, `--host needs an IPv4 or IPv6 address[/prefix], got '${v.host}'`);
    }
    filter.host = host;
  }
  if (v.port !== undefined) filter.port = parseIntegerFlag(COMMAND, "port", v.port, 0, 65535);
  const interfaces = v.iface ?? ["eth0"];
  for (const name of interfaces) {
    if (name === "" || name.length > 15 || /[\s/]/.test(name)) {
      throw new UsageError(COMMAND, `--iface '${name}' is not a valid interface name`);
    }
  }
  return {
    interfaces,
    mode: choice("mode", v.mode, ["auto", "native", "generic"] as const),
    direction: choice("direction", v.direction, ["ingress", "egress", "both"] as const),
    egressHook: choice("egress-hook", v["egress-hook"], ["auto", "tcx", "clsact"] as const),
    filter,
    write: v.write,
    json: v.json,
    count: v.count === undefined
      ? undefined
      : parseIntegerFlag(COMMAND, "count", v.count, 1, Number.MAX_SAFE_INTEGER),
    durationSeconds: v.duration === undefined ? undefined : seconds("duration", v.duration),
    statsIntervalSeconds: v["stats-interval"] === undefined
      ? undefined
      : seconds("stats-interval", v["stats-interval"]),
    quiet: v.quiet,
    logLevel: choice("log-level", v["log-level"], LOG_LEVELS),
    help: v.help,
  };
}

/** One summary line, e.g. `veth1 ingress xdp/generic: seen 10 matched 4 captured 4 lost 0`. */
export function formatCounters(c: HookCounters): string {
  return `${c.iface} ${c.direction} ${c.hook}: seen ${c.seen} matched ${c.matched} captured ${c.captured} lost ${c.lost}`;
}

const encoder = new TextEncoder();

/** Writes all of `bytes` to stdout; false when stdout is closed (EPIPE). */
function writeStdout(text: string): boolean {
  const bytes = encoder.encode(text);
  try {
    let offset = 0;
    while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return false;
    throw error;
  }
}

/** Runs `netstack trace` with the arguments after `trace`; returns the exit code. */
export async function runTrace(args: string[]): Promise<number> {
  const options = parseTraceArguments(args);
  if (options.help) {
    writeStdout(HELP);
    return 0;
  }
  await configureLogging(options.logLevel);
  const log = logger("trace");

  let pcapFile: Deno.FsFile | undefined;
  let pcap: PcapWriter | undefined;
  if (options.write !== undefined) {
    try {
      pcapFile = Deno.openSync(options.write, { write: true, create: true, truncate: true });
    } catch (error) {
      throw new RuntimeError(`cannot write ${options.write}: ${(error as Error).message}`);
    }
    pcap = new PcapWriter(pcapFile, { linkType: LinkType.ETHERNET, snaplen: options.filter.snaplen });
  }

  let tracer: Tracer;
  try {
    tracer = Tracer.open(options);
  } catch (error) {
    pcap?.close();
    pcapFile?.close();
    throw error;
  }
  const names = new Map(tracer.attachments.map((a) => [a.ifindex, a.iface]));
  const stop = () => tracer.stop();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (options.durationSeconds !== undefined) timers.push(setTimeout(stop, options.durationSeconds * 1000));
  if (options.statsIntervalSeconds !== undefined) {
    timers.push(setInterval(() => {
      for (const c of tracer.counters()) console.error(`stats ${formatCounters(c)}`);
    }, options.statsIntervalSeconds * 1000));
  }
  for (const a of tracer.attachments) console.error(`tracing ${a.iface} ${a.direction} (${a.hook})`);

  const wallOffset = monotonicToWallMicros();
  const header = new RecordHeaderReader();
  const printing = !options.quiet;
  let text = "";
  let remaining = options.count ?? Infinity;
  let malformed = 0;
  let stdoutOpen = true;
  const flushText = () => {
    if (text === "") return;
    if (!writeStdout(text)) {
      stdoutOpen = false;
      tracer.stop();
    }
    text = "";
  };

  try {
    await tracer.run(
      (bytes, offset, length) => {
        try {
          header.read(bytes, offset, length);
        } catch (error) {
          if (!(error instanceof RecordError)) throw error;
          if (malformed++ === 0) log.warn("skipping malformed record: {message}", { message: error.message });
          return;
        }
        const micros = Math.floor(header.timestampNs / 1000) + wallOffset;
        const data = bytes.subarray(header.dataOffset, header.dataOffset + header.capturedLength);
        pcap?.write(data, micros, header.wireLength);
        if (printing && stdoutOpen) {
          const event = {
            timestampMicros: micros,
            iface: names.get(header.ifindex) ?? `if${header.ifindex}`,
            direction: header.direction,
            wireLength: header.wireLength,
            capturedLength: header.capturedLength,
            packet: decodePacket(data, header.wireLength),
          };
          text += (options.json ? formatJson(event) : formatLine(event)) + "\n";
          if (text.length > 65536) flushText();
        }
        if (--remaining <= 0) return false;
      },
      () => {
        flushText();
        pcap?.flush();
      },
    );
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    for (const timer of timers) clearTimeout(timer);
    flushText();
    let counters: HookCounters[] = [];
    try {
      counters = tracer.counters();
    } finally {
      tracer.close();
      pcap?.close();
      pcapFile?.close();
    }
    for (const c of counters) console.error(formatCounters(c));
    if (malformed > 0) console.error(`${malformed} malformed records skipped`);
    if (pcap) console.error(`${pcap.packets} packets written to ${options.write}`);
  }
  return 0;
}

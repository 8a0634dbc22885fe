/**
 * `netstack trace`: the XDP / TC egress packet tracer's command line (flags per docs/cli.md).
 *
 * Packet lines or JSON go to stdout, logs and the summary to stderr. Stops on SIGINT/SIGTERM, `--count`,
 * `--duration`, or a closed stdout, and always detaches before returning.
 *
 * @module
 */

import { parseFlagsAndWords, parseIntegerFlag, RuntimeError, UsageError } from "./errors.ts";
import { type CliLogLevel, configureLogging, LOG_LEVELS, logger } from "../log.ts";
import { parseHostPrefix, parseProtocol, TRACE_MAX_SNAPLEN, type TraceFilter } from "../trace/filter.ts";
import { decodePacket, RecordError, RecordHeaderReader } from "../trace/record.ts";
import { formatJson, formatLine } from "../trace/format.ts";
import { type DirectionOption, type HookCounters, monotonicToWall, Tracer } from "../trace/tracer.ts";
import type { Attachment, EgressHookOption, IngressHookOption, XdpModeOption } from "../trace/attach.ts";
import { CaptureFiles, captureFormat, type CaptureInterface } from "../trace/capture_files.ts";
import { LinkType } from "../pcap/writer.ts";
import { upInterfaces } from "../trace/link_type.ts";
import { LinkWatcher } from "../trace/link_watch.ts";
import {
  compileExpression,
  Dlt,
  FilterSyntaxError,
  joinExpression,
  UnsupportedFilterError,
} from "../filter/expression.ts";
import { checkProgram, formatProgram } from "../filter/cbpf.ts";
import { translateToEbpf } from "../filter/to_ebpf.ts";
import { PcapMissingError } from "../ffi/pcap_compile.ts";
import { interfaceLink } from "../trace/link_type.ts";
import type { TraceExpression } from "../trace/filter.ts";

const COMMAND = "trace";

const HELP = `netstack trace — trace packets with tcx or XDP (ingress) and TC (egress), filtered in the kernel

Usage: netstack trace [options] [EXPRESSION...]

  EXPRESSION                a tcpdump (pcap-filter) expression, e.g. 'tcp port 443 and host 10.0.0.2',
                            compiled by libpcap and run in the kernel; the words are joined as tcpdump
                            does, and the shorthands --proto/--host/--port are ANDed with it
  -d                        print the expression's classic BPF as tcpdump -d does, and exit

  -i, --iface NAME          interface to attach to; repeat for several; \`any\` = every interface
                            that is up, except loopback, and those that come up later (default eth0)
      --direction DIR       ingress, egress (TC) or both (default both)
      --ingress-hook HOOK   auto, tcx or xdp (default auto: tcx on virtual devices such as veth,
                            bridge, TUN, where XDP could only be generic, which copies most packets
                            before the program runs; generic XDP on physical NICs)
      --mode MODE           XDP mode: auto, native or generic (default auto). native or generic
                            attach XDP (native: the driver's; it may reset a physical NIC's link);
                            auto = the --ingress-hook choice, generic when it is XDP. When another
                            program holds the XDP hook, ingress uses tcx instead, and says so
      --proto P             tcp, udp, icmp, icmp6, arp, ip, ip6, sctp (default any)
      --host ADDR[/PREFIX]  source or destination address in this IPv4/IPv6 prefix
      --port N              TCP/UDP/SCTP source or destination port
  -s, --snaplen N           bytes of each packet copied to user space, up to ${TRACE_MAX_SNAPLEN};
                            0 = the maximum, ${TRACE_MAX_SNAPLEN} (default 128)
  -w, --write FILE          write the packets to FILE and print none (as tcpdump): pcapng (interface
                            names, directions, statistics) when FILE ends in .pcapng or several
                            interfaces are traced, else pcap; link type Ethernet, or raw IP on
                            TUN/ipip/WireGuard devices. \`-w -\` writes to stdout
      --print               with -w FILE, print the packet lines as well
  -C, --file-size MB        with -w: start a new file (FILE1, FILE2…) once the current one is larger
                            than MB millions of bytes
  -W, --file-count N        with -C: keep at most N files (FILE0…), overwriting the oldest
      --json                one JSON object per packet instead of text lines (printed even with -w)
  -n                        accepted (also -nn): addresses and ports are always shown as numbers
      --utc                 print times in UTC (default: local time, as tcpdump; TZ applies)
  -c, --count N             stop after N packets
      --duration SECONDS    stop after this long
      --stats-interval SEC  print the counters on stderr every SEC seconds
  -q, --quiet               no per-packet output
      --egress-hook HOOK    auto, tcx or clsact (default auto: a tcx link, clsact on kernels before 6.6)
      --log-level LEVEL     debug, info, warning, error (default warning)
  -h, --help                show this help

Filters run in the kernel; only matching packets reach user space. At exit a summary per interface
and hook on stderr: packets seen, matched, captured, and lost because the ring buffer was full.
Programs are attached through BPF links, so even a killed process leaves nothing attached
(except with --egress-hook clsact). Several traces of one interface run side by side.
`;

/** The parsed command line. */
export interface TraceArguments {
  /** Interface names, or `["any"]`-expanded later (see {@link TraceArguments.any}). */
  interfaces: string[];
  /** `-i any` was given: every interface that is up, except loopback. */
  any: boolean;
  mode: XdpModeOption;
  ingressHook: IngressHookOption;
  direction: DirectionOption;
  egressHook: EgressHookOption;
  filter: TraceFilter;
  /** `-s` was above the maximum and was lowered to it. */
  snaplenClamped?: number;
  /** The tcpdump expression (trailing words joined), compiled later. */
  expression?: string;
  /** `-d`: print the compiled expression and exit. */
  dumpBpf: boolean;
  write?: string;
  print: boolean;
  fileSizeBytes?: number;
  fileCount?: number;
  json: boolean;
  utc: boolean;
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

/** tcpdump's largest snap length: `-s` values up to it are accepted (and lowered to ours). */
const TCPDUMP_MAX_SNAPLEN = 262144;

/** Parses the arguments after `trace`; throws UsageError. */
export function parseTraceArguments(args: string[]): TraceArguments {
  const { values: v, words } = parseFlagsAndWords(COMMAND, args, {
    "dump-bpf": { type: "boolean", short: "d", default: false },
    iface: { type: "string", short: "i", multiple: true },
    mode: { type: "string", default: "auto" },
    direction: { type: "string", default: "both" },
    proto: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    snaplen: { type: "string", short: "s", default: "128" },
    write: { type: "string", short: "w" },
    print: { type: "boolean", default: false },
    "file-size": { type: "string", short: "C" },
    "file-count": { type: "string", short: "W" },
    json: { type: "boolean", default: false },
    numeric: { type: "boolean", short: "n", multiple: true },
    utc: { type: "boolean", default: false },
    count: { type: "string", short: "c" },
    duration: { type: "string" },
    "stats-interval": { type: "string" },
    quiet: { type: "boolean", short: "q", default: false },
    "egress-hook": { type: "string", default: "auto" },
    "ingress-hook": { type: "string", default: "auto" },
    "log-level": { type: "string", default: "warning" },
    help: { type: "boolean", short: "h", default: false },
  });
  const requested = parseIntegerFlag(COMMAND, "snaplen", v.snaplen, 0, TCPDUMP_MAX_SNAPLEN);
  const snaplen = requested === 0 ? TRACE_MAX_SNAPLEN : Math.min(requested, TRACE_MAX_SNAPLEN);
  const filter: TraceFilter = { snaplen, proto: "any" };
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
  const named = v.iface ?? ["eth0"];
  for (const name of named) {
    if (name === "" || name.length > 15 || /[\s/]/.test(name)) {
      throw new UsageError(COMMAND, `--iface '${name}' is not a valid interface name`);
    }
  }
  const write = v.write;
  const fileSizeMb = v["file-size"] === undefined
    ? undefined
    : parseIntegerFlag(COMMAND, "file-size", v["file-size"], 1, 1_000_000);
  const fileCount = v["file-count"] === undefined
    ? undefined
    : parseIntegerFlag(COMMAND, "file-count", v["file-count"], 1, 1_000_000);
  if (fileSizeMb !== undefined && write === undefined) {
    throw new UsageError(COMMAND, "-C needs -w FILE");
  }
  if (fileCount !== undefined && fileSizeMb === undefined) {
    throw new UsageError(COMMAND, "-W needs -C MB (rotation by size)");
  }
  if (write === "-") {
    if (fileSizeMb !== undefined) throw new UsageError(COMMAND, "-C cannot rotate standard output (-w -)");
    if (v.print || v.json) {
      throw new UsageError(COMMAND, "with -w - standard output carries the capture: drop --print/--json");
    }
  }
  return {
    interfaces: named.filter((name) => name !== "any"),
    any: named.includes("any"),
    mode: choice("mode", v.mode, ["auto", "native", "generic"] as const),
    direction: choice("direction", v.direction, ["ingress", "egress", "both"] as const),
    ingressHook: choice("ingress-hook", v["ingress-hook"], ["auto", "xdp", "tcx"] as const),
    egressHook: choice("egress-hook", v["egress-hook"], ["auto", "tcx", "clsact"] as const),
    filter,
    snaplenClamped: requested > TRACE_MAX_SNAPLEN ? requested : undefined,
    write,
    print: v.print,
    fileSizeBytes: fileSizeMb === undefined ? undefined : fileSizeMb * 1_000_000,
    fileCount,
    expression: joinExpression(words),
    dumpBpf: v["dump-bpf"],
    json: v.json,
    utc: v.utc,
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

/** The pcapng interface block of one hook: named after the interface, the hook in its description. */
function captureInterface(a: Attachment): CaptureInterface {
  return { name: a.iface, description: `${a.direction} ${a.hook}`, linkType: a.linkType };
}

/** libpcap's refusals become usage errors (exit 2); a missing libpcap a runtime error. */
function expressionError(expression: string, error: unknown): Error {
  if (error instanceof FilterSyntaxError) {
    return new UsageError(COMMAND, `expression '${expression}': ${error.message}`);
  }
  if (error instanceof UnsupportedFilterError) {
    return new UsageError(COMMAND, `expression '${expression}' cannot be traced: ${error.message}`);
  }
  if (error instanceof PcapMissingError) return new RuntimeError(error.message);
  return error as Error;
}

/** Whether the named interface carries raw IP (frames start at the IP header); false when unknown. */
function isRaw(name: string): boolean {
  return name !== "any" && (interfaceLink(name)?.raw ?? false);
}

/**
 * The expression for the kernel: compiled by libpcap for each link type as the programs of that type
 * are loaded (Ethernet, or raw IP on TUN-like devices), checked and translated once per type.
 */
function traceExpression(text: string): TraceExpression {
  const bodies = new Map<boolean, Uint8Array<ArrayBuffer>>();
  return {
    text,
    ebpf(raw: boolean) {
      let body = bodies.get(raw);
      if (body === undefined) {
        const program = compileExpression(text, raw ? Dlt.RAW : Dlt.EN10MB);
        checkProgram(program);
        body = translateToEbpf(program);
        bodies.set(raw, body);
      }
      return body;
    },
  };
}

/** Runs `netstack trace` with the arguments after `trace`; returns the exit code. */
export async function runTrace(args: string[]): Promise<number> {
  const options = parseTraceArguments(args);
  if (options.help) {
    writeStdout(HELP);
    return 0;
  }
  if (options.dumpBpf) {
    // As tcpdump -d: the program libpcap compiled, whether or not netstack can run it; no privileges.
    const expression = options.expression ?? "";
    try {
      const linkType = isRaw(options.interfaces[0] ?? "") ? Dlt.RAW : Dlt.EN10MB;
      writeStdout(formatProgram(compileExpression(expression, linkType)));
    } catch (error) {
      throw expressionError(expression, error);
    }
    return 0;
  }
  if (options.expression !== undefined) {
    const expression = traceExpression(options.expression);
    try {
      // Checked now for the link types of the interfaces named (Ethernet for `any`): exit 2 before
      // anything is attached. An interface of another type found later compiles it then.
      for (const raw of new Set(options.interfaces.map(isRaw))) expression.ebpf(raw);
      options.filter.expression = expression;
    } catch (error) {
      throw expressionError(options.expression, error);
    }
  }
  await configureLogging(options.logLevel);
  const log = logger("trace");
  if (options.snaplenClamped !== undefined) {
    console.error(`snaplen ${options.snaplenClamped} is above the maximum; using ${TRACE_MAX_SNAPLEN}`);
  }
  const interfaces = [...options.interfaces];
  // Subscribed before listing, so that an interface coming up in between is not missed.
  const watcher = options.any ? LinkWatcher.open() : undefined;
  if (options.any) {
    for (const name of upInterfaces()) if (!interfaces.includes(name)) interfaces.push(name);
  }

  let tracer: Tracer;
  try {
    if (interfaces.length === 0) throw new RuntimeError("-i any: no interface other than loopback is up");
    tracer = Tracer.open({ ...options, interfaces });
  } catch (error) {
    watcher?.close();
    throw error;
  }
  const attachments = tracer.attachments;
  // Records name their hook by (ifindex, direction): the slot below indexes the attachment, which is
  // also its pcapng interface id.
  const slotOf = (ifindex: number, direction: number) => ifindex * 2 + direction;
  const ids = new Map<number, number>();
  const names = new Map<number, string>();
  const raw = new Set<number>();
  const remember = (a: Attachment, id: number) => {
    ids.set(slotOf(a.ifindex, a.direction === "ingress" ? 0 : 1), id);
    names.set(a.ifindex, a.iface);
    if (a.linkType === LinkType.RAW) raw.add(a.ifindex);
  };
  attachments.forEach(remember);

  let capture: CaptureFiles | undefined;
  if (options.write !== undefined) {
    const several = options.any || new Set(attachments.map((a) => a.ifindex)).size > 1;
    try {
      capture = new CaptureFiles({
        path: options.write,
        format: captureFormat(options.write, several ? 2 : 1),
        snaplen: options.filter.snaplen,
        fileSizeBytes: options.fileSizeBytes,
        fileCount: options.fileCount,
      }, attachments.map(captureInterface));
    } catch (error) {
      tracer.close();
      watcher?.close();
      throw new RuntimeError(`cannot write ${options.write}: ${(error as Error).message}`);
    }
  }
  /** `-i any`: attaches to the interfaces that came up since the last look. */
  const watchLinks = () => {
    if (watcher === undefined) return;
    for (const { name } of watcher.poll()) {
      if (tracer.stopping) break;
      try {
        for (const a of tracer.addInterface(name)) {
          const id = attachments.indexOf(a);
          capture?.addInterface(captureInterface(a));
          remember(a, id);
          console.error(`tracing ${a.iface} ${a.direction} (${a.hook})`);
        }
      } catch (error) {
        // Gone again, or a link type trace cannot decode: the others go on.
        log.warn("not tracing {name}: {message}", { name, message: (error as Error).message });
      }
    }
  };

  const stop = () => tracer.stop();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (options.durationSeconds !== undefined) timers.push(setTimeout(stop, options.durationSeconds * 1000));
  if (options.statsIntervalSeconds !== undefined) {
    timers.push(setInterval(() => {
      for (const c of tracer.stats()) console.error(`stats ${formatCounters(c)}`);
    }, options.statsIntervalSeconds * 1000));
  }
  for (const a of attachments) console.error(`tracing ${a.iface} ${a.direction} (${a.hook})`);

  const clock = monotonicToWall();
  const header = new RecordHeaderReader();
  // tcpdump prints nothing with -w unless --print; --json asks for output by itself.
  const printing = !options.quiet && (capture === undefined || options.print || options.json);
  let text = "";
  let remaining = options.count ?? Infinity;
  let malformed = 0;
  let stdoutOpen = true;
  const closedPipe = (error: unknown) => {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
    stdoutOpen = false;
    tracer.stop();
  };
  const flushText = () => {
    if (text === "") return;
    if (!writeStdout(text)) {
      stdoutOpen = false;
      tracer.stop();
    }
    text = "";
  };
  const flushCapture = () => {
    if (!stdoutOpen && options.write === "-") return;
    try {
      capture?.flush();
    } catch (error) {
      closedPipe(error);
    }
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
        const t = header.timestampNs + clock.nanos;
        const carry = Math.floor(t / 1e9);
        const seconds = clock.seconds + carry;
        const nanos = t - carry * 1e9;
        const data = bytes.subarray(header.dataOffset, header.dataOffset + header.capturedLength);
        if (capture !== undefined && stdoutOpen) {
          const id = ids.get(slotOf(header.ifindex, header.direction === "ingress" ? 0 : 1)) ?? 0;
          try {
            capture.write(id, data, seconds, nanos, header.wireLength, header.direction);
          } catch (error) {
            closedPipe(error);
          }
        }
        if (printing && stdoutOpen) {
          const event = {
            timestampMicros: seconds * 1e6 + Math.floor(nanos / 1000),
            iface: names.get(header.ifindex) ?? `if${header.ifindex}`,
            direction: header.direction,
            wireLength: header.wireLength,
            capturedLength: header.capturedLength,
            packet: decodePacket(data, header.wireLength, raw.has(header.ifindex)),
          };
          text += (options.json ? formatJson(event) : formatLine(event, options.utc)) + "\n";
          if (text.length > 65536) flushText();
        }
        if (--remaining <= 0) return false;
      },
      () => {
        flushText();
        flushCapture();
        watchLinks();
      },
    );
  } finally {
    for (const timer of timers) clearTimeout(timer);
    flushText();
    let counters: HookCounters[] = [];
    try {
      counters = tracer.stats();
    } finally {
      watcher?.close();
      tracer.close();
      closeCapture(capture, counters);
    }
    for (const c of counters) console.error(formatCounters(c));
    if (malformed > 0) console.error(`${malformed} malformed records skipped`);
    if (capture) {
      const where = options.write === "-"
        ? "standard output"
        : capture.names.length === 1
        ? capture.names[0]
        : `${new Set(capture.names).size} files (${capture.names[0]} … ${capture.names.at(-1)})`;
      console.error(`${capture.packets} packets written to ${where}`);
    }
    // Last: a second signal during the shutdown (timeout(1) sends one to the process group too) must not
    // kill the process before the capture is closed and the counters printed.
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
  return 0;
}

/** Closes the capture, with the counters of each hook as pcapng statistics; a closed pipe is no error. */
function closeCapture(capture: CaptureFiles | undefined, counters: HookCounters[]): void {
  if (capture === undefined) return;
  const wall = Date.now();
  const seconds = Math.floor(wall / 1000);
  try {
    // stats() lists the hooks in attachment order, which is also the interface ids' order.
    capture.close((id) => {
      const c = counters[id];
      return c === undefined
        ? undefined
        : { received: c.seen, accepted: c.matched, dropped: c.lost, delivered: c.captured };
    }, [seconds, (wall - seconds * 1000) * 1e6]);
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

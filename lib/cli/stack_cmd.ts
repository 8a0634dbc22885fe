/**
 * `netstack stack`: parses the flags of shared/CLI.md, opens the stack, logs `ready`, and runs until
 * SIGINT/SIGTERM, then removes the device and logs the counters.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type CliLogLevel, configureLogging, LOG_LEVELS, logger } from "../log.ts";
import { parseIntegerFlag, RuntimeError, UsageError } from "./errors.ts";
import { formatIpv4Cidr, type Ipv4Cidr, parseIpv4, parseIpv4Cidr } from "../wire/ipv4_address.ts";
import { type ImpairmentSpec, parseImpairment } from "../phy/impair.ts";
import type { Stack } from "../stack/stack.ts";
import { AVAILABLE_SERVICES, type ServiceName } from "../stack/stack.ts";
import { type OpenedStack, openTunStack } from "../stack/open.ts";
import { SystemError } from "../ffi/errno.ts";

/** Help text of `netstack stack`. */
export const STACK_HELP = `Usage: netstack stack [options]

Runs a user-space TCP/IP stack on a TUN device it creates, and emulates a remote host that answers
ping and runs small services. Needs root or CAP_NET_ADMIN.

Options:
  --backend tun|tap|pcap  device kind (default tun; tap and pcap are not available yet)
  --iface NAME            device to create (default tun0)
  --addr CIDR             the stack's own IPv4 address (default 10.0.0.2/24)
  --host-addr CIDR        address given to the host side of the device (default 10.0.0.1/24)
  --no-configure          leave the host side without an address (the device is still brought up)
  --gateway ADDR          next hop outside the subnet (not available yet)
  --dhcp                  obtain the address by DHCPv4 (not available yet)
  --mac MAC               the stack's MAC address, tap/pcap only (not available yet)
  --mtu N                 interface MTU, 68..65535 (default 1500)
  --services LIST         comma list, or 'none' (default: ${AVAILABLE_SERVICES.join(",")})
                          echo = TCP+UDP 7, discard = TCP 9, chargen = TCP 19, http = TCP 80
  --connect HOST:PORT     open a TCP connection from the stack and bridge it to stdin/stdout
                          (like nc); exit when it closes
  --capture FILE          write every packet in and out to a pcap file
  --impair SPEC           testing only: impair traffic between device and stack, e.g.
                          loss=0.05,reorder=0.02,duplicate=0.01,seed=7[,direction=in|out|both]
  --log-level LEVEL       debug, info, warning or error (default info)
  -h, --help              show this help

Example:
  sudo netstack stack --capture /tmp/stack.pcap    # then: ping 10.0.0.2; curl http://10.0.0.2/
  sudo netstack stack --connect 10.0.0.1:5000      # talk to a listener on the host side
`;

/** The parsed configuration of `netstack stack`. */
export interface StackConfig {
  /** Device name. */
  iface: string;
  /** The stack's address. */
  address: Ipv4Cidr;
  /** Host-side address, or null with --no-configure. */
  hostAddress: Ipv4Cidr | null;
  /** MTU. */
  mtu: number;
  /** Services to run. */
  services: ServiceName[];
  /** Capture file path. */
  capturePath?: string;
  /** Log level. */
  logLevel: CliLogLevel;
  /** `--connect` target. */
  connect?: { hostname: string; port: number };
  /** `--impair` specification. */
  impairment?: ImpairmentSpec;
}

function usage(message: string): UsageError {
  return new UsageError("stack", message);
}

/** Parses the arguments after `stack`; returns `null` when `--help` was asked for. Throws {@link UsageError}. */
export function parseStackArgs(args: string[]): StackConfig | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        backend: { type: "string", default: "tun" },
        iface: { type: "string", default: "tun0" },
        addr: { type: "string", default: "10.0.0.2/24" },
        "host-addr": { type: "string", default: "10.0.0.1/24" },
        "no-configure": { type: "boolean", default: false },
        gateway: { type: "string" },
        dhcp: { type: "boolean", default: false },
        mac: { type: "string" },
        mtu: { type: "string", default: "1500" },
        services: { type: "string", default: AVAILABLE_SERVICES.join(",") },
        connect: { type: "string" },
        capture: { type: "string" },
        impair: { type: "string" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw usage(error instanceof Error ? error.message.split("\n")[0] : String(error));
  }
  const v = parsed.values;
  if (v.help) return null;
  if (!["tun", "tap", "pcap"].includes(v.backend)) {
    throw usage(`--backend must be tun, tap or pcap, got '${v.backend}'`);
  }
  if (v.backend !== "tun") throw usage(`--backend ${v.backend} is not available yet; use --backend tun`);
  if (v.dhcp) throw usage("--dhcp is not available yet (it needs the tap or pcap backend)");
  if (v.mac !== undefined) throw usage("--mac is not available yet (it needs the tap or pcap backend)");
  if (v.gateway !== undefined) throw usage("--gateway is not available yet");
  let connect: StackConfig["connect"];
  if (v.connect !== undefined) {
    const match = /^(.+):(\d{1,5})$/.exec(v.connect);
    const port = match ? Number(match[2]) : 0;
    if (match === null || parseIpv4(match[1]) === null || port < 1 || port > 65535) {
      throw usage(`--connect needs HOST:PORT with an IPv4 address, like 10.0.0.1:19, got '${v.connect}'`);
    }
    connect = { hostname: match[1], port };
  }
  let impairment: ImpairmentSpec | undefined;
  if (v.impair !== undefined) {
    try {
      impairment = parseImpairment(v.impair);
    } catch (error) {
      throw usage(`--impair: ${(error as Error).message}`);
    }
  }
  if (!LOG_LEVELS.includes(v["log-level"] as CliLogLevel)) {
    throw usage(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${v["log-level"]}'`);
  }
  if (v.iface.length === 0 || new TextEncoder().encode(v.iface).length > 15 || /[\s/]/.test(v.iface)) {
    throw usage(`--iface must be an interface name of 1 to 15 bytes without spaces or '/', got '${v.iface}'`);
  }
  const address = parseIpv4Cidr(v.addr);
  if (address === null) {
    throw usage(`--addr needs an IPv4 address with prefix like 10.0.0.2/24, got '${v.addr}'`);
  }
  let hostAddress: Ipv4Cidr | null = null;
  if (!v["no-configure"]) {
    hostAddress = parseIpv4Cidr(v["host-addr"]);
    if (hostAddress === null) {
      throw usage(`--host-addr needs an IPv4 address with prefix like 10.0.0.1/24, got '${v["host-addr"]}'`);
    }
    if (hostAddress.address === address.address) throw usage("--host-addr and --addr must differ");
  }
  const mtu = parseIntegerFlag("stack", "mtu", v.mtu, 68, 65535);
  const services: ServiceName[] = [];
  if (v.services !== "none") {
    for (const name of v.services.split(",").map((s) => s.trim()).filter((s) => s.length > 0)) {
      if ((AVAILABLE_SERVICES as readonly string[]).includes(name)) {
        if (!services.includes(name as ServiceName)) services.push(name as ServiceName);
      } else {
        throw usage(`unknown service '${name}'; available: ${AVAILABLE_SERVICES.join(", ")}, or 'none'`);
      }
    }
  }
  return {
    iface: v.iface,
    address,
    hostAddress,
    mtu,
    services,
    capturePath: v.capture,
    logLevel: v["log-level"] as CliLogLevel,
    connect,
    impairment,
  };
}

/** Turns a failure to open the stack into a one-line {@link RuntimeError}. */
function openFailure(error: unknown, config: StackConfig): RuntimeError {
  if (error instanceof SystemError) return new RuntimeError(error.message, { cause: error });
  if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.PermissionDenied) {
    return new RuntimeError(`cannot write the capture file ${config.capturePath}: ${error.message}`, {
      cause: error,
    });
  }
  return new RuntimeError(error instanceof Error ? error.message : String(error), { cause: error });
}

/** Runs `netstack stack` with the arguments after `stack`; resolves to the exit code. */
export async function runStack(args: string[]): Promise<number> {
  const config = parseStackArgs(args);
  if (config === null) {
    console.log(STACK_HELP);
    return 0;
  }
  await configureLogging(config.logLevel);
  const log = logger("stack");
  let opened: OpenedStack;
  try {
    opened = openTunStack({
      iface: config.iface,
      address: config.address,
      hostAddress: config.hostAddress,
      mtu: config.mtu,
      services: config.services,
      capturePath: config.capturePath,
      impairment: config.impairment,
    });
  } catch (error) {
    throw openFailure(error, config);
  }
  const { stack } = opened;
  let signalled: (signal: string) => void = () => {};
  const stop = new Promise<string>((resolve) => (signalled = resolve));
  const onInt = () => signalled("SIGINT");
  const onTerm = () => signalled("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  log.info("ready iface={iface} addr={addr} host={host} mtu={mtu} services={services}", {
    iface: stack.deviceName,
    addr: formatIpv4Cidr(config.address),
    host: config.hostAddress ? formatIpv4Cidr(config.hostAddress) : "unconfigured",
    mtu: config.mtu,
    services: config.services.join(",") || "none",
  });
  let code = 0;
  try {
    const bridge = config.connect ? bridgeStdio(stack, config.connect) : new Promise<never>(() => {});
    const outcome = await Promise.race([stop, stack.closed.then(() => "device closed"), bridge]);
    if (outcome instanceof Error) {
      console.error(
        `netstack: --connect ${config.connect!.hostname}:${config.connect!.port}: ${outcome.message}`,
      );
      code = 1;
    }
    log.info("stopping ({reason})", { reason: outcome instanceof Error ? outcome.message : outcome });
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    await opened.close();
  }
  log.info("stats {stats}", { stats: stack.stats() });
  return code;
}

/**
 * `--connect`: a TCP connection from the stack bridged to stdin/stdout like nc. Standard input's end
 * half-closes the connection; the program ends once both directions are closed and what we sent was
 * acknowledged (so nothing is cut off by the shutdown). Resolves to a reason, or to the Error that ended
 * the connection (refused, timed out, reset).
 */
async function bridgeStdio(
  stack: Stack,
  target: { hostname: string; port: number },
): Promise<string | Error> {
  const log = logger("connect");
  try {
    const conn = await stack.connect(target);
    log.info("connected {local} > {remote}", {
      local: `${conn.localAddr.hostname}:${conn.localAddr.port}`,
      remote: `${target.hostname}:${target.port}`,
    });
    await Promise.all([
      Deno.stdin.readable.pipeTo(conn.writable),
      conn.readable.pipeTo(Deno.stdout.writable, { preventClose: true }),
    ]);
    const finished = await conn.finished();
    conn.close();
    return finished ? "connection closed" : "connection closed (our last data was not acknowledged in time)";
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

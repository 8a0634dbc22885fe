/**
 * `netstack stack`: parses the flags of shared/CLI.md, opens the stack, logs `ready`, and runs until
 * SIGINT/SIGTERM, then removes the device and logs the counters.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type CliLogLevel, configureLogging, LOG_LEVELS, logger } from "../log.ts";
import { parseIntegerFlag, RuntimeError, UsageError } from "./errors.ts";
import { formatIpv4Cidr, type Ipv4Cidr, parseIpv4Cidr } from "../wire/ipv4_address.ts";
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
                          available now: ${AVAILABLE_SERVICES.join(", ")} (UDP echo on port 7)
  --connect HOST:PORT     bridge a TCP connection to stdin/stdout (not available yet)
  --capture FILE          write every packet in and out to a pcap file
  --log-level LEVEL       debug, info, warning or error (default info)
  -h, --help              show this help

Example:
  sudo netstack stack --capture /tmp/stack.pcap    # then: ping 10.0.0.2
`;

/** Services named in shared/CLI.md that later work provides. */
const PLANNED_SERVICES = ["discard", "chargen", "http"];

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
  if (v.connect !== undefined) throw usage("--connect is not available yet (it needs TCP)");
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
      } else if (PLANNED_SERVICES.includes(name)) {
        throw usage(
          `service '${name}' is not available yet (it needs TCP); available: ${
            AVAILABLE_SERVICES.join(", ")
          }`,
        );
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
  try {
    const outcome = await Promise.race([stop, stack.closed.then(() => "device closed")]);
    log.info("stopping ({reason})", { reason: outcome });
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    await opened.close();
  }
  log.info("stats {stats}", { stats: stack.stats() });
  return 0;
}

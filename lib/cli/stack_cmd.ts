/**
 * `netstack stack`: parses the flags of docs/cli.md, opens the stack, logs `ready`, and runs until
 * SIGINT/SIGTERM, then removes the device and logs the counters.
 *
 * @module
 */

import { type CliLogLevel, configureLogging, LOG_LEVELS, logger } from "../log.ts";
import { parseFlags, parseIntegerFlag, RuntimeError, UsageError } from "./errors.ts";
import {
  broadcastOf,
  formatIpv4,
  formatIpv4Cidr,
  inSubnet,
  type Ipv4Address,
  type Ipv4Cidr,
  parseIpv4,
  parseIpv4Cidr,
  prefixToMask,
} from "../wire/ipv4_address.ts";
import { formatMac, isMulticastMac, type MacAddress, parseMac } from "../wire/ethernet.ts";
import { type ImpairmentSpec, parseImpairment } from "../phy/impair.ts";
import type { Stack } from "../stack/stack.ts";
import {
  DEFAULT_MAX_CONNECTIONS,
  type RunningServices,
  SERVICE_NAMES as AVAILABLE_SERVICES,
  type ServiceName,
  startServices,
  tcpConnectionBound,
} from "../services/mod.ts";
import { type Backend, type OpenedStack, openStack } from "../stack/open.ts";
import { exposeGc, reclaimProcessMemory, startMemoryReclaimer } from "../stack/reclaim.ts";
import type { DhcpLease } from "../dhcp/mod.ts";
import { SystemError } from "../ffi/errno.ts";
import { PcapMissingError } from "../ffi/pcap_compile.ts";
import {
  compileRunnableExpression,
  Dlt,
  FilterSyntaxError,
  UnsupportedFilterError,
} from "../filter/expression.ts";
import { isHostName, resolveIpv4 } from "./resolve.ts";
import {
  formatIpv6,
  formatIpv6Cidr,
  type Ipv6Address,
  type Ipv6Cidr,
  ipv6Equals,
  isLinkLocalAt,
  isMulticastAt,
  isUnspecifiedAt,
  parseIpv6,
  parseIpv6Cidr,
} from "../wire/ipv6_address.ts";
import { parseProcRoutes, readHostRoutes, subnetOverlap } from "./subnet_overlap.ts";
import { inNetns, isValidNetnsName } from "../phy/netns.ts";

/** Help text of `netstack stack`. */
export const STACK_HELP = `Usage: netstack stack [options]

Runs a user-space TCP/IP stack on a TUN or TAP device it creates (or on an existing Ethernet interface,
through an AF_PACKET socket or libpcap), and emulates a remote host that answers ping and runs small
services. Needs root or CAP_NET_ADMIN.

Options:
  --backend tun|tap|packet|pcap
                          TUN (IP packets), TAP (Ethernet frames), or an existing interface: packet
                          through an AF_PACKET socket (recommended: it takes the checksum state and
                          64 KiB segments of local senders such as a veth peer), pcap through libpcap
                          (default tun)
  --iface NAME            device to create (tun/tap; default tun0) or to open (packet/pcap; required).
                          Loopback (lo) is refused: nothing but the kernel itself lives there
  --addr CIDR             the stack's own IPv4 address (default 10.0.0.2/24)
  --host-addr CIDR        tun/tap: address given to the host side of the device (default 10.0.0.1/24)
  --no-configure          tun/tap: leave the host side without an address (it is still brought up)
  --addr6 CIDR            the stack's own IPv6 address (default fd00::2/64 on tun/tap); Ethernet
                          backends also get a link-local address, and SLAAC adds addresses from
                          router advertisements
  --host-addr6 CIDR       tun/tap: IPv6 address given to the host side (default fd00::1/64)
  --gateway6 ADDR         tap/packet/pcap: IPv6 next hop off the prefix (default: from router
                          advertisements)
  --no-ipv6               IPv4 only
  --netns NAME            tun/tap: create the device in network namespace NAME (an 'ip netns' name) and
                          configure the host side there; netstack itself stays where it runs
  --forward               relay every TCP connection and UDP datagram to any address through host
                          sockets (as slirp4netns and pasta); with --netns, a default route via the stack
  --max-flows N           --forward: most relayed flows at once, 1..65536 (default 1024)
  --udp-timeout SEC       --forward: close a UDP association idle this long, 1..3600 (default 60)
  --gateway ADDR          tap/packet/pcap: next hop for destinations outside the subnet
  --dhcp                  tap/packet/pcap: obtain address and gateway by DHCPv4 instead of --addr
  --mac MAC               tap/packet/pcap: the stack's MAC (default random, locally administered);
                          packet puts the interface in promiscuous mode while it runs when the MAC is
                          not the interface's own
  --promiscuous           pcap: receive frames for any MAC (needed on physical NICs)
  --mtu N                 tun/tap: interface MTU, 68..65535 (default 1500)
  --mem-budget MIB        memory all TCP buffers may hold together, in MiB (default 256); past it
                          buffers stop growing and new connections are refused (counted in /stats)
  --max-connections N     TCP connections each service holds at once, 1..1000000 (default 256);
                          the stack holds at most max(65536, 2 x N) in all; past either bound new
                          connections are refused (counted in /stats)
  --services LIST         comma list, or 'none' (default: ${AVAILABLE_SERVICES.join(",")})
                          echo = TCP+UDP 7, discard = TCP 9, chargen = TCP 19, http = TCP 80
  --connect HOST:PORT     open a TCP connection from the stack and bridge it to stdin/stdout
                          (like nc; HOST an IPv4 address or a name from /etc/hosts or DNS); exit
                          when it closes. Quiet on stderr unless -v or --log-level is given
  -w, --wait SECONDS      with --connect: give up connecting after this long (like nc -w)
  --capture FILE          write every packet in and out to a pcap file
  --capture-filter EXPR   only packets matching this tcpdump expression go to --capture
  --impair SPEC           testing only: impair traffic between device and stack, e.g.
                          loss=0.05,reorder=0.02,duplicate=0.01,seed=7[,direction=in|out|both]
  --log-level LEVEL       debug, info, warning or error (default info; warning with --connect)
  -v, --verbose           log at info level (with --connect: the ready line, the connection, stats)
  -h, --help              show this help

Examples:
  sudo netstack stack --capture /tmp/stack.pcap    # then: ping 10.0.0.2; curl http://10.0.0.2/
  sudo netstack stack --connect 10.0.0.1:5000      # talk to a listener on the host side
  sudo netstack stack --backend packet --iface my0 --dhcp   # a veth end, address from a DHCP server
`;

/** The parsed configuration of `netstack stack`. */
export interface StackConfig {
  /** Device kind. */
  backend: Backend;
  /** Device name. */
  iface: string;
  /** Next hop outside the subnet (tap/packet/pcap). */
  gateway: Ipv4Address | null;
  /** Address from DHCP (tap/packet/pcap). */
  dhcp: boolean;
  /** The stack's MAC (tap/packet/pcap); undefined for a random one. */
  mac?: MacAddress;
  /** pcap: promiscuous mode. */
  promiscuous: boolean;
  /** The stack's address. */
  address: Ipv4Cidr;
  /** Host-side address, or null with --no-configure. */
  hostAddress: Ipv4Cidr | null;
  /** IPv6 on (false with --no-ipv6). */
  ipv6: boolean;
  /** The stack's static IPv6 address, or null (pcap without --addr6, or --no-ipv6). */
  address6: Ipv6Cidr | null;
  /** Host-side IPv6 address (tun/tap), or null. */
  hostAddress6: Ipv6Cidr | null;
  /** IPv6 next hop (tap/pcap), or null for the routers' advertisements. */
  gateway6: Ipv6Address | null;
  /** tun/tap: the network namespace to create the device in. */
  netns?: string;
  /** Forwarding mode and its limits. */
  forward?: { maxFlows: number; udpIdleMs: number };
  /** MTU. */
  mtu: number;
  /** TCP buffers' memory budget in bytes. */
  memoryBudget: number;
  /** Connections each service holds at once (`--max-connections`). */
  maxConnections: number;
  /** Services to run. */
  services: ServiceName[];
  /** Capture file path. */
  capturePath?: string;
  /** tcpdump expression applied to the capture (checked at parse time). */
  captureFilter?: string;
  /** Log level. */
  logLevel: CliLogLevel;
  /** `--connect` target (a host name is resolved when the command runs). */
  connect?: { hostname: string; port: number };
  /** `--wait`: connect timeout in ms for `--connect`. */
  connectTimeoutMs?: number;
  /** `--impair` specification. */
  impairment?: ImpairmentSpec;
}

function usage(message: string): UsageError {
  return new UsageError("stack", message);
}

/**
 * Why `cidr` cannot be a host's own address (RFC 1122 §3.2.1.3, RFC 1112, RFC 919), or null: zero,
 * loopback, multicast, limited broadcast, or the network or broadcast address of its subnet (/31 and /32
 * have none, RFC 3021).
 */
function notAHostAddress(cidr: Ipv4Cidr): string | null {
  const a = cidr.address;
  if (a >>> 24 === 0) return "is in 0.0.0.0/8 (this network)";
  if (a >>> 24 === 127) return "is a loopback address";
  if (a >>> 28 === 0xe) return "is a multicast address";
  if (a >>> 28 === 0xf) return "is reserved or the broadcast address";
  if (cidr.prefixLength <= 30) {
    const mask = prefixToMask(cidr.prefixLength);
    if (((a & ~mask) >>> 0) === 0) return `is the network address of ${formatIpv4Cidr(cidr)}`;
    if (a === broadcastOf(cidr)) return `is the broadcast address of ${formatIpv4Cidr(cidr)}`;
  }
  return null;
}

/** Parses the arguments after `stack`; returns `null` when `--help` was asked for. Throws {@link UsageError}. */
export function parseStackArgs(args: string[]): StackConfig | null {
  const v = parseFlags("stack", args, {
    backend: { type: "string", default: "tun" },
    iface: { type: "string" },
    addr: { type: "string" },
    "host-addr": { type: "string" },
    addr6: { type: "string" },
    "host-addr6": { type: "string" },
    gateway6: { type: "string" },
    "no-ipv6": { type: "boolean", default: false },
    promiscuous: { type: "boolean", default: false },
    "no-configure": { type: "boolean", default: false },
    netns: { type: "string" },
    forward: { type: "boolean", default: false },
    "max-flows": { type: "string" },
    "udp-timeout": { type: "string" },
    gateway: { type: "string" },
    dhcp: { type: "boolean", default: false },
    mac: { type: "string" },
    mtu: { type: "string", default: "1500" },
    "mem-budget": { type: "string", default: "256" },
    "max-connections": { type: "string", default: String(DEFAULT_MAX_CONNECTIONS) },
    services: { type: "string", default: AVAILABLE_SERVICES.join(",") },
    connect: { type: "string" },
    capture: { type: "string" },
    "capture-filter": { type: "string" },
    impair: { type: "string" },
    wait: { type: "string", short: "w" },
    "log-level": { type: "string" },
    verbose: { type: "boolean", short: "v", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (v.help) return null;
  if (!["tun", "tap", "packet", "pcap"].includes(v.backend)) {
    throw usage(`--backend must be tun, tap, packet or pcap, got '${v.backend}'`);
  }
  const backend = v.backend as Backend;
  const ethernet = backend !== "tun";
  if (!ethernet) {
    for (const flag of ["dhcp", "mac", "gateway", "gateway6"] as const) {
      if (v[flag] !== undefined && v[flag] !== false) {
        throw usage(
          `--${flag} needs an Ethernet backend (--backend tap, packet or pcap); on tun the host routes`,
        );
      }
    }
  }
  if (backend === "packet" && v.promiscuous) {
    throw usage(
      "--promiscuous applies to --backend pcap; packet turns promiscuous mode on by itself when --mac is not the interface's",
    );
  }
  if (backend !== "pcap" && v.promiscuous) throw usage("--promiscuous applies to --backend pcap only");
  const attached = backend === "packet" || backend === "pcap";
  if (attached) {
    if (v.iface === undefined) {
      throw usage(`--backend ${backend} needs --iface NAME, an existing interface to open`);
    }
    if (v["host-addr"] !== undefined || v["host-addr6"] !== undefined || v["no-configure"]) {
      throw usage(
        `--host-addr, --host-addr6 and --no-configure apply to tun and tap; ${backend} opens an interface as it is`,
      );
    }
    if (v.mtu !== "1500") throw usage(`--mtu applies to tun and tap; ${backend} uses the interface's MTU`);
    if (v.netns !== undefined) {
      throw usage(`--netns applies to tun and tap; ${backend} opens an interface as it is`);
    }
  }
  if (v.netns !== undefined && !isValidNetnsName(v.netns)) {
    throw usage(`--netns needs the name of a network namespace (see 'ip netns list'), got '${v.netns}'`);
  }
  if (v.dhcp && v.addr !== undefined) throw usage("--dhcp and --addr exclude each other");
  // Like nc, --connect keeps stderr for errors unless asked to say more.
  const logLevel = v["log-level"] ?? (v.verbose || v.connect === undefined ? "info" : "warning");
  if (!LOG_LEVELS.includes(logLevel as CliLogLevel)) {
    throw usage(`--log-level must be one of ${LOG_LEVELS.join(", ")}, got '${logLevel}'`);
  }
  const iface = v.iface ?? (backend === "tap" ? "tap0" : "tun0");
  if (iface.length === 0 || new TextEncoder().encode(iface).length > 15 || /[\s/]/.test(iface)) {
    throw usage(`--iface must be an interface name of 1 to 15 bytes without spaces or '/', got '${iface}'`);
  }
  const addrText = v.addr ?? "10.0.0.2/24";
  const address = parseIpv4Cidr(addrText);
  if (address === null) {
    throw usage(`--addr needs an IPv4 address with prefix like 10.0.0.2/24, got '${addrText}'`);
  }
  const badAddress = v.dhcp ? null : notAHostAddress(address);
  if (badAddress !== null) throw usage(`--addr ${addrText} ${badAddress}; give the stack a host address`);
  let hostAddress: Ipv4Cidr | null = null;
  if (!attached && !v["no-configure"]) {
    const hostText = v["host-addr"] ?? "10.0.0.1/24";
    hostAddress = parseIpv4Cidr(hostText);
    if (hostAddress === null) {
      throw usage(`--host-addr needs an IPv4 address with prefix like 10.0.0.1/24, got '${hostText}'`);
    }
    if (!v.dhcp && hostAddress.address === address.address) throw usage("--host-addr and --addr must differ");
    const badHost = notAHostAddress(hostAddress);
    if (badHost !== null) {
      throw usage(`--host-addr ${hostText} ${badHost}; give the host side a host address`);
    }
    // The host reaches the stack through the route of its own address's subnet: the stack must be in it.
    if (!v.dhcp && !inSubnet(address.address, hostAddress)) {
      throw usage(
        `--addr ${formatIpv4(address.address)} is not in the host side's subnet ${
          formatIpv4Cidr({
            address: (hostAddress.address & prefixToMask(hostAddress.prefixLength)) >>> 0,
            prefixLength: hostAddress.prefixLength,
          })
        } (--host-addr): the host would have no route to the stack`,
      );
    }
  }
  let gateway: Ipv4Address | null = null;
  if (v.gateway !== undefined) {
    gateway = parseIpv4(v.gateway);
    if (gateway === null) throw usage(`--gateway needs an IPv4 address, got '${v.gateway}'`);
    if (!v.dhcp && !inSubnet(gateway, address)) {
      throw usage(`--gateway ${v.gateway} is not in the stack's subnet ${formatIpv4Cidr(address)}`);
    }
  }
  if (v["no-ipv6"]) {
    for (const flag of ["addr6", "host-addr6", "gateway6"] as const) {
      if (v[flag] !== undefined) throw usage(`--${flag} and --no-ipv6 exclude each other`);
    }
  }
  const unicast6 = (a: Uint8Array) => !isMulticastAt(a, 0) && !isUnspecifiedAt(a, 0);
  let address6: Ipv6Cidr | null = null;
  const addr6Text = v.addr6 ?? (attached || v["no-ipv6"] ? undefined : "fd00::2/64");
  if (addr6Text !== undefined) {
    address6 = parseIpv6Cidr(addr6Text);
    if (address6 === null || !unicast6(address6.address)) {
      throw usage(`--addr6 needs a unicast IPv6 address with prefix like fd00::2/64, got '${addr6Text}'`);
    }
  }
  let hostAddress6: Ipv6Cidr | null = null;
  if (!attached && !v["no-configure"] && !v["no-ipv6"]) {
    const host6Text = v["host-addr6"] ?? "fd00::1/64";
    hostAddress6 = parseIpv6Cidr(host6Text);
    if (hostAddress6 === null || !unicast6(hostAddress6.address)) {
      throw usage(
        `--host-addr6 needs a unicast IPv6 address with prefix like fd00::1/64, got '${host6Text}'`,
      );
    }
    if (address6 !== null && ipv6Equals(address6.address, hostAddress6.address)) {
      throw usage("--host-addr6 and --addr6 must differ");
    }
  }
  let gateway6: Ipv6Address | null = null;
  if (v.gateway6 !== undefined) {
    gateway6 = parseIpv6(v.gateway6);
    if (gateway6 === null || !unicast6(gateway6)) {
      throw usage(`--gateway6 needs a unicast IPv6 address like fe80::1, got '${v.gateway6}'`);
    }
  }
  let mac: MacAddress | undefined;
  if (v.mac !== undefined) {
    const parsedMac = parseMac(v.mac);
    if (parsedMac === null || isMulticastMac(parsedMac)) {
      throw usage(`--mac needs a unicast MAC address like 02:00:00:00:00:01, got '${v.mac}'`);
    }
    mac = parsedMac;
  }
  let connect: StackConfig["connect"];
  if (v.connect !== undefined) {
    // HOST:PORT with an IPv4 address or a host name, or [ADDR]:PORT with an IPv6 address (RFC 3986 §3.2.2).
    const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v.connect);
    const match = bracketed ?? /^([^:\[\]]+):(\d{1,5})$/.exec(v.connect);
    const port = match ? Number(match[2]) : 0;
    const host = match?.[1] ?? "";
    const hostOk = bracketed !== null
      ? parseIpv6(host) !== null
      : parseIpv4(host) !== null || (!/^[\d.]+$/.test(host) && isHostName(host));
    if (match === null || !hostOk || port < 1 || port > 65535) {
      throw usage(
        `--connect needs HOST:PORT with an IPv4 address or a host name, or [ADDR]:PORT with an IPv6 address, like 10.0.0.1:19 or [fd00::1]:19, got '${v.connect}'`,
      );
    }
    connect = { hostname: host, port };
  }
  let connectTimeoutMs: number | undefined;
  if (v.wait !== undefined) {
    if (connect === undefined) throw usage("--wait applies to --connect only");
    const seconds = Number(v.wait);
    if (!/^\d+(\.\d+)?$/.test(v.wait) || !(seconds > 0)) {
      throw usage(`--wait needs a positive number of seconds, got '${v.wait}'`);
    }
    connectTimeoutMs = seconds * 1000;
  }
  let impairment: ImpairmentSpec | undefined;
  if (v.impair !== undefined) {
    try {
      impairment = parseImpairment(v.impair);
    } catch (error) {
      throw usage(`--impair: ${(error as Error).message}`);
    }
  }
  const mtu = parseIntegerFlag("stack", "mtu", v.mtu, 68, 65535);
  let forward: StackConfig["forward"];
  if (v.forward) {
    forward = {
      maxFlows: parseIntegerFlag("stack", "max-flows", v["max-flows"] ?? "1024", 1, 65536),
      udpIdleMs: parseIntegerFlag("stack", "udp-timeout", v["udp-timeout"] ?? "60", 1, 3600) * 1000,
    };
  } else if (v["max-flows"] !== undefined || v["udp-timeout"] !== undefined) {
    throw usage("--max-flows and --udp-timeout apply to --forward");
  }
  const memoryBudget = parseIntegerFlag("stack", "mem-budget", v["mem-budget"], 1, 1 << 20) * (1 << 20);
  const maxConnections = parseIntegerFlag("stack", "max-connections", v["max-connections"], 1, 1_000_000);
  const services: ServiceName[] = [];
  if (v.services !== "none") {
    const names = v.services.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length === 0) {
      throw usage(`--services needs a comma list of ${AVAILABLE_SERVICES.join(", ")}, or 'none'`);
    }
    for (const name of names) {
      if ((AVAILABLE_SERVICES as readonly string[]).includes(name)) {
        if (!services.includes(name as ServiceName)) services.push(name as ServiceName);
      } else {
        throw usage(`unknown service '${name}'; available: ${AVAILABLE_SERVICES.join(", ")}, or 'none'`);
      }
    }
  }
  return {
    backend,
    iface,
    gateway,
    dhcp: v.dhcp,
    mac,
    promiscuous: v.promiscuous,
    address,
    hostAddress,
    ipv6: !v["no-ipv6"],
    address6,
    hostAddress6,
    gateway6,
    netns: v.netns,
    forward,
    mtu,
    memoryBudget,
    maxConnections,
    services,
    capturePath: v.capture,
    captureFilter: checkCaptureFilter(v["capture-filter"], v.capture, backend),
    logLevel: logLevel as CliLogLevel,
    connect,
    connectTimeoutMs,
    impairment,
  };
}

/**
 * Compiles `--capture-filter` now, for the backend's link type (raw IP on tun, Ethernet else), so that a
 * wrong expression is a usage error (libpcap's message, exit 2) before any device is created.
 */
function checkCaptureFilter(expression: string | undefined, capture: string | undefined, backend: Backend) {
  if (expression === undefined) return undefined;
  if (capture === undefined) throw new UsageError("stack", "--capture-filter needs --capture FILE");
  try {
    compileRunnableExpression(expression, backend === "tun" ? Dlt.RAW : Dlt.EN10MB);
  } catch (error) {
    if (error instanceof FilterSyntaxError || error instanceof UnsupportedFilterError) {
      throw new UsageError("stack", `--capture-filter '${expression}': ${error.message}`);
    }
    if (error instanceof PcapMissingError) throw new RuntimeError(error.message);
    throw error;
  }
  return expression;
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

/** The `addr6=` field of the ready line: the main IPv6 address, if any. */
function addresses6(stack: Stack): string[] {
  const main = stack.address6;
  return main === null ? [] : [`addr6=${formatIpv6Cidr(main)}`];
}

/** The `addr6-link=` field of the ready line on Ethernet: the link-local address. */
function linkLocal6(stack: Stack): string {
  const linkLocal = stack.linkLocal6;
  return linkLocal !== null && isLinkLocalAt(linkLocal.address, 0)
    ? `addr6-link=${formatIpv6Cidr(linkLocal)}`
    : "";
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
  if ((config.backend === "tun" || config.backend === "tap") && config.hostAddress !== null && !config.dhcp) {
    // Another interface (another stack's tun0) already carries this subnet: we would say ready while the
    // host sends our traffic there.
    // With --netns the host side lives in that namespace: its routes are the ones that matter.
    let routes;
    try {
      routes = config.netns === undefined
        ? readHostRoutes()
        : inNetns(config.netns, () => parseProcRoutes(Deno.readTextFileSync("/proc/thread-self/net/route")));
    } catch (error) {
      throw new RuntimeError(error instanceof Error ? error.message : String(error), { cause: error });
    }
    const overlap = subnetOverlap(routes, config.iface, config.address, config.hostAddress);
    if (overlap !== null) throw new RuntimeError(overlap);
  }
  let target = config.connect;
  if (target !== undefined) {
    // Resolved before the device exists, so that a bad name costs nothing to undo.
    try {
      // An IPv6 literal needs no lookup; names resolve to IPv4 (as nc -4 would).
      if (parseIpv6(target.hostname) === null) {
        target = { hostname: await resolveIpv4(target.hostname), port: target.port };
      }
    } catch (error) {
      throw new RuntimeError(
        `--connect ${config.connect!.hostname}:${target.port}: ${(error as Error).message}`,
      );
    }
  }
  let opened: OpenedStack;
  let bound: (lease: DhcpLease) => void = () => {};
  const leased = new Promise<DhcpLease>((resolve) => (bound = resolve));
  try {
    opened = openStack({
      backend: config.backend,
      iface: config.iface,
      address: config.address,
      hostAddress: config.hostAddress,
      ipv6: config.ipv6,
      address6: config.address6,
      hostAddress6: config.hostAddress6,
      gateway6: config.gateway6,
      netns: config.netns,
      forward: config.forward,
      gateway: config.gateway,
      mac: config.mac,
      promiscuous: config.promiscuous,
      dhcp: config.dhcp ? { onBound: (lease) => bound(lease) } : false,
      mtu: config.backend === "pcap" || config.backend === "packet" ? undefined : config.mtu,
      tcp: { memoryBudget: config.memoryBudget, maxConnections: tcpConnectionBound(config.maxConnections) },
      capturePath: config.capturePath,
      captureFilter: config.captureFilter,
      impairment: config.impairment,
      // The CLI owns the process: the loop may block in the kernel (half the round trip). --connect keeps
      // the awaited wait, since its standard input is read by the event loop; so does --forward, whose
      // relay sockets are served by the event loop too.
      wait: config.connect || config.forward ? "async" : "block",
    });
  } catch (error) {
    throw openFailure(error, config);
  }
  const { stack } = opened;
  // The application runs the services, on the stack's public API (the stack knows nothing of them).
  const services: RunningServices = startServices(stack, config.services, {
    maxConnections: config.maxConnections,
  });
  // The program owns the process: give memory back once many connections have ended (lib/stack/reclaim.ts).
  const gc = await exposeGc();
  const reclaimer = startMemoryReclaimer(() => stack.tcpUsage(), () => reclaimProcessMemory(gc));
  stack.addStats("memory", () => {
    const { rss, heapUsed } = Deno.memoryUsage();
    return { rssBytes: rss, heapUsedBytes: heapUsed, gcExposed: gc !== null, ...reclaimer.stats() };
  });
  let signalled: (signal: string) => void = () => {};
  const stop = new Promise<string>((resolve) => (signalled = resolve));
  const onInt = () => signalled("SIGINT");
  const onTerm = () => signalled("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  // The listeners go last: timeout(1) and supervisors often send a second SIGTERM (to the process group)
  // right after the first, and with no listener left it would kill the process mid-shutdown (exit 143).
  const shutDown = async () => {
    reclaimer.stop();
    await opened.close();
    await services.close();
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  };
  const logReady = () => {
    const fields = [
      `iface=${stack.deviceName}`,
      config.netns !== undefined ? `netns=${config.netns}` : "",
      `addr=${formatIpv4Cidr(stack.address)}`,
      ...addresses6(stack),
      config.backend !== "pcap" && config.backend !== "packet"
        ? `host=${config.hostAddress ? formatIpv4Cidr(config.hostAddress) : "unconfigured"}`
        : "",
      stack.mac !== null ? `mac=${formatMac(stack.mac)}` : "",
      stack.gateway !== null ? `gateway=${formatIpv4(stack.gateway)}` : "",
      linkLocal6(stack),
      `mtu=${stack.mtu}`,
      config.forward ? `forward=on max-flows=${config.forward.maxFlows}` : "",
      `services=${config.services.join(",") || "none"}`,
    ];
    log.info(`ready ${fields.filter((f) => f !== "").join(" ")}`);
  };
  if (config.dhcp) {
    log.info("waiting for a DHCP lease on {iface}", { iface: stack.deviceName });
    // The stack becomes ready when bound (the DHCP client logs the lease itself).
    const first = await Promise.race([leased, stop, stack.closed.then(() => "device closed")]);
    if (typeof first === "string") {
      await shutDown();
      log.info("stopped before a lease was obtained ({reason})", { reason: first });
      log.info("stats {stats}", { stats: { ...stack.stats(), services: services.stats() } });
      return 0;
    }
  }
  if (stack.dadPending) {
    // On Ethernet every address goes through DAD first (RFC 4862 §5.4, about a second): wait for it so that
    // the ready line shows usable addresses, and refuse a static address another node holds.
    let conflict: string | null = null;
    stack.onDadConflict = (address, by) => {
      if (config.address6 !== null && ipv6Equals(address, config.address6.address)) {
        conflict = `${formatIpv6(address)} is already used on ${stack.deviceName}${
          by >= 0 ? ` by ${formatMac(by)}` : ""
        }`;
      }
    };
    const deadline = Date.now() + 5000;
    while (stack.dadPending && conflict === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    stack.onDadConflict = null;
    if (conflict !== null) {
      await shutDown();
      throw new RuntimeError(`duplicate address detection: ${conflict}; choose another --addr6`);
    }
  }
  logReady();
  let code = 0;
  try {
    const bridge = target
      ? bridgeStdio(stack, target, config.connectTimeoutMs)
      : new Promise<never>(() => {});
    const outcome = await Promise.race([stop, stack.closed.then(() => "device closed"), bridge]);
    if (outcome instanceof Error) {
      console.error(
        `netstack: --connect ${config.connect!.hostname}:${config.connect!.port}: ${outcome.message}`,
      );
      code = 1;
    }
    log.info("stopping ({reason})", { reason: outcome instanceof Error ? outcome.message : outcome });
  } finally {
    await shutDown();
  }
  log.info("stats {stats}", { stats: { ...stack.stats(), services: services.stats() } });
  return code;
}

/**
 * `--connect`: a TCP connection from the stack bridged to stdin/stdout like nc. Standard input's end
 * half-closes the connection; the program ends once both directions are closed and what we sent was
 * acknowledged (so nothing is cut off by the shutdown). A closed stdout (`… | head`) ends it quietly, as
 * it ends nc. Resolves to a reason, or to the Error that ended the connection (refused, timed out after
 * `timeoutMs` or the retransmissions, reset).
 */
async function bridgeStdio(
  stack: Stack,
  target: { hostname: string; port: number },
  timeoutMs?: number,
): Promise<string | Error> {
  const log = logger("connect");
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const connecting = stack.connect(target);
    const conn = await (timeoutMs === undefined ? connecting : Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Deno.errors.TimedOut(`connection timed out after ${timeoutMs / 1000} s`)),
          timeoutMs,
        );
      }),
    ]));
    clearTimeout(timer);
    log.info("connected {local} > {remote}", {
      local: `${conn.localAddr.hostname}:${conn.localAddr.port}`,
      remote: `${target.hostname}:${target.port}`,
    });
    let stdoutClosed = false;
    let stdoutGone: () => void = () => {};
    const gone = new Promise<void>((resolve) => (stdoutGone = resolve));
    const down = conn.readable.pipeTo(Deno.stdout.writable, { preventClose: true }).catch((error) => {
      // EPIPE: the reader of our stdout is gone. nc dies of SIGPIPE there; we end quietly.
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      stdoutClosed = true;
      stdoutGone();
    });
    const up = Deno.stdin.readable.pipeTo(conn.writable);
    await Promise.race([Promise.all([up, down]), gone]);
    if (stdoutClosed) {
      conn.close();
      return "stdout closed";
    }
    const finished = await conn.finished();
    conn.close();
    return finished ? "connection closed" : "connection closed (our last data was not acknowledged in time)";
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    clearTimeout(timer);
  }
}

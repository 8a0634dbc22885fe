/**
 * Before configuring the host side of a new device: does the host already route the stack's address
 * through another interface (another stack's `tun0` with the same 10.0.0.0/24)? Then the new stack would
 * say `ready` while the host sends its traffic elsewhere. Read from `/proc/net/route` (the main table, as
 * the kernel's longest-prefix match sees it); no `ip` command is needed.
 *
 * @module
 */

import { formatIpv4, formatIpv4Cidr, type Ipv4Address, type Ipv4Cidr } from "../wire/ipv4_address.ts";

/** One IPv4 route of the host. */
export interface HostRoute {
  /** Output interface. */
  iface: string;
  /** Destination network. */
  destination: Ipv4Address;
  /** Prefix length of the destination. */
  prefixLength: number;
}

const RTF_UP = 0x1;

/** `/proc/net/route` stores addresses as the hex of the in-memory (network order) word: little endian here. */
function fromProcHex(hex: string): number {
  const n = parseInt(hex, 16);
  return (((n & 0xff) << 24) | ((n >>> 8 & 0xff) << 16) | ((n >>> 16 & 0xff) << 8) | (n >>> 24 & 0xff)) >>> 0;
}

function prefixOf(mask: number): number {
  let length = 0;
  while (length < 32 && (mask & (0x80000000 >>> length)) !== 0) length++;
  return length;
}

/** Parses the text of `/proc/net/route` into the routes that are up; malformed lines are skipped. */
export function parseProcRoutes(text: string): HostRoute[] {
  const routes: HostRoute[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8 || !/^[0-9A-Fa-f]{8}$/.test(fields[1]) || !/^[0-9A-Fa-f]{8}$/.test(fields[7])) {
      continue;
    }
    if ((parseInt(fields[3], 16) & RTF_UP) === 0) continue;
    routes.push({
      iface: fields[0],
      destination: fromProcHex(fields[1]),
      prefixLength: prefixOf(fromProcHex(fields[7])),
    });
  }
  return routes;
}

function contains(route: { destination: number; prefixLength: number }, address: Ipv4Address): boolean {
  if (route.prefixLength === 0) return true;
  const mask = (0xffffffff << (32 - route.prefixLength)) >>> 0;
  return ((address & mask) >>> 0) === ((route.destination & mask) >>> 0);
}

/**
 * The route of another interface that would carry the host's traffic to `address` instead of the
 * `prefixLength` route we are about to add on `iface`: one containing it that is at least as specific
 * (longest prefix wins; on a tie the existing route does). `null` when there is none.
 */
export function conflictingRoute(
  routes: readonly HostRoute[],
  iface: string,
  address: Ipv4Cidr,
): HostRoute | null {
  let best: HostRoute | null = null;
  for (const route of routes) {
    if (route.iface === iface || route.prefixLength < address.prefixLength) continue;
    if (!contains(route, address.address)) continue;
    if (best === null || route.prefixLength > best.prefixLength) best = route;
  }
  return best;
}

/** The next subnets of the same size after `address`'s that no route of another interface touches. */
function freeSubnet(routes: readonly HostRoute[], iface: string, address: Ipv4Cidr): Ipv4Cidr | null {
  const size = address.prefixLength === 0 ? 0 : 2 ** (32 - address.prefixLength);
  if (size < 4 || size > 1 << 24) return null;
  for (let step = 1; step <= 16; step++) {
    const candidate = { address: (address.address + step * size) >>> 0, prefixLength: address.prefixLength };
    const touched = routes.some((r) =>
      r.iface !== iface && r.prefixLength > 0 &&
      (contains(r, candidate.address) ||
        contains({ destination: candidate.address, prefixLength: candidate.prefixLength }, r.destination))
    );
    if (!touched) return candidate;
  }
  return null;
}

/**
 * The one-line explanation when the host already routes the stack's `address` through another interface
 * (naming it and the flags that change the subnet), or `null` when it does not. `routes` is the host's
 * table, e.g. from {@link readHostRoutes}.
 */
export function subnetOverlap(
  routes: readonly HostRoute[],
  iface: string,
  address: Ipv4Cidr,
  hostAddress: Ipv4Cidr,
): string | null {
  const route = conflictingRoute(routes, iface, address);
  if (route === null) return null;
  const network = formatIpv4Cidr({ address: route.destination, prefixLength: route.prefixLength });
  let hint = "choose a free subnet with --addr and --host-addr";
  const free = freeSubnet(routes, iface, address);
  if (free !== null) {
    const mask = address.prefixLength === 0 ? 0 : (0xffffffff << (32 - address.prefixLength)) >>> 0;
    const stackPart = (address.address & ~mask) >>> 0;
    const hostPart = (hostAddress.address & ~mask) >>> 0;
    const base = (free.address & mask) >>> 0;
    hint += ` (e.g. --addr ${formatIpv4((base | stackPart) >>> 0)}/${address.prefixLength} --host-addr ${
      formatIpv4((base | hostPart) >>> 0)
    }/${hostAddress.prefixLength})`;
  }
  return `${formatIpv4(address.address)} is already routed through ${route.iface} (${network}), ` +
    `so the host would send the stack's traffic there; ${hint}`;
}

/** The host's IPv4 routes from `/proc/net/route`; empty when it cannot be read. */
export function readHostRoutes(): HostRoute[] {
  try {
    return parseProcRoutes(Deno.readTextFileSync("/proc/net/route"));
  } catch {
    return [];
  }
}

/**
 * What an interface's frames look like to the BPF programs and to capture files: Ethernet, or raw IP
 * with no link-layer header at all (TUN, ipip, sit, GRE, WireGuard). Decided from the interface's
 * ARPHRD type (`/sys/class/net/NAME/type`, linux/if_arp.h), the way libpcap picks a DLT.
 *
 * sysfs reflects the network namespace it was mounted in; `ip netns exec` mounts a fresh one, so the
 * files describe the namespace netstack runs in.
 *
 * @module
 */

import { LinkType } from "../pcap/writer.ts";

/** ARPHRD values netstack knows (linux/if_arp.h). */
export const Arphrd = {
  ETHER: 1,
  RAWIP: 519,
  TUNNEL: 768,
  TUNNEL6: 769,
  LOOPBACK: 772,
  SIT: 776,
  IPGRE: 778,
  IP6GRE: 823,
  NONE: 65534,
} as const;

/** The ARPHRD types whose frames start at the IP header in XDP and TC. */
const RAW_IP: ReadonlySet<number> = new Set([
  Arphrd.NONE, // TUN, WireGuard
  Arphrd.RAWIP,
  Arphrd.TUNNEL, // ipip
  Arphrd.TUNNEL6, // ip6tnl
  Arphrd.SIT,
  Arphrd.IPGRE, // point-to-point GRE (no header_ops)
  Arphrd.IP6GRE,
]);

/** The ARPHRD types with an Ethernet header (the loopback device has one of zeros). */
const ETHERNET: ReadonlySet<number> = new Set([Arphrd.ETHER, Arphrd.LOOPBACK]);

/** How one interface's frames are laid out. */
export interface InterfaceLink {
  /** ARPHRD_* from sysfs. */
  arphrd: number;
  /** Frames start at the IP header (no link-layer header). */
  raw: boolean;
  /** The pcap/pcapng link type of its frames: {@link LinkType.ETHERNET} or {@link LinkType.RAW}. */
  linkType: number;
}

function readSys(name: string, file: string): string | null {
  try {
    return Deno.readTextFileSync(`/sys/class/net/${name}/${file}`).trim();
  } catch {
    return null;
  }
}

/** Classifies an ARPHRD type; `null` when trace cannot decode it. */
export function linkOfArphrd(arphrd: number): InterfaceLink | null {
  if (ETHERNET.has(arphrd)) return { arphrd, raw: false, linkType: LinkType.ETHERNET };
  if (RAW_IP.has(arphrd)) return { arphrd, raw: true, linkType: LinkType.RAW };
  return null;
}

/**
 * The link of interface `name`: `undefined` when sysfs does not have it (no such interface), `null`
 * when its ARPHRD type is one trace does not decode.
 */
export function interfaceLink(name: string): InterfaceLink | null | undefined {
  const text = readSys(name, "type");
  if (text === null || !/^\d+$/.test(text)) return undefined;
  return linkOfArphrd(Number(text));
}

/** IFF_UP and IFF_LOOPBACK (linux/if.h). */
const IFF_UP = 0x1;
const IFF_LOOPBACK = 0x8;

/**
 * The interfaces `-i any` traces: every interface of the namespace that is administratively up, except
 * loopback, in ifindex order.
 */
export function upInterfaces(): string[] {
  const found: [number, string][] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync("/sys/class/net")];
  } catch {
    return [];
  }
  for (const entry of entries) {
    const flags = Number(readSys(entry.name, "flags"));
    const ifindex = Number(readSys(entry.name, "ifindex"));
    if (!Number.isFinite(flags) || !Number.isFinite(ifindex)) continue;
    if ((flags & IFF_UP) === 0 || (flags & IFF_LOOPBACK) !== 0) continue;
    found.push([ifindex, entry.name]);
  }
  return found.sort((a, b) => a[0] - b[0]).map(([, name]) => name);
}

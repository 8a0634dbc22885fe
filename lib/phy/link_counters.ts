/**
 * The kernel's own counters of a network interface, from `/proc/net/dev` (which shows the interfaces of the
 * reading process's network namespace, the one the stack's device lives in). For a TUN/TAP device, the
 * host side's transmit counters are what the kernel handed to the stack, and its transmit drops are packets
 * lost because the device's queue (`txqueuelen`) was full: the stack did not read fast enough.
 *
 * @module
 */

/** Counters of one interface as the kernel keeps them. */
export interface LinkCounters {
  /** Packets the host sent into the device (towards the stack). */
  txPackets: number;
  /** Packets the host could not queue for the stack (the device's queue was full). */
  txDropped: number;
  /** Packets the stack wrote that the host received. */
  rxPackets: number;
  /** Packets the stack wrote that the host dropped. */
  rxDropped: number;
}

/**
 * Reads the counters of interface `name`; `null` when it is not listed or `/proc/net/dev` cannot be read.
 * Reading costs one small file read: call it when counters are asked for, not per packet.
 */
export function readLinkCounters(name: string, text?: string): LinkCounters | null {
  let content = text;
  if (content === undefined) {
    try {
      content = Deno.readTextFileSync("/proc/net/dev");
    } catch {
      return null;
    }
  }
  for (const line of content.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0 || line.slice(0, colon).trim() !== name) continue;
    // Receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs drop …
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 12 || f.some((v) => !Number.isFinite(v))) return null;
    return { rxPackets: f[1], rxDropped: f[3], txPackets: f[9], txDropped: f[11] };
  }
  return null;
}

/**
 * Abuse rigs shared by the privileged abuse tests and `deno task bench:abuse`: a pcap of small UDP and TCP
 * packets for a top-speed replay, the stack's `/stats`, and the host side's counters of the TUN device
 * (packets the kernel dropped because the stack did not read them in time).
 *
 * @module
 */

import { LinkType, PcapWriter } from "../../lib/pcap/writer.ts";
import { TcpFlags } from "../../lib/wire/tcp.ts";
import { seededRandom } from "../../lib/phy/impair.ts";
import { tcpPacket, udpPacket } from "./fuzz/build.ts";
import type { Netns } from "./netns.ts";
import type { LinkCounters } from "../../lib/phy/link_counters.ts";

/**
 * Writes `count` small packets to the stack's address (link type raw IP, for a TUN device): UDP datagrams
 * to a closed port and stray TCP ACKs to a port with no listener, from many source addresses, half each.
 */
export function writeFloodPcap(path: string, count: number, seed = 1): void {
  const random = seededRandom(seed);
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  try {
    const writer = new PcapWriter(file, { linkType: LinkType.RAW });
    const data = new Uint8Array(18);
    for (let i = 0; i < count; i++) {
      const src = (0x0a000000 | (1 + Math.floor(random() * 250) + 256 * Math.floor(random() * 200))) >>> 0;
      const port = 1024 + Math.floor(random() * 60000);
      const packet = i % 2 === 0 ? udpPacket(src, port, 0x0a000002, 4000, data) : tcpPacket(src, 0x0a000002, {
        srcPort: port,
        dstPort: 4001,
        seq: Math.floor(random() * 2 ** 32),
        ack: Math.floor(random() * 2 ** 32),
        flags: TcpFlags.ACK,
        window: 1000,
      });
      writer.write(packet, i);
    }
    writer.close();
  } finally {
    file.close();
  }
}

/** The parts of the stack's `/stats` the abuse rigs read. */
export interface AbuseStats {
  /** Device counters, with the kernel's own for the TUN device. */
  device: { rxPackets: number; txPackets: number; kernel: LinkCounters | null };
  /** TCP counters. */
  tcp: Record<string, number | Record<string, number>> & { drops: Record<string, number> };
}

/** The stack's `/stats` (through curl inside the namespace). */
export async function stackStats(ns: Netns, address = "10.0.0.2"): Promise<AbuseStats> {
  return JSON.parse(await ns.exec(["curl", "-sS", "-m", "5", "-f", `http://${address}/stats`]));
}

/** A counter of the host side of `iface` from sysfs (e.g. `tx_dropped`: packets the TUN queue refused). */
export async function hostCounter(ns: Netns, iface: string, name: string): Promise<number> {
  return Number((await ns.exec(["cat", `/sys/class/net/${iface}/statistics/${name}`])).trim());
}

/** Runs `tcpreplay --topspeed` of `pcap` on `iface`; returns the packets it reports sent, and its rate. */
export async function replayTopSpeed(
  ns: Netns,
  iface: string,
  pcap: string,
): Promise<{ sent: number; packetsPerSecond: number }> {
  const out = await ns.exec(["tcpreplay", "-i", iface, "--topspeed", pcap], { timeoutMs: 60_000 });
  const sent = out.match(/Successful packets:\s+(\d+)/);
  const rate = out.match(/Rated:.*?([\d.]+) pps/);
  if (sent === null) throw new Error(`tcpreplay said: ${out}`);
  return { sent: Number(sent[1]), packetsPerSecond: rate === null ? 0 : Number(rate[1]) };
}

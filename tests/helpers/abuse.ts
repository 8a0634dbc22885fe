/**
 * Abuse rigs shared by the privileged abuse tests and `deno task bench:abuse`: a pcap of small UDP and TCP
 * packets for a top-speed replay, the stack's `/stats`, and the host side's counters of the TUN device
 * (packets the kernel dropped because the stack did not read them in time).
 *
 * @module
 */

import { LinkType, PcapWriter } from "../../lib/pcap/writer.ts";
import { TcpFlags } from "../../lib/wire/tcp.ts";
import { Prng } from "../../lib/prng.ts";
import { tcpPacket, udpPacket } from "./fuzz/build.ts";
import type { Netns } from "./netns.ts";
import type { LinkCounters } from "../../lib/phy/link_counters.ts";

/**
 * Writes `count` small packets to the stack's address (link type raw IP, for a TUN device): UDP datagrams
 * to a closed port and stray TCP ACKs to a port with no listener, from many source addresses, half each.
 */
export function writeFloodPcap(path: string, count: number, seed = 1): void {
  const prng = new Prng(seed);
  const random = (): number => prng.next();
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

/** The resident memory of process `pid`, in KiB (VmRSS). */
export function rssKiB(pid: number): number {
  const match = Deno.readTextFileSync(`/proc/${pid}/status`).match(/VmRSS:\s+(\d+) kB/);
  if (match === null) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}

/** Connections held open by `tests/helpers/abuse_client.py` inside a namespace. */
export interface HeldConnections {
  /** Connections established. */
  connected: number;
  /** Connections that failed or did not complete in time. */
  failed: number;
  /** Seconds it took. */
  seconds: number;
  /** Closes them all and waits for the client to exit. */
  close(): Promise<number>;
}

const CLIENT = new URL("./abuse_client.py", import.meta.url).pathname;

/**
 * Opens `count` TCP connections from the host side of `ns` to `host:port`, spread over `sources`, and
 * keeps them open (never reading) until `close`. Bounded by `timeoutS` for connecting.
 */
export async function holdConnections(
  ns: Netns,
  count: number,
  host: string,
  port: number,
  sources: string[],
  timeoutS = 60,
): Promise<HeldConnections> {
  const child = new Deno.Command("ip", {
    args: [
      ...ns.prefix().slice(1),
      "python3",
      CLIENT,
      String(count),
      host,
      String(port),
      sources.join(","),
      String(timeoutS),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    const deadline = Date.now() + (timeoutS + 30) * 1000;
    while (!buffered.includes("\n")) {
      if (Date.now() > deadline) throw new Error("the connection client did not answer");
      const { value, done } = await lines.read();
      if (done) throw new Error("the connection client exited early");
      buffered += value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  const first = JSON.parse(await nextLine());
  const writer = child.stdin.getWriter();
  return {
    ...first,
    async close() {
      await writer.write(new TextEncoder().encode("close\n"));
      await writer.close();
      const { closed } = JSON.parse(await nextLine());
      lines.releaseLock();
      await child.stdout.cancel().catch(() => {});
      await child.status;
      return closed;
    },
  };
}

/** Adds addresses to the host side of `iface` (sources for many connections). */
export async function addHostAddresses(ns: Netns, iface: string, addresses: string[]): Promise<void> {
  for (const address of addresses) await ns.exec(["ip", "addr", "add", `${address}/24`, "dev", iface]);
}

/** Exchanges timed by {@link timedExchanges}, in seconds each. */
export interface Exchanges {
  /** HTTP GET of `/`, connect to last byte. */
  http: number[];
  /** Echo of 5 bytes on port 7, connect to last byte. */
  echo: number[];
  /** What failed, if anything. */
  errors: string[];
}

const EXCHANGES = new URL("./abuse_exchanges.py", import.meta.url).pathname;

/**
 * Starts `count` HTTP and echo exchanges with the stack, one of each every `intervalMs`, from one Python
 * process inside `ns` (started now, so that no process start-up falls inside the measurement); each is
 * timed by the client, a failure or a timeout counting as `limitS`. Resolves when all are done. `host`
 * may be an IPv6 address (`fd00::2`).
 */
export async function timedExchanges(
  ns: Netns,
  count: number,
  intervalMs: number,
  limitS = 3,
  host = "10.0.0.2",
): Promise<Exchanges> {
  const result = await ns.run(
    ["python3", EXCHANGES, host, String(count), String(intervalMs), String(limitS)],
    { timeoutMs: (count * intervalMs) / 1000 * 1000 + (limitS + 30) * 1000 },
  );
  if (result.code !== 0) throw new Error(`the exchange client failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * A flood from hping3 inside `ns` (`args` such as `-S -p 80`), random sources, stopped after `seconds`.
 * `intervalMicros` 0 floods as fast as hping3 can (`--flood`); otherwise one packet per interval (`-i uN`).
 */
export function flood(ns: Netns, args: string[], seconds: number, intervalMicros = 0): Promise<unknown> {
  const rate = intervalMicros > 0 ? ["-i", `u${intervalMicros}`] : ["--flood"];
  return ns.run(
    // hping3 does not always stop on SIGINT at these rates (seen: it flooded on for minutes, holding the
    // pipe the test waits on), so timeout follows with SIGKILL two seconds later.
    [
      "timeout",
      "-s",
      "INT",
      "-k",
      "2",
      String(seconds),
      "hping3",
      ...rate,
      "--rand-source",
      "-q",
      ...args,
      "10.0.0.2",
    ],
    { timeoutMs: (seconds + 10) * 1000 },
  );
}

const SYNFLOOD6 = new URL("./synflood6.py", import.meta.url).pathname;

/**
 * A random-source IPv6 SYN flood from `tests/helpers/synflood6.py` inside `ns` to `[dst]:port`, sources
 * random in the /64 `prefix`, `rate` SYNs per second (0: as fast as one Python process goes), stopped
 * after `seconds`. Resolves to what it sent.
 */
export async function synFlood6(
  ns: Netns,
  dst: string,
  port: number,
  seconds: number,
  rate: number,
  prefix = "fd00::",
): Promise<{ sent: number; seconds: number }> {
  const result = await ns.run(
    [
      "timeout",
      "-s",
      "KILL",
      String(seconds + 5),
      "python3",
      SYNFLOOD6,
      dst,
      String(port),
      String(seconds),
      String(rate),
      prefix,
    ],
    { timeoutMs: (seconds + 10) * 1000 },
  );
  if (result.code !== 0) throw new Error(`the IPv6 SYN flood failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** What `tests/helpers/slowloris.py` saw. */
export interface SlowlorisResult {
  /** Connections whose handshake completed. */
  connected: number;
  /** Connections that did not complete their handshake. */
  failed: number;
  /** Connections closed or reset before the server read a byte (turned away by a full pool). */
  refused: number;
  /** Connections closed by the server after reading some of the request. */
  closed: number;
  /** Connections still open when the client gave up. */
  open: number;
  /** Of the closed ones, those answered 408 first. */
  status408: number;
  /** Of the closed ones, those answered with another status. */
  otherStatus: number;
  /** Seconds from each closed connection's first byte to its close, sorted. */
  closedAfter: number[];
  /** Most connections open at once. */
  maxOpen: number;
  /** Seconds the client ran. */
  seconds: number;
}

const SLOWLORIS = new URL("./slowloris.py", import.meta.url).pathname;

/**
 * Starts a slowloris client inside `ns`: `count` connections to `host:port`, each sending an HTTP request
 * header one byte every `intervalS` seconds, until the server closes it or `limitS` seconds have passed.
 * Resolves to what the client saw.
 */
export async function slowloris(
  ns: Netns,
  host: string,
  port: number,
  count: number,
  intervalS: number,
  limitS: number,
): Promise<SlowlorisResult> {
  const result = await ns.run(
    ["python3", SLOWLORIS, host, String(port), String(count), String(intervalS), String(limitS)],
    { timeoutMs: (limitS + 30) * 1000 },
  );
  if (result.code !== 0) throw new Error(`the slowloris client failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

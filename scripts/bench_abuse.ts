/**
 * `deno task bench:abuse [CASE...]`: the stack under abuse, full size, in namespaces it creates and deletes
 * (needs root, hping3, tcpreplay, python3, curl). Cases: `replay` (top-speed tcpreplay of small UDP/TCP
 * packets: share reaching the stack), `synflood` and `ackflood` (random-source floods with hping3: HTTP and
 * echo exchange times during the flood, time until port 80 answers after it), `idle` (memory of 10,000
 * idle connections, and after they close), `stalled` (memory of 500 chargen readers that never read),
 * `synflood6` (a random-source IPv6 SYN flood from a /64 at the full speed of tests/helpers/synflood6.py,
 * with curl -6-like exchanges during it) and `synflood6-kernel` (the same flood at the Linux kernel's TCP,
 * over a veth between two namespaces, its SYN cookies answering), `syncost` (no devices: the core's own
 * time per SYN answered by a cookie, from random sources, over IPv4 and IPv6).
 * `--repo DIR` runs the stack of another checkout (e.g. for before/after figures). Prints one JSON line
 * per case. The machine's load changes these figures a lot: say how loaded it was when you quote them.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runOk, withNetns } from "../tests/helpers/netns.ts";
import { REPO, StackProcess } from "../tests/helpers/stack_process.ts";
import {
  addHostAddresses,
  flood,
  holdConnections,
  replayTopSpeed,
  rssKiB,
  stackStats,
  synFlood6,
  timedExchanges,
  writeFloodPcap,
} from "../tests/helpers/abuse.ts";
import type { Netns } from "../tests/helpers/netns.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: {
    repo: { type: "string", default: REPO },
    packets: { type: "string", default: "200000" },
    seconds: { type: "string", default: "8" },
    idle: { type: "string", default: "10000" },
    stalled: { type: "string", default: "500" },
    help: { type: "boolean", short: "h" },
  },
  allowPositionals: true,
});
if (values.help) {
  console.log(
    "usage: deno task bench:abuse [replay|synflood|ackflood|idle|stalled|synflood6|synflood6-kernel|syncost ...] [--repo DIR]",
  );
  Deno.exit(0);
}
const repo = values.repo.endsWith("/") ? values.repo : `${values.repo}/`;
const cases = positionals.length > 0
  ? positionals
  : ["replay", "synflood", "ackflood", "idle", "stalled", "synflood6", "synflood6-kernel", "syncost"];

async function startStack(ns: Netns, args: string[] = []): Promise<StackProcess> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns.name,
      Deno.execPath(),
      "run",
      "--allow-all",
      "--config",
      `${repo}deno.json`,
      `${repo}main.ts`,
      "stack",
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stack = new StackProcess(child);
  await stack.waitFor("ready", 30_000);
  return stack;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function replay(ns: Netns, stack: StackProcess) {
  const packets = Number(values.packets);
  const pcap = `/tmp/netstack-bench-abuse-${Deno.pid}.pcap`;
  writeFloodPcap(pcap, packets);
  try {
    const before = (await stackStats(ns)).device.rxPackets;
    const { sent, packetsPerSecond } = await replayTopSpeed(ns, "tun0", pcap);
    await sleep(1000);
    const stats = await stackStats(ns);
    const reached = stats.device.rxPackets - before; // includes a few packets of the /stats requests
    return {
      sent,
      replayRate: Math.round(packetsPerSecond),
      reached,
      share: +(reached / sent).toFixed(3),
      stackPid: stack.pid,
    };
  } finally {
    Deno.removeSync(pcap);
  }
}

async function floodCase(ns: Netns, kind: "syn" | "ack") {
  const seconds = Number(values.seconds);
  const args = kind === "syn" ? ["-S", "-p", "80"] : ["-A", "-p", "80"];
  const floodDone = flood(ns, args, seconds);
  // An HTTP and an echo exchange every 300 ms during the flood, from one client process.
  await sleep(300);
  const results = await timedExchanges(ns, Math.floor((seconds - 0.8) / 0.3), 300, 3);
  await floodDone;
  const http = results.http;
  const echo = results.echo;
  // After the flood: how long until port 80 answers within a second (bounded at 120 s): the failed
  // attempts' time (1 s each) plus the answering exchange's own time, process start-ups excluded.
  let recovered = -1;
  for (let attempt = 0; attempt < 120; attempt++) {
    const t = await timedExchanges(ns, 1, 0, 1);
    if (t.http[0] < 1) {
      recovered = attempt + t.http[0];
      break;
    }
  }
  const stats = await stackStats(ns);
  const tcp = stats.tcp;
  const round = (v: number[]) => v.map((x) => +x.toFixed(3));
  return {
    flood: kind,
    seconds,
    http: {
      max: Math.max(...http),
      over1s: http.filter((x) => x >= 1).length,
      n: http.length,
      all: round(http),
    },
    echo: { max: Math.max(...echo), over1s: echo.filter((x) => x >= 1).length, n: echo.length },
    port80RecoveredAfterS: recovered,
    segmentsIn: tcp.segmentsIn,
    resetsOut: tcp.resetsOut,
    resetsRateLimited: tcp.resetsRateLimited,
    syncookiesSent: tcp.syncookiesSent,
    drops: tcp.drops,
    kernel: stats.device.kernel,
  };
}

/** Summary of timed exchanges: the worst, how many took 1 s or more, the share under 1 s. */
function summary(values: number[]) {
  return {
    max: +Math.max(...values).toFixed(3),
    over1s: values.filter((x) => x >= 1).length,
    n: values.length,
    shareUnder1s: +(values.filter((x) => x < 1).length / values.length).toFixed(2),
  };
}

/**
 * The IPv6 SYN flood at full speed at `host` (the stack, or the kernel in the server namespace), with an
 * HTTP and an echo exchange every 300 ms during it from `client`; the sources random in `prefix`/64.
 */
async function flood6(
  client: Netns,
  host: string,
  prefix: string,
  stats: () => Promise<Record<string, unknown>>,
) {
  const seconds = Number(values.seconds);
  const floodDone = synFlood6(client, host, 80, seconds, 0, prefix);
  await sleep(300);
  const results = await timedExchanges(client, Math.floor((seconds - 0.8) / 0.3), 300, 3, host);
  const sent = await floodDone;
  const after = await timedExchanges(client, 1, 0, 3, host);
  return {
    flood: "syn6",
    sent: sent.sent,
    sentPerS: Math.round(sent.sent / sent.seconds),
    http: summary(results.http),
    echo: summary(results.echo),
    afterHttpS: +after.http[0].toFixed(3),
    ...(await stats()),
  };
}

async function synflood6Stack(ns: Netns) {
  return await flood6(ns, "fd00::2", "fd00::", async () => {
    const stats = await stackStats(ns, "[fd00::2]");
    const tcp = stats.tcp;
    return {
      segmentsIn: tcp.segmentsIn,
      syncookiesSent6: tcp.syncookiesSent6,
      syncookiesValidated6: tcp.syncookiesValidated6,
      kernel: stats.device.kernel,
    };
  });
}

/** The same flood at the kernel: a server namespace behind a veth, the flood's /64 routed to the client. */
async function synflood6Kernel(client: Netns) {
  return await withNetns("ns-bench-k6srv", async (server) => {
    await runOk([
      "ip",
      "link",
      "add",
      "kv0",
      "netns",
      server.name,
      "type",
      "veth",
      "peer",
      "name",
      "kv1",
      "netns",
      client.name,
    ]);
    await server.exec(["ip", "-6", "addr", "add", "fd00::2/64", "dev", "kv0", "nodad"]);
    await client.exec(["ip", "-6", "addr", "add", "fd00::1/64", "dev", "kv1", "nodad"]);
    await server.exec(["ip", "link", "set", "kv0", "up"]);
    await client.exec(["ip", "link", "set", "kv1", "up"]);
    // Replies to the flood's sources go to the client side, which drops them (one neighbour, no ND storm).
    await server.exec(["ip", "-6", "route", "add", "fd01::/64", "via", "fd00::1"]);
    await server.exec(["sysctl", "-q", "-w", "net.ipv4.tcp_syncookies=1"]);
    const servers = new Deno.Command("ip", {
      args: [
        ...server.prefix().slice(1),
        "python3",
        new URL("../tests/helpers/kernel_servers.py", import.meta.url).pathname,
        "::",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = servers.stdout.pipeThrough(new TextDecoderStream()).getReader();
      const first = await reader.read();
      if (!first.value?.includes("listening")) throw new Error("the kernel servers did not start");
      reader.releaseLock();
      const snmp = async () => {
        const text = await server.exec([
          "nstat",
          "-az",
          "TcpExtSyncookiesSent",
          "TcpExtSyncookiesRecv",
          "TcpExtListenOverflows",
          "TcpExtListenDrops",
        ]);
        return Object.fromEntries(
          [...text.matchAll(/^(TcpExt\w+)\s+(\d+)/gm)].map((m) => [m[1], Number(m[2])]),
        );
      };
      return await flood6(client, "fd00::2", "fd01::", async () => ({ kernelCounters: await snmp() }));
    } finally {
      servers.kill("SIGKILL");
      await servers.status;
      await servers.stdout.cancel().catch(() => {});
    }
  });
}

/**
 * The core's time per SYN answered by a cookie (a full backlog), from 4,096 random sources, over IPv4 and
 * IPv6: what a flood costs the stack before the device's read and write. The best of five rounds of
 * 200,000 SYNs each, in this process (the checkout's own code: `--repo` does not apply).
 */
async function synCost() {
  const { StackCore } = await import("../lib/stack/core.ts");
  const { parseIpv4Cidr } = await import("../lib/wire/ipv4_address.ts");
  const { parseIpv6Cidr } = await import("../lib/wire/ipv6_address.ts");
  const { writeIpv6Header } = await import("../lib/wire/ipv6.ts");
  const { fillTcpChecksumIpv6, TcpFlags, writeMssOption, writeTcpHeader } = await import(
    "../lib/wire/tcp.ts"
  );
  const { tcpPacket } = await import("../tests/helpers/fuzz/build.ts");
  const { Prng } = await import("../lib/prng.ts");
  const prng = new Prng(7);
  const random = () => Math.floor(prng.next() * 2 ** 32) >>> 0;
  let sent = 0;
  const core = new StackCore(
    {
      medium: "ip",
      mtu: 1500,
      announce: false,
      address: parseIpv4Cidr("10.0.0.2/24")!,
      address6: parseIpv6Cidr("fd00::2/64")!,
    },
    () => sent++,
    0,
  );
  core.tcp.listen(80, 128);
  const count = 4096;
  const v4: Uint8Array[] = [];
  const v6: Uint8Array[] = [];
  const ours6 = parseIpv6Cidr("fd00::2/64")!.address;
  for (let i = 0; i < count; i++) {
    v4.push(tcpPacket((0x0b000000 | (random() & 0xffffff)) >>> 0, 0x0a000002, {
      srcPort: 1024 + i,
      dstPort: 80,
      seq: random(),
      ack: 0,
      flags: TcpFlags.SYN,
      window: 64240,
    }));
    const packet = new Uint8Array(64);
    const src = new Uint8Array(16);
    src[0] = 0xfd;
    for (let k = 8; k < 16; k++) src[k] = random() & 0xff;
    writeIpv6Header(packet, 0, src, ours6, 6, 24);
    writeTcpHeader(packet, 40, 1024 + i, 80, random(), 0, TcpFlags.SYN, 64240, 4);
    writeMssOption(packet, 60, 1440);
    fillTcpChecksumIpv6(packet, 40, 24, 0);
    v6.push(packet);
  }
  const measure = (packets: Uint8Array[]) => {
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      const started = performance.now();
      for (let k = 0; k < 200_000; k++) core.ingress(packets[k & (count - 1)], 1000 + round);
      best = Math.min(best, (performance.now() - started) * 1000 / 200_000);
    }
    return +best.toFixed(2);
  };
  const ipv4Us = measure(v4);
  const ipv6Us = measure(v6);
  const tcp = core.tcp.stats();
  return {
    ipv4UsPerSyn: ipv4Us,
    ipv6UsPerSyn: ipv6Us,
    synAcks: sent,
    cookies: tcp.syncookiesSent,
    cookies6: tcp.syncookiesSent6,
  };
}

async function held(ns: Netns, stack: StackProcess, kind: "idle" | "stalled") {
  const count = Number(kind === "idle" ? values.idle : values.stalled);
  const sources = Array.from({ length: 8 }, (_, i) => `10.0.0.${101 + i}`);
  await addHostAddresses(ns, "tun0", sources);
  await sleep(2000);
  const baseline = rssKiB(stack.pid);
  const conns = await holdConnections(ns, count, "10.0.0.2", kind === "idle" ? 9 : 19, sources, 120);
  await sleep(kind === "idle" ? 3000 : 8000); // stalled: until the send buffers are full
  const loaded = rssKiB(stack.pid);
  const tcp = (await stackStats(ns)).tcp;
  await conns.close();
  const closedAt = Date.now();
  const after: number[] = [];
  while (Date.now() - closedAt < 10_000) {
    await sleep(1000);
    after.push(rssKiB(stack.pid));
  }
  return {
    case: kind,
    connected: conns.connected,
    failed: conns.failed,
    baselineMiB: +(baseline / 1024).toFixed(1),
    loadedMiB: +(loaded / 1024).toFixed(1),
    aboveBaselineMiB: +((loaded - baseline) / 1024).toFixed(1),
    perConnectionKiB: +((loaded - baseline) / conns.connected).toFixed(1),
    after10sMiB: +(after[after.length - 1] / 1024).toFixed(1),
    after10sRatio: +(after[after.length - 1] / baseline).toFixed(2),
    tcp: {
      syncookiesSent: tcp.syncookiesSent,
      syncookiesValidated: tcp.syncookiesValidated,
      syncookiesFailed: tcp.syncookiesFailed,
      halfOpenExpired: tcp.halfOpenExpired,
      drops: Object.fromEntries(Object.entries(tcp.drops).filter(([, n]) => n > 0)),
      memory: tcp.memory,
    },
  };
}

console.log(JSON.stringify({ repo, load: Deno.loadavg() }));
for (const name of cases) {
  if (name === "syncost") {
    console.log(JSON.stringify({ case: name, ...(await synCost()), load: Deno.loadavg() }));
    continue;
  }
  const result = await withNetns(`ns-bench-${name}`, async (ns) => {
    if (name === "synflood6-kernel") return await synflood6Kernel(ns);
    // The held cases hold every connection: each service's pool raised to their count.
    const holding = name === "idle" ? values.idle : name === "stalled" ? values.stalled : null;
    const stack = await startStack(ns, holding === null ? [] : ["--max-connections", holding]);
    try {
      if (name === "replay") return await replay(ns, stack);
      if (name === "synflood") return await floodCase(ns, "syn");
      if (name === "ackflood") return await floodCase(ns, "ack");
      if (name === "idle") return await held(ns, stack, "idle");
      if (name === "stalled") return await held(ns, stack, "stalled");
      if (name === "synflood6") return await synflood6Stack(ns);
      throw new Error(`unknown case ${name}`);
    } finally {
      await stack.stop();
    }
  });
  console.log(JSON.stringify({ case: name, ...result, load: Deno.loadavg() }));
}

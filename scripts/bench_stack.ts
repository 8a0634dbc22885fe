/**
 * `deno task bench:stack`: measures netstack on a real TUN device inside namespaces it creates (and
 * deletes), next to the Linux kernel over a veth pair in the same run, so the two compare as a ratio
 * (ANCHORS.md: the machine is noisy). Every loop is bounded in count and time. Needs root.
 *
 * Workloads: bulk host→stack (discard) and stack→host (chargen), 1-byte request/response over echo
 * (transactions/s and p50 latency, client and stack pinned to one CPU), connections per second, ping
 * round-trip, and UDP echo with the stack's CPU time per packet.
 *
 * @module
 */

import { type Netns, run, withNetns } from "../tests/helpers/netns.ts";
import { startStack } from "../tests/helpers/stack_process.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "3");

// The kernel-side clients, in Python for their small per-operation cost. Each prints one JSON line.
const CLIENT = `
import socket, time, sys, json, threading
mode, host, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
end = time.monotonic() + seconds
if mode == "send":
    s = socket.create_connection((host, port)); buf = b"x" * (1 << 20); sent = 0; t0 = time.monotonic()
    while time.monotonic() < end:
        s.sendall(buf); sent += len(buf)
    s.shutdown(socket.SHUT_WR); s.recv(1); dt = time.monotonic() - t0
    print(json.dumps({"gbits": sent * 8 / dt / 1e9}))
elif mode == "recv":
    s = socket.create_connection((host, port)); got = 0; t0 = time.monotonic()
    while time.monotonic() < end:
        b = s.recv(1 << 20)
        if not b: break
        got += len(b)
    dt = time.monotonic() - t0; s.close()
    print(json.dumps({"gbits": got * 8 / dt / 1e9}))
elif mode == "rr":
    s = socket.create_connection((host, port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []; t0 = time.monotonic()
    while time.monotonic() < end and len(lat) < 2_000_000:
        a = time.perf_counter(); s.send(b"x"); s.recv(1); lat.append(time.perf_counter() - a)
    dt = time.monotonic() - t0; s.close(); lat.sort()
    print(json.dumps({"tps": len(lat) / dt, "p50us": lat[len(lat) // 2] * 1e6}))
elif mode == "crr":
    n = 0; t0 = time.monotonic()
    while time.monotonic() < end and n < 1_000_000:
        s = socket.create_connection((host, port)); s.close(); n += 1
    print(json.dumps({"cps": n / (time.monotonic() - t0)}))
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect((host, port)); s.settimeout(0.2)
    sent = got = 0; window = 64
    for _ in range(window): s.send(b"x" * 64); sent += 1
    while time.monotonic() < end:
        try: s.recv(2048); got += 1
        except socket.timeout:
            for _ in range(window): s.send(b"x" * 64); sent += 1
            continue
        s.send(b"x" * 64); sent += 1
    print(json.dumps({"sent": sent, "received": got, "pps": got / seconds}))
`;

async function client(
  ns: Netns,
  mode: string,
  host: string,
  port: number,
  pin = false,
): Promise<Record<string, number>> {
  const cmd = [
    ...(pin ? ["taskset", "-c", "0"] : []),
    "python3",
    "-c",
    CLIENT,
    mode,
    host,
    String(port),
    String(SECONDS),
  ];
  const out = await ns.exec(cmd, { timeoutMs: (SECONDS + 20) * 1000 });
  return JSON.parse(out.trim().split("\n").pop()!);
}

async function ping(ns: Netns, host: string): Promise<number> {
  const out = await ns.exec(["taskset", "-c", "0", "ping", "-c", "200", "-i", "0.005", "-q", host], {
    timeoutMs: 30_000,
  });
  return Number(/= [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? NaN) * 1000;
}

interface Row {
  bulkIn: number;
  bulkOut: number;
  tps: number;
  p50: number;
  cps: number;
  pingUs: number;
}

/** Pins every thread of `pid` to `cpus` (e.g. "0" or "0,1"). */
async function pin(pid: number, cpus: string): Promise<void> {
  await run(["taskset", "-a", "-p", "-c", cpus, String(pid)]);
}

/**
 * Bulk unpinned; request/response, connections and ping with the client and `serverPid` pinned to one
 * CPU, as in ANCHORS.md (a wake-up across vCPUs costs 100–300 µs here and makes them bimodal).
 */
async function measure(ns: Netns, host: string, serverPid: number): Promise<Row> {
  const bulkIn = (await client(ns, "send", host, 9)).gbits;
  const bulkOut = (await client(ns, "recv", host, 19)).gbits;
  await pin(serverPid, "0");
  try {
    const rr = await client(ns, "rr", host, 7, true);
    const crr = await client(ns, "crr", host, 7, true);
    const pingUs = await ping(ns, host);
    return { bulkIn, bulkOut, tps: rr.tps, p50: rr.p50us, cps: crr.cps, pingUs };
  } finally {
    await pin(serverPid, "0,1");
  }
}

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, clock ticks of 10 ms
}

const kernel = await withNetns("ns-bench-kref", async (a) => {
  return await withNetns("ns-bench-kpeer", async (b) => {
    await run([
      "ip",
      "link",
      "add",
      "bk0",
      "netns",
      a.name,
      "type",
      "veth",
      "peer",
      "name",
      "bk1",
      "netns",
      b.name,
    ]);
    await a.exec(["ip", "addr", "add", "10.9.0.1/24", "dev", "bk0"]);
    await b.exec(["ip", "addr", "add", "10.9.0.2/24", "dev", "bk1"]);
    await a.exec(["ip", "link", "set", "bk0", "up"]);
    await b.exec(["ip", "link", "set", "bk1", "up"]);
    const server = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        b.name,
        Deno.execPath(),
        "run",
        "--allow-net",
        new URL("bench_kernel_server.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
    }).spawn();
    try {
      const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
      await reader.read(); // "ready"
      reader.releaseLock();
      return await measure(a, "10.9.0.2", server.pid);
    } finally {
      try {
        server.kill("SIGKILL");
      } catch { /* it exited */ }
      await server.status;
    }
  });
});

const stackRow = await withNetns("ns-bench-stack", async (ns) => {
  const stack = await startStack(ns, ["--log-level", "info"]);
  try {
    const row = await measure(ns, "10.0.0.2", stack.pid);
    const before = cpuSeconds(stack.pid);
    const udp = await client(ns, "udp", "10.0.0.2", 7);
    const cpu = cpuSeconds(stack.pid) - before;
    console.log(
      `udp echo 64 B: ${(udp.pps / 1000).toFixed(1)}k echoes/s, stack CPU ${
        (cpu * 1e6 / (udp.sent + udp.received)).toFixed(2)
      } µs per packet in or out`,
    );
    return row;
  } finally {
    await stack.stop();
  }
});

const fmt = (r: Row) =>
  `${r.bulkIn.toFixed(2).padStart(6)} | ${r.bulkOut.toFixed(2).padStart(6)} | ${
    Math.round(r.tps).toString().padStart(7)
  } (${r.p50.toFixed(1)}) | ${Math.round(r.cps).toString().padStart(6)} | ${r.pingUs.toFixed(1).padStart(6)}`;
console.log(
  `\n${SECONDS} s per workload; bulk in Gbit/s; 1-byte RR transactions/s (p50 µs); connections/s; ping µs`,
);
console.log("system                   | bulk in | bulk out | RR tps (p50) | conn/s | ping");
console.log(`kernel <-> kernel (veth) | ${fmt(kernel)}`);
console.log(`netstack over TUN        | ${fmt(stackRow)}`);
console.log(
  `ratio netstack/kernel    | ${(stackRow.bulkIn / kernel.bulkIn).toFixed(2)} | ${
    (stackRow.bulkOut / kernel.bulkOut).toFixed(2)
  } | ${(stackRow.tps / kernel.tps).toFixed(2)} | ${(stackRow.cps / kernel.cps).toFixed(2)} | ${
    (stackRow.pingUs / kernel.pingUs).toFixed(2)
  }`,
);

/**
 * `deno task bench:stack`: measures netstack on a real TUN device inside namespaces it creates (and
 * deletes), next to the Linux kernel over a veth pair in the same run, so the two compare as a ratio
 * (the machine is noisy). Every loop is bounded in count and time. Needs root. The kernel's side is served
 * by scripts/bench_kernel_server.c (epoll, several processes for the descriptors of 100,000 connections),
 * compiled at run time with the machine's C compiler; without one the bench says so and falls back to
 * scripts/bench_kernel_server.ts (Deno's sockets: the kernel's TCP plus the runtime's per-call cost, and
 * at most 19,000 connections held).
 *
 * Workloads: bulk host→stack (discard) and stack→host (chargen), several bulk flows at once, 1-byte
 * request/response over echo (transactions/s, p50 and p99; pinned to one CPU, and unpinned), connections
 * per second, ping round trip (pinned, and after idle periods), CPU of the idle process over 10 s, process
 * memory with 10,000 and 100,000 established connections (clients from several source addresses), and UDP
 * echo with the stack's CPU time per packet. Writes an SVG of the latency distributions. Then bulk both ways
 * on each backend in the same run: the TUN figures above, a TAP device, and a veth end the stack attaches
 * to through an AF_PACKET socket (`--backend packet`, the peer's transmit offload on, as veths come) and
 * through libpcap (`--backend pcap`, with the peer's offload off, which libpcap needs).
 *
 * Usage: `deno task bench:stack [--smoke] [--svg FILE] [--no-100k]`. `--smoke` runs every workload
 * briefly (a few seconds in all, smaller connection counts): CI runs it to keep the script working; its
 * numbers mean little. `BENCH_SECONDS` sets the seconds per workload (default 3).
 *
 * Forwarding mode: iperf3 from a confined namespace through netstack (`--netns --forward`) to a server
 * behind a veth, both directions, next to slirp4netns and pasta doing the same job in the same run (each
 * with its defaults but for what the topology needs). `BENCH_ONLY=forward` runs only that part.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Netns, run, withNetns } from "../tests/helpers/netns.ts";
import { startStack } from "../tests/helpers/stack_process.ts";
import { type ForwardTopology, withForwardTopology } from "../tests/helpers/forward_topology.ts";
import { latencySvg, type Panel } from "./bench_plot.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    smoke: { type: "boolean", default: false },
    svg: { type: "string", default: "bench_stack.svg" },
    "no-100k": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (flags.help) {
  console.log("Usage: deno task bench:stack [--smoke] [--svg FILE] [--no-100k]   (root; BENCH_SECONDS=3)");
  Deno.exit(0);
}
const SMOKE = flags.smoke;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? (SMOKE ? "0.5" : "3"));
const IDLE_SECONDS = SMOKE ? 1 : 10;
/** When the at-rest idle window starts, in seconds after the workloads. */
const IDLE_REST_AFTER_S = 20;
const FLOWS = 4;
/** Connection counts held open for the memory rows. */
const CONNECTION_COUNTS = SMOKE ? [200] : flags["no-100k"] ? [10_000] : [10_000, 100_000];
/** Extra host-side source addresses (last octet) for the held connections: ports run out past ~55k. */
const SOURCE_OCTETS = [11, 12, 13, 14];

// The kernel-side clients, in Python for their small per-operation cost. Each prints one JSON line.
const CLIENT = `
import socket, time, sys, json, selectors, select, resource, errno
mode, host, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
end = time.monotonic() + seconds
def quantiles(lat):
    lat.sort(); n = len(lat)
    if n == 0: return {"p50us": 0, "p99us": 0, "cdf": []}
    fr = [i / 200 for i in range(201)]; fr[-1:-1] = [0.999, 0.9999]
    return {"p50us": lat[n // 2] * 1e6, "p99us": lat[min(n - 1, int(n * 0.99))] * 1e6,
            "cdf": [[f, lat[min(n - 1, int(f * (n - 1)))] * 1e6] for f in fr]}
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
    dt = time.monotonic() - t0; s.close()
    print(json.dumps({"tps": len(lat) / dt, **quantiles(lat)}))
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
elif mode == "hold":
    # Opens N connections from several source addresses, 64 handshakes in flight; prints how many are
    # established, then holds them until stdin closes. seconds bounds the opening phase.
    n, sources = int(sys.argv[5]), sys.argv[6].split(",")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector(); done = []; failed = 0; started = 0; t0 = time.monotonic()
    while len(done) + failed < n and time.monotonic() < end:
        while started - len(done) - failed < 64 and started < n:
            s = socket.socket(); s.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
            s.bind((sources[started % len(sources)], 0)); s.setblocking(False)
            rc = s.connect_ex((host, port)); started += 1
            if rc in (0, errno.EINPROGRESS): sel.register(s, selectors.EVENT_WRITE)
            else: failed += 1; s.close()
        for key, _ in sel.select(0.5):
            s = key.fileobj; sel.unregister(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0: done.append(s)
            else: failed += 1; s.close()
    # A server may accept and then reset (a full service): count only the connections still alive a
    # second later (a reset or closed socket turns readable).
    time.sleep(1); alive = len(done)
    for i in range(0, len(done), 512):
        poller = select.poll()
        for s in done[i:i + 512]: poller.register(s, select.POLLIN | select.POLLERR | select.POLLHUP)
        alive -= len(poller.poll(0))
    print(json.dumps({"open": alive, "failed": failed + len(done) - alive, "seconds": time.monotonic() - t0}),
          flush=True)
    sys.stdin.read()
`;

async function client(
  ns: Netns,
  mode: string,
  host: string,
  port: number,
  pin = false,
): Promise<Record<string, number> & { cdf: [number, number][] }> {
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

/** Ping round trips in µs (sorted): `count` pings `intervalS` apart, optionally pinned to CPU 0. */
async function ping(ns: Netns, host: string, count: number, intervalS: number, pinned: boolean) {
  const out = await ns.exec([
    ...(pinned ? ["taskset", "-c", "0"] : []),
    "ping",
    "-c",
    String(count),
    "-i",
    String(intervalS),
    "-W",
    "1",
    host,
  ], { timeoutMs: (count * intervalS + 20) * 1000 });
  const times = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]) * 1000).sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / Math.max(1, times.length);
  return { mean, times };
}

/** All measurements of one system. */
interface Row {
  bulkIn: number;
  bulkOut: number;
  multiIn: number;
  tps: number;
  p50: number;
  p99: number;
  uTps: number;
  uP50: number;
  uP99: number;
  cps: number;
  pingUs: number;
  idlePingUs: number;
  /** CPU % of a core, 3 s to 13 s after the workloads. */
  idleCpuAfter: number;
  /** CPU % of a core at rest, from {@link IDLE_REST_AFTER_S} s after the workloads. */
  idleCpu: number;
  /** Process RSS (MiB) with N connections held, by N; and how many were actually established. */
  memory: { count: number; open: number; rssMiB: number; baseMiB: number; kernelMiB: number }[];
  cdf: { pinned: [number, number][]; unpinned: [number, number][]; ping: [number, number][] };
}

/** Pins every thread of the `pids` to `cpus` (e.g. "0" or "0,1"). */
async function pin(pids: number[], cpus: string): Promise<void> {
  for (const pid of pids) await run(["taskset", "-a", "-p", "-c", cpus, String(pid)]);
}

/**
 * CPU seconds used so far by the `pids` together, every thread: the scheduler's run time in ns
 * (/proc/PID/task/TID/schedstat), not utime + stime, which count in 10 ms ticks (0.1% of 10 s each).
 */
function cpuSeconds(pids: number[]): number {
  let ns = 0;
  for (const pid of pids) {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(" ")[0]);
      } catch { /* the thread exited */ }
    }
  }
  return ns / 1e9;
}

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Kernel slab memory in MiB (where kernel sockets live); a rough, machine-wide figure. */
function slabMiB(): number {
  const meminfo = Deno.readTextFileSync("/proc/meminfo");
  return Number(/^Slab:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN) / 1024;
}

/** Most connections one holder process opens: a process may hold 20,000 descriptors here. */
const PER_HOLDER = 16_000;

/**
 * Opens `count` connections to `host:port` from the `sources` addresses (several holder processes) and
 * holds them while `probe` runs; returns how many were established and what `probe` measured.
 */
async function holdConnections<T>(
  ns: Netns,
  host: string,
  port: number,
  sources: string[],
  count: number,
  probe: () => Promise<T>,
): Promise<{ open: number; value: T }> {
  const limit = SMOKE ? 5 : count > 20_000 ? 90 : 30;
  const holders = Math.ceil(count / PER_HOLDER);
  const children = Array.from({ length: holders }, (_, i) => {
    const n = Math.min(PER_HOLDER, count - i * PER_HOLDER);
    return new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, "python3", "-c", CLIENT, "hold", host, String(port), String(limit)]
        .concat([String(n), sources.join(",")]),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  });
  const killer = setTimeout(() => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }, (limit + 60) * 1000);
  try {
    const t0 = performance.now();
    const reports = await Promise.all(children.map(async (child) => {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("a connection holder exited early");
        text += value;
      }
      reader.releaseLock();
      return JSON.parse(text.trim()) as { open: number; failed: number };
    }));
    const open = reports.reduce((sum, r) => sum + r.open, 0);
    const failed = reports.reduce((sum, r) => sum + r.failed, 0);
    console.error(
      `  held ${open}/${count} connections (${failed} failed) in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
    const value = await probe();
    return { open, value };
  } finally {
    for (const child of children) await child.stdin.close().catch(() => {});
    clearTimeout(killer);
    for (const child of children) await child.status;
  }
}

/**
 * Everything on one system. Bulk unpinned; pinned request/response, connections and ping with the
 * client and the server's processes on one CPU (a wake-up across vCPUs costs 100–300 µs here and makes them
 * bimodal); then the unpinned request/response, idle rows and memory rows.
 */
async function measure(
  ns: Netns,
  host: string,
  serverPids: number[],
  sourcePrefix: string,
  maxConnections: number,
): Promise<Row> {
  const serverPid = serverPids[0];
  const bulkIn = (await client(ns, "send", host, 9)).gbits;
  const bulkOut = (await client(ns, "recv", host, 19)).gbits;
  const flows = await Promise.all(Array.from({ length: FLOWS }, () => client(ns, "send", host, 9)));
  const multiIn = flows.reduce((sum, f) => sum + f.gbits, 0);
  await pin(serverPids, "0");
  let rr, crr, pinnedPing;
  try {
    rr = await client(ns, "rr", host, 7, true);
    crr = await client(ns, "crr", host, 7, true);
    pinnedPing = await ping(ns, host, SMOKE ? 50 : 200, 0.005, true);
  } finally {
    await pin(serverPids, "0,1");
  }
  const urr = await client(ns, "rr", host, 7, false);
  // Cold wake-ups: one ping every 200 ms, unpinned, after the process has been idle.
  const idlePing = await ping(ns, host, SMOKE ? 3 : 20, 0.2, false);
  // Idle CPU twice: just after the workloads (3 s on), which holds their deferred work (V8's background
  // collection; netstack's reclaim, a full collection of what the connections left, lib/stack/reclaim.ts),
  // and at rest, IDLE_REST_AFTER_S after them.
  const idleWindow = async (startAfterMs: number): Promise<number> => {
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, startAfterMs - (performance.now() - tEnd)))
    );
    const cpuBefore = cpuSeconds(serverPids);
    const t0 = performance.now();
    await new Promise((resolve) => setTimeout(resolve, IDLE_SECONDS * 1000));
    return (cpuSeconds(serverPids) - cpuBefore) / ((performance.now() - t0) / 1000) * 100;
  };
  const tEnd = performance.now();
  const idleCpuAfter = await idleWindow(SMOKE ? 500 : 3000);
  const idleCpu = await idleWindow((SMOKE ? 2 : IDLE_REST_AFTER_S) * 1000);
  const memory: Row["memory"] = [];
  const sources = SOURCE_OCTETS.map((o) => `${sourcePrefix}.${o}`);
  // The baseline at rest: 1,500 connections opened and closed first, so that netstack's reclaim runs
  // (lib/stack/reclaim.ts: after a change of 1,000 connections) and collects what the workloads left on
  // the heap, which would otherwise be collected during the first row and make its cost read negative.
  if (!SMOKE) {
    // Held 3 s: the reclaim samples once a second and acts once two samples agree (growth), then again
    // once they are closed (the drop).
    await holdConnections(
      ns,
      host,
      7,
      sources,
      1500,
      () => new Promise((resolve) => setTimeout(resolve, 3000)),
    );
    await new Promise((resolve) => setTimeout(resolve, 4000));
  }
  for (const count of CONNECTION_COUNTS) {
    if (count > maxConnections) {
      memory.push({ count, open: 0, rssMiB: NaN, baseMiB: NaN, kernelMiB: NaN });
      continue;
    }
    const baseMiB = rssMiB(serverPid);
    const slabBefore = slabMiB();
    const held = await holdConnections(ns, host, 7, sources, count, async () => {
      // Accepts, and settles: netstack collects the garbage of the burst of handshakes once its connection
      // count has stopped moving (lib/stack/reclaim.ts: a second to notice, then up to a second of GC at
      // 100,000), so the row shows the held connections at rest, not the burst.
      await new Promise((resolve) => setTimeout(resolve, SMOKE ? 200 : 5000));
      return { rss: rssMiB(serverPid), slab: slabMiB() };
    });
    // Both ends of a kernel pair are kernel sockets: half the slab growth is one side's.
    memory.push({
      count,
      open: held.open,
      rssMiB: held.value.rss,
      baseMiB,
      kernelMiB: (held.value.slab - slabBefore) / 2,
    });
    await new Promise((resolve) => setTimeout(resolve, SMOKE ? 200 : 3000)); // closes drain
  }
  return {
    bulkIn,
    bulkOut,
    multiIn,
    tps: rr.tps,
    p50: rr.p50us,
    p99: rr.p99us,
    uTps: urr.tps,
    uP50: urr.p50us,
    uP99: urr.p99us,
    cps: crr.cps,
    pingUs: pinnedPing.mean,
    idlePingUs: idlePing.mean,
    idleCpuAfter,
    idleCpu,
    memory,
    cdf: { pinned: rr.cdf, unpinned: urr.cdf, ping: cdfOf(pinnedPing.times) },
  };
}

function cdfOf(sorted: number[]): [number, number][] {
  if (sorted.length === 0) return [];
  return sorted.map((us, i) => [sorted.length === 1 ? 1 : i / (sorted.length - 1), us]);
}

async function addSources(ns: Netns, dev: string, prefix: string): Promise<void> {
  for (const octet of SOURCE_OCTETS) {
    await ns.exec(["ip", "addr", "add", `${prefix}.${octet}/24`, "dev", dev]);
  }
  await ns.exec(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=10000 65000"]);
}

console.error(`bench:stack: ${SMOKE ? "smoke run" : "full run"}, ${SECONDS} s per workload`);

/** Kills `child` (one we started) and waits for it. */
async function kill(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGKILL");
  } catch { /* it exited */ }
  await child.status;
}

/** iperf3 from `ns` to `host` for SECONDS; `reverse` for the download direction. Gbit/s received. */
async function iperf(ns: Netns, host: string, reverse: boolean): Promise<number> {
  const result = await ns.run(
    ["iperf3", "-c", host, "-t", String(Math.max(1, Math.round(SECONDS))), "-J", ...(reverse ? ["-R"] : [])],
    { timeoutMs: (SECONDS + 30) * 1000 },
  );
  const json = JSON.parse(result.stdout || "{}");
  if (json.error || !json.end) {
    throw new Error(`iperf3 ${reverse ? "-R " : ""}failed: ${json.error ?? result.stderr}`);
  }
  return json.end.sum_received.bits_per_second / 1e9;
}

/** Gbit/s up (confined namespace → server) and down, through whatever `setup` starts. */
async function forwardRow(
  name: string,
  setup: (t: ForwardTopology) => Promise<{ stop(): Promise<void> }>,
): Promise<{ up: number; down: number }> {
  return await withForwardTopology(`ns-bf-${name}`, async (t) => {
    // pasta takes its template from the interface with the default route; the others ignore it.
    await t.run.exec(["ip", "route", "add", "default", "via", t.serverAddress]);
    const server = new Deno.Command("ip", {
      args: ["netns", "exec", t.server.name, "iperf3", "-s"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const relay = await setup(t);
    try {
      await new Promise((resolve) => setTimeout(resolve, 500)); // the iperf3 server binds
      return {
        up: await iperf(t.app, t.serverAddress, false),
        down: await iperf(t.app, t.serverAddress, true),
      };
    } finally {
      await relay.stop();
      await kill(server);
    }
  });
}

/** Starts a relay process in the run namespace and waits `settleMs` for it to configure the app side. */
async function relayProcess(ns: Netns, cmd: string[], settleMs = 1500): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns.name, ...cmd],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return child;
}

/** Whether `program` is on PATH. */
async function installed(program: string): Promise<boolean> {
  return (await run(["sh", "-c", `command -v ${program}`])).code === 0;
}

async function benchForward(): Promise<void> {
  if (!(await installed("iperf3"))) {
    console.log("\nforwarding mode: skipped (iperf3 is not installed)");
    return;
  }
  const rows: [string, { up: number; down: number }][] = [];
  rows.push([
    "netstack --forward",
    await forwardRow("ns", async (t) => {
      const stack = await startStack(t.run, ["--netns", t.app.name, "--forward", "--services", "none"]);
      return { stop: async () => void (await stack.stop()) };
    }),
  ]);
  if (await installed("slirp4netns")) {
    rows.push([
      "slirp4netns",
      await forwardRow("slirp", async (t) => {
        // slirp4netns joins the namespace of a process: one we start inside the app namespace.
        const holder = new Deno.Command("ip", {
          args: ["netns", "exec", t.app.name, "sleep", "600"],
          stdout: "null",
          stderr: "null",
        }).spawn();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const slirp = await relayProcess(t.run, [
          "slirp4netns",
          "--configure",
          "--mtu=65520",
          "--disable-host-loopback",
          String(holder.pid),
          "tap0",
        ]);
        return { stop: async () => (await kill(slirp), await kill(holder)) };
      }),
    ]);
  }
  if (await installed("pasta")) {
    rows.push([
      "pasta",
      await forwardRow("pasta", async (t) => {
        const pasta = await relayProcess(t.run, [
          "pasta",
          "-f",
          "--quiet",
          "--runas",
          "0:0",
          "--config-net",
          "--no-map-gw",
          "-t",
          "none",
          "-u",
          "none",
          "-T",
          "none",
          "-U",
          "none",
          "--netns",
          `/run/netns/${t.app.name}`,
        ]);
        return { stop: () => kill(pasta) };
      }),
    ]);
  }
  console.log(`\nforwarding mode: iperf3 -t ${SECONDS} from the confined namespace to a server; Gbit/s`);
  console.log("relay                | up (app→server) | down (server→app)");
  for (const [name, r] of rows) {
    console.log(`${name.padEnd(20)} | ${r.up.toFixed(2).padStart(15)} | ${r.down.toFixed(2).padStart(17)}`);
  }
}

if (Deno.env.get("BENCH_ONLY") === "forward") {
  await benchForward();
  Deno.exit(0);
}
/**
 * The kernel's reference server, in C (scripts/bench_kernel_server.c) compiled now with the machine's C
 * compiler: a server in a runtime measures that runtime's per-call cost, not the kernel's TCP. Returns
 * null when there is no C compiler (a failing compile is an error).
 */
async function buildKernelServer(dir: string): Promise<string | null> {
  const source = new URL("bench_kernel_server.c", import.meta.url).pathname;
  const binary = `${dir}/bench_kernel_server`;
  for (const cc of ["cc", "clang", "gcc"]) {
    try {
      const out = await new Deno.Command(cc, { args: ["-O2", "-o", binary, source], stderr: "piped" })
        .output();
      if (out.success) return binary;
      throw new Error(`${cc} failed to compile ${source}:\n${new TextDecoder().decode(out.stderr)}`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return null;
}

/**
 * Processes of the kernel's reference server: each may hold 20,000 descriptors here, and the 100k memory
 * row holds 100,000 connections (the netstack side holds them in one process, without descriptors).
 */
const KERNEL_SERVER_WORKERS = Math.ceil(Math.max(...CONNECTION_COUNTS) / 15_000) + 1;
const buildDir = await Deno.makeTempDir({ prefix: "bench-stack-" });
const kernelServer = await buildKernelServer(buildDir);
/** What serves the kernel's side, for the table's heading. */
const KERNEL_SERVER_NOTE = kernelServer !== null
  ? `kernel: scripts/bench_kernel_server.c (epoll, ${KERNEL_SERVER_WORKERS} processes)`
  : "kernel: FALLBACK scripts/bench_kernel_server.ts (no C compiler: cc, clang or gcc): the kernel's TCP plus " +
    "Deno's per-call cost, so the kernel's request/response and connections/s rows read low; at most " +
    "19,000 connections held";
if (kernelServer === null) console.error(`bench:stack: no C compiler found; ${KERNEL_SERVER_NOTE}`);
/** The command serving the kernel's side; it prints "ready PID PID ..." (the server's processes). */
const kernelServerCommand = kernelServer !== null
  ? [kernelServer, String(KERNEL_SERVER_WORKERS)]
  : [Deno.execPath(), "run", "--allow-net", new URL("bench_kernel_server.ts", import.meta.url).pathname];

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
    await addSources(a, "bk0", "10.9.0");
    const server = new Deno.Command("ip", {
      args: ["netns", "exec", b.name, ...kernelServerCommand],
      stdout: "piped",
    }).spawn();
    try {
      const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let ready = "";
      while (!ready.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the kernel reference server exited before it was ready");
        ready += value;
      }
      reader.releaseLock();
      const pids = ready.trim().split(" ").slice(1).map(Number); // "ready PID PID ..."
      console.error("kernel <-> kernel over a veth:");
      // The Deno fallback holds a descriptor per connection in one process, at most 20,000 here.
      return await measure(a, "10.9.0.2", pids, "10.9.0", kernelServer !== null ? Infinity : 19_000);
    } finally {
      try {
        server.kill("SIGKILL"); // its workers die with it (PR_SET_PDEATHSIG)
      } catch { /* it exited */ }
      await server.status;
    }
  });
});

let udpLine = "";
const stackRow = await withNetns("ns-bench-stack", async (ns) => {
  // The memory rows hold every connection: the echo service's pool raised to the largest count.
  const stack = await startStack(ns, [
    "--log-level",
    "info",
    "--max-connections",
    String(Math.max(...CONNECTION_COUNTS)),
  ]);
  try {
    await addSources(ns, "tun0", "10.0.0");
    console.error("netstack over TUN:");
    const row = await measure(ns, "10.0.0.2", [stack.pid], "10.0.0", Infinity);
    const before = cpuSeconds([stack.pid]);
    const udp = await client(ns, "udp", "10.0.0.2", 7);
    const cpu = cpuSeconds([stack.pid]) - before;
    udpLine = `udp echo 64 B: ${(udp.pps / 1000).toFixed(1)}k echoes/s, stack CPU ${
      (cpu * 1e6 / (udp.sent + udp.received)).toFixed(2)
    } µs per packet in or out`;
    return row;
  } finally {
    await stack.stop();
  }
});
await Deno.remove(buildDir, { recursive: true });

// The table: one line per measure, kernel and netstack side by side, the ratio netstack/kernel.
type Fmt = (v: number) => string;
const f2: Fmt = (v) => v.toFixed(2);
const f1: Fmt = (v) => v.toFixed(1);
const f0: Fmt = (v) => Math.round(v).toString();
const lines: [string, number, number, Fmt, string][] = [
  ["bulk host→stack, Gbit/s", kernel.bulkIn, stackRow.bulkIn, f2, "≥ 0.7"],
  ["bulk stack→host, Gbit/s", kernel.bulkOut, stackRow.bulkOut, f2, "≥ 0.8"],
  [`bulk host→stack, ${FLOWS} flows, Gbit/s`, kernel.multiIn, stackRow.multiIn, f2, ""],
  ["RR pinned, transactions/s", kernel.tps, stackRow.tps, f0, "≥ 1.0"],
  ["RR pinned p50, µs", kernel.p50, stackRow.p50, f1, ""],
  ["RR pinned p99, µs", kernel.p99, stackRow.p99, f1, "≤ 1.5"],
  ["RR unpinned, transactions/s", kernel.uTps, stackRow.uTps, f0, ""],
  ["RR unpinned p50, µs", kernel.uP50, stackRow.uP50, f1, "≤ 1.2"],
  ["RR unpinned p99, µs", kernel.uP99, stackRow.uP99, f1, ""],
  ["connections/s (pinned)", kernel.cps, stackRow.cps, f0, "≥ 1.0"],
  ["ping mean (pinned, 5 ms apart), µs", kernel.pingUs, stackRow.pingUs, f1, "≤ 2.0"],
  ["ping mean (unpinned, 200 ms apart), µs", kernel.idlePingUs, stackRow.idlePingUs, f1, ""],
  [
    `idle CPU, ${IDLE_SECONDS} s from 3 s after load, % of a core`,
    kernel.idleCpuAfter,
    stackRow.idleCpuAfter,
    f2,
    "",
  ],
  [
    `idle CPU, ${IDLE_SECONDS} s at rest (${IDLE_REST_AFTER_S} s after), % of a core`,
    kernel.idleCpu,
    stackRow.idleCpu,
    f2,
    "< 1%",
  ],
];
for (let i = 0; i < CONNECTION_COUNTS.length; i++) {
  const k = kernel.memory[i];
  const s = stackRow.memory[i];
  lines.push([
    `memory, ${k.count} conns held (${k.open}/${s.open} open), MiB`,
    k.kernelMiB,
    s.rssMiB,
    f1,
    k.count >= 100_000 ? "< 400 MiB" : "",
  ]);
  lines.push([
    `  per connection over idle, KiB`,
    k.kernelMiB * 1024 / Math.max(1, k.open),
    (s.rssMiB - s.baseMiB) * 1024 / Math.max(1, s.open),
    f2,
    "",
  ]);
}
const width = Math.max(...lines.map((l) => l[0].length));
console.log(
  `\n${SECONDS} s per workload${SMOKE ? " (smoke run: numbers mean little)" : ""}; ${KERNEL_SERVER_NOTE}`,
);
console.log(
  `${"measure".padEnd(width)} | ${"kernel".padStart(9)} | ${"netstack".padStart(9)} | ratio | target`,
);
for (const [name, k, s, fmt, target] of lines) {
  const ratio = k > 0 && s > 0 ? (s / k).toFixed(2) : "-";
  console.log(
    `${name.padEnd(width)} | ${fmt(k).padStart(9)} | ${fmt(s).padStart(9)} | ${
      ratio.padStart(5)
    } | ${target}`,
  );
}
console.log(
  "memory: netstack = the stack process's RSS; kernel = half the machine's slab growth (rough: both ends are" +
    " kernel sockets, and other processes share the machine); NaN = not measured",
);
console.log(udpLine);

const panels: Panel[] = [
  ["1-byte request/response, pinned", "pinned"],
  ["1-byte request/response, unpinned", "unpinned"],
  ["ping, pinned, 5 ms apart", "ping"],
].map(([title, key]) => ({
  title,
  series: [
    { label: "kernel (veth)", color: "#1f77b4", points: kernel.cdf[key as keyof Row["cdf"]] },
    { label: "netstack (TUN)", color: "#d62728", points: stackRow.cdf[key as keyof Row["cdf"]] },
  ],
}));
Deno.writeTextFileSync(
  flags.svg,
  latencySvg(panels, `bench:stack ${new Date().toISOString()}, ${SECONDS} s per workload`),
);
console.log(`latency distributions: ${flags.svg}`);

/** Bulk both ways against a stack started with `args` in a fresh namespace (after `setup`), at `host`. */
async function bulkRow(
  name: string,
  args: string[],
  host: string,
  setup: (ns: Netns) => Promise<void>,
): Promise<[number, number]> {
  return await withNetns(`ns-bench-${name}`, async (ns) => {
    await setup(ns);
    const stack = await startStack(ns, ["--log-level", "info", ...args]);
    try {
      return [(await client(ns, "send", host, 9)).gbits, (await client(ns, "recv", host, 19)).gbits];
    } finally {
      await stack.stop();
    }
  });
}

/** The recipe's veth pair inside `ns`: my1 192.168.0.1/24 (the host's side), my0 for the stack. */
async function vethPair(ns: Netns, hostTxOffload: boolean): Promise<void> {
  await ns.exec(["ip", "link", "add", "my0", "type", "veth", "peer", "name", "my1"]);
  await ns.exec(["ip", "addr", "add", "192.168.0.1/24", "dev", "my1"]);
  await ns.exec(["ip", "link", "set", "my0", "up"]);
  await ns.exec(["ip", "link", "set", "my1", "up"]);
  if (!hostTxOffload) await ns.exec(["ethtool", "-K", "my1", "tx", "off"]);
}

console.error("netstack on TAP, and on a veth through packet and pcap: bulk");
const attach = ["--iface", "my0", "--addr", "192.168.0.2/24"];
const backends: [string, [number, number]][] = [
  ["TUN (above)", [stackRow.bulkIn, stackRow.bulkOut]],
  ["TAP", await bulkRow("tap", ["--backend", "tap"], "10.0.0.2", async () => {})],
  [
    "veth, packet",
    await bulkRow("packet", ["--backend", "packet", ...attach], "192.168.0.2", (ns) => vethPair(ns, true)),
  ],
  [
    "veth, pcap (*)",
    await bulkRow("pcap", ["--backend", "pcap", ...attach], "192.168.0.2", (ns) => vethPair(ns, false)),
  ],
];
console.log(
  `\nbulk by backend, Gbit/s (same run; kernel over veth: ${f2(kernel.bulkIn)} in, ${
    f2(kernel.bulkOut)
  } out)`,
);
console.log(`${"netstack on".padEnd(15)} | host→stack | stack→host`);
for (const [name, [bulkIn, bulkOut]] of backends) {
  console.log(`${name.padEnd(15)} | ${f2(bulkIn).padStart(10)} | ${f2(bulkOut).padStart(10)}`);
}
console.log("(*) libpcap needs the peer's transmit checksum offload off: ethtool -K my1 tx off");

await benchForward();

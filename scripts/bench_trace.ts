/**
 * Capture-rate benchmark of `netstack trace -q -w` next to `tcpdump -w`, on the same traffic in the same
 * run: 60-byte UDP frames sent at fixed rates over a veth pair between two fresh namespaces (never the
 * machine's own interfaces; both namespaces are deleted at the end, also on failure).
 *
 *   deno run -A scripts/bench_trace.ts [--rates 50000,100000,200000,max] [--seconds 3] [--senders 1]
 *                                       [--tools none,netstack,tcpdump,netstack-text,netstack-json]
 *                                       [--expression 'udp dst port 1042'] [--rounds 3] [--bpf-stats]
 *
 * For every rate it runs the sender once per tool: with nothing attached (`none`, the baseline), with
 * netstack trace on the receiving veth, and with tcpdump on it; it reports what reached the interface
 * (rx_packets), what each tracer captured, and what it lost (netstack: ring buffer full; tcpdump:
 * "dropped by kernel"). Tools naming an ingress hook compare hooks: `netstack` (the default, `auto`),
 * `netstack-tcx` (`--ingress-hook tcx`), `netstack-xdp` (`--ingress-hook xdp`: generic XDP) and
 * `netstack-native` (`--mode native`: native XDP on the veth). A tool ending in `:all` runs without the
 * expression (every packet captured). With `--rounds N` the tools run N times in turn (the machine's noise
 * spreads over all of them) and a second table gives the medians, with sent/s and captured/s as ratios
 * to tcpdump's. `--bpf-stats` sets the kernel.bpf_stats_enabled sysctl for the run (it is global: the
 * old value is restored at the end) and reports the ingress program's mean run time per packet
 * (run_time_ns / run_cnt from the tracer's /proc/PID/fdinfo). `--program-cost` also runs the programs of a
 * running trace (with the expression, then without) on one frame with BPF_PROG_TEST_RUN, 200,000 times
 * a trial, and reports the least mean of 7 trials: the programs' own cost, apart from the hook's.
 * The sender is this script in `--send` mode: an AF_PACKET socket driven by sendmmsg through FFI,
 * paced in batches of 32 frames; `--senders 2` runs two of them, one per CPU, sharing the rate. On a veth
 * the receive path (and so the XDP program) runs on the sending CPU, so an expensive hook slows the
 * sender rather than dropping packets: compare "sent/s" across tools, and better still "sender ns/packet",
 * the sending thread's CPU time per packet (with the kernel's tick-based accounting it includes the
 * softirq work done in its context: the veth's receive path and the hooks), which the machine's load
 * changes far less than the rate. The frames go to UDP ports
 * 1000..1099 in turn, so `--expression 'udp dst port 1042'` (given to netstack trace, in its XDP program,
 * and to tcpdump, in its socket filter) selects 1% of them.
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname;
const ENTRY = `${ROOT}main.ts`;
const SELF = new URL(import.meta.url).pathname;
const FRAME_BYTES = 60;
const BATCH = 32;
/** Distinct frames the sender cycles through: UDP destination ports 1000..1099, so `udp dst port 1042` is 1%. */
const FRAMES = 100;

// ---------------------------------------------------------------- sender (runs in the peer namespace)

/** One 60-byte frame: IPv4 10.99.0.1 -> 10.99.0.2, UDP 40000 -> `dport`, 18 bytes of payload. */
function frame(dstMac: string, srcMac: string, dport: number): Uint8Array {
  const mac = (text: string) => text.split(":").map((h) => parseInt(h, 16));
  const f = new Uint8Array(FRAME_BYTES);
  f.set([...mac(dstMac), ...mac(srcMac), 0x08, 0x00]);
  const ip = [0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 99, 0, 1, 10, 99, 0, 2];
  let sum = 0;
  for (let j = 0; j < 20; j += 2) sum += (ip[j] << 8) | ip[j + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = (~sum >> 8) & 0xff;
  ip[11] = ~sum & 0xff;
  f.set(ip, 14);
  f.set([0x9c, 0x40, dport >> 8, dport & 0xff, 0, 26, 0, 0], 34);
  return f;
}

// ---------------------------------------------------------------- program cost (runs in the tracer's namespace)

/**
 * The tracer's loaded programs (found through its /proc/PID/fdinfo) run by the kernel on one frame
 * `repeat` times with BPF_PROG_TEST_RUN, the frame's ingress interface set to `ifindex` so that the
 * counters entry is the traced one: the program's own cost per packet, apart from the hook's and the
 * machine's load. Prints {name: {miss, hit}} in ns per run, the least of `trials`: `miss` on a frame
 * the expression rejects (UDP port 1000), `hit` on one it selects (1042; the record goes to the ring).
 */
function programCost(pid: number, ifindex: number, repeat: number, trials: number): void {
  // (test_run's ctx for XDP needs data_end = the frame's size; for tc, only ifindex is set)
  const bpf = Deno.dlopen(
    "libbpf.so.1",
    {
      bpf_prog_get_fd_by_id: { parameters: ["u32"], result: "i32" },
      bpf_obj_get_info_by_fd: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
      bpf_prog_test_run_opts: { parameters: ["i32", "buffer"], result: "i32" },
    } as const,
  );
  const ids = new Set<number>();
  for (const entry of Deno.readDirSync(`/proc/${pid}/fdinfo`)) {
    let info = "";
    try {
      info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${entry.name}`);
    } catch { /* closed meanwhile */ }
    const id = /^prog_id:\s*(\d+)$/m.exec(info);
    if (id) ids.add(Number(id[1]));
  }
  const result: Record<string, { miss: number; hit: number }> = {};
  for (const id of ids) {
    const fd = bpf.symbols.bpf_prog_get_fd_by_id(id);
    if (fd < 0) continue;
    const info = new Uint8Array(256);
    const length = new Uint32Array([info.length]);
    if (bpf.symbols.bpf_obj_get_info_by_fd(fd, info, new Uint8Array(length.buffer)) !== 0) continue;
    const type = new DataView(info.buffer).getUint32(0, true);
    const name = new TextDecoder().decode(info.subarray(64, 80)).replace(/\0.*$/s, "");
    const xdp = type === 6;
    // ctx: xdp_md.ingress_ifindex (offset 12) or __sk_buff.ifindex (offset 40).
    const ctx = new Uint8Array(xdp ? 24 : 192);
    new DataView(ctx.buffer).setUint32(xdp ? 12 : 40, ifindex, true);
    if (xdp) new DataView(ctx.buffer).setUint32(4, FRAME_BYTES, true); // data_end: the frame's size
    const run = (dport: number, repeat: number) => {
      const data = frame("02:00:00:00:00:02", "02:00:00:00:00:01", dport);
      const out = new Uint8Array(256);
      const opts = new Uint8Array(80);
      const view = new DataView(opts.buffer);
      const address = (b: Uint8Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
      view.setBigUint64(0, 80n, true); // sz
      view.setBigUint64(8, address(data), true); // data_in
      view.setBigUint64(16, address(out), true); // data_out
      view.setUint32(24, data.length, true); // data_size_in
      view.setUint32(28, out.length, true); // data_size_out
      view.setBigUint64(32, address(ctx), true); // ctx_in
      view.setUint32(48, ctx.length, true); // ctx_size_in
      view.setInt32(60, repeat, true); // repeat
      let best = Infinity;
      for (let t = 0; t < trials; t++) {
        const err = bpf.symbols.bpf_prog_test_run_opts(fd, opts);
        if (err !== 0) throw new Error(`test run of ${name}: ${err}`);
        best = Math.min(best, view.getUint32(64, true)); // duration: mean ns per repetition
      }
      return best;
    };
    // Fewer hits, so that the records fit in the ring (8 MiB) while the tracer drains it between trials.
    result[name] = { miss: run(1000, repeat), hit: run(1042, Math.min(repeat, 20_000)) };
  }
  console.log(JSON.stringify(result));
  bpf.close();
}

function send(
  iface: string,
  dstMac: string,
  srcMac: string,
  rate: number,
  seconds: number,
): void {
  const c = Deno.dlopen(
    "libc.so.6",
    {
      socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
      bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
      sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
      if_nametoindex: { parameters: ["buffer"], result: "u32" },
    } as const,
  );
  const fd = c.symbols.socket(17, /* AF_PACKET */ 3, /* SOCK_RAW */ 0);
  if (fd < 0) throw new Error("socket(AF_PACKET) failed");
  const ifindex = c.symbols.if_nametoindex(new TextEncoder().encode(iface + "\0"));
  const address = new Uint8Array(20);
  const addressView = new DataView(address.buffer);
  addressView.setUint16(0, 17, true);
  addressView.setUint16(2, 0x0300, true); // htons(ETH_P_ALL)
  addressView.setInt32(4, ifindex, true);
  if (c.symbols.bind(fd, address, 20) !== 0) throw new Error("bind(AF_PACKET) failed");

  const frames = new Uint8Array(FRAMES * FRAME_BYTES);
  for (let i = 0; i < FRAMES; i++) {
    frames.set(frame(dstMac, srcMac, 1000 + i), i * FRAME_BYTES);
  }
  // FRAMES + BATCH messages, message j for frame j % FRAMES: any window of BATCH from 0..FRAMES-1 is
  // contiguous, so the sender cycles through all frames in whole batches.
  const slots = FRAMES + BATCH;
  const iovecs = new BigUint64Array(slots * 2);
  const messages = new Uint8Array(slots * 64);
  const messagesView = new DataView(messages.buffer);
  const framesAddress = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(frames)));
  const iovecAddress = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(iovecs)));
  for (let i = 0; i < slots; i++) {
    iovecs[i * 2] = framesAddress + BigInt((i % FRAMES) * FRAME_BYTES);
    iovecs[i * 2 + 1] = BigInt(FRAME_BYTES);
    messagesView.setBigUint64(i * 64 + 16, iovecAddress + BigInt(i * 16), true); // msg_iov
    messagesView.setBigUint64(i * 64 + 24, 1n, true); // msg_iovlen
  }

  const windows = Array.from({ length: FRAMES }, (_, i) => messages.subarray(i * 64));
  let sent = 0;
  let failed = 0;
  // CPU time of this (sending) thread: with tick-based accounting it includes the softirq work done in
  // its context — on a veth, the receive path and its hooks — so time per packet shows a hook's cost
  // apart from how much of the CPU the loaded machine leaves the sender.
  const threadCpu = () => {
    const fields = Deno.readTextFileSync("/proc/thread-self/stat").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  const cpuStart = threadCpu();
  const start = performance.now();
  const end = start + seconds * 1000;
  for (;;) {
    const now = performance.now();
    if (now >= end) break;
    const due = rate > 0 ? Math.floor(((now - start) / 1000) * rate) : sent + BATCH;
    if (due - sent < BATCH && rate > 0) continue; // pace in whole batches
    const n = c.symbols.sendmmsg(fd, windows[sent % FRAMES], BATCH, 0);
    if (n > 0) sent += n;
    else failed++;
  }
  const elapsed = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ sent, failed, seconds: elapsed, cpuSeconds: threadCpu() - cpuStart }));
  c.close();
}

// ---------------------------------------------------------------- orchestrator

async function sh(
  args: string[],
  timeoutMs = 30_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(args[0], { args: args.slice(1), stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

async function shOk(args: string[]): Promise<string> {
  const r = await sh(args);
  if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A background process whose stderr is collected; `ready` resolves when stderr matches. */
function background(args: string[], ready: RegExp, limitMs: number) {
  const child = new Deno.Command(args[0], { args: args.slice(1), stdout: "null", stderr: "piped" }).spawn();
  let stderr = "";
  let resolveReady = () => {};
  const readyPromise = new Promise<void>((r) => resolveReady = r);
  const done = (async () => {
    const d = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += d.decode(chunk, { stream: true });
      if (ready.test(stderr)) resolveReady();
    }
  })();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, limitMs);
  return {
    pid: child.pid,
    ready: Promise.race([
      readyPromise,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`not ready: ${stderr}`)), 15_000)),
    ]),
    async stop(): Promise<string> {
      try {
        child.kill("SIGINT");
      } catch { /* gone */ }
      await child.status;
      await done;
      clearTimeout(timer);
      return stderr;
    },
  };
}

interface Row {
  rate: string;
  tool: string;
  round: number;
  /** The ingress hook netstack's summary named. */
  hook?: string;
  /** Mean run time of the ingress program per packet, ns (with --bpf-stats). */
  programNs?: number;
  /** The sender thread's CPU time per packet sent, ns (the receive path's softirq work included). */
  senderNs: number;
  sent: number;
  offered: number;
  reached: number;
  captured: number;
  lost: number;
  cpu?: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      send: { type: "boolean", default: false },
      "test-run": { type: "string", default: "" },
      "test-ifindex": { type: "string", default: "0" },
      iface: { type: "string", default: "va" },
      "dst-mac": { type: "string", default: "" },
      "src-mac": { type: "string", default: "" },
      rate: { type: "string", default: "0" },
      rates: { type: "string", default: "50000,100000,150000,200000,250000,max" },
      seconds: { type: "string", default: "3" },
      senders: { type: "string", default: "1" },
      tools: { type: "string", default: "none,netstack,tcpdump" },
      expression: { type: "string", default: "" },
      rounds: { type: "string", default: "1" },
      "bpf-stats": { type: "boolean", default: false },
      "program-cost": { type: "boolean", default: false },
    },
  });
  const rounds = Number(values.rounds);
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) {
    throw new Error("--rounds must be in 1..20");
  }
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 30)) throw new Error("--seconds must be in (0, 30]");
  if (values["test-run"] !== "") {
    programCost(Number(values["test-run"]), Number(values["test-ifindex"]), 200_000, 7);
    return;
  }
  if (values.send) {
    send(values.iface, values["dst-mac"], values["src-mac"], Number(values.rate), seconds);
    return;
  }
  if (Deno.uid() !== 0) throw new Error("run as root (namespaces, XDP)");

  const id = crypto.randomUUID().slice(0, 6);
  const peer = `ns-trace-bench-p${id}`;
  const local = `ns-trace-bench-l${id}`;
  const inPeer = (args: string[]) => ["ip", "netns", "exec", peer, ...args];
  const inLocal = (args: string[]) => ["ip", "netns", "exec", local, ...args];
  const rows: Row[] = [];
  const costs: { expression: string; programs: Record<string, { miss: number; hit: number }> }[] = [];
  const tools = values.tools.split(",");
  const statsSysctl = "/proc/sys/kernel/bpf_stats_enabled";
  const statsBefore = values["bpf-stats"] ? (await Deno.readTextFile(statsSysctl)).trim() : undefined;
  try {
    if (statsBefore !== undefined) await Deno.writeTextFile(statsSysctl, "1");
    await shOk(["ip", "netns", "add", peer]);
    await shOk(["ip", "netns", "add", local]);
    await shOk([
      "ip",
      "link",
      "add",
      "va",
      "netns",
      peer,
      "type",
      "veth",
      "peer",
      "name",
      "vb",
      "netns",
      local,
    ]);
    for (const [ns, dev, addr] of [[peer, "va", "10.99.0.1/24"], [local, "vb", "10.99.0.2/24"]]) {
      await shOk(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      await shOk(["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
      await shOk(["ip", "-n", ns, "link", "set", dev, "up"]);
    }
    const macA = (await shOk(inPeer(["cat", "/sys/class/net/va/address"]))).trim();
    const macB = (await shOk(inLocal(["cat", "/sys/class/net/vb/address"]))).trim();
    const rxPackets = async () =>
      Number(await shOk(inLocal(["cat", "/sys/class/net/vb/statistics/rx_packets"])));

    const senders = Number(values.senders);
    const expression = values.expression === "" ? [] : [values.expression];
    /** Runs `senders` sender processes (pinned to CPUs 0,1,…) sharing `rate`; returns the total sent. */
    const sendAt = async (rate: number) => {
      const results = await Promise.all(Array.from({ length: senders }, async (_, i) => {
        const r = await shOk(inPeer([
          "taskset",
          "-c",
          String(i % navigator.hardwareConcurrency),
          Deno.execPath(),
          "run",
          "-A",
          SELF,
          "--send",
          "--iface",
          "va",
          "--dst-mac",
          macB,
          "--src-mac",
          macA,
          "--rate",
          String(rate / senders),
          "--seconds",
          String(seconds),
        ]));
        return JSON.parse(r) as { sent: number; seconds: number; cpuSeconds: number };
      }));
      return {
        sent: results.reduce((n, r) => n + r.sent, 0),
        seconds: Math.max(...results.map((r) => r.seconds)),
        cpuSeconds: results.reduce((n, r) => n + r.cpuSeconds, 0),
      };
    };
    /** CPU seconds (user + system) a process has used so far. */
    const cpuSeconds = async (pid: number) => {
      const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1].split(" ");
      return (Number(fields[11]) + Number(fields[12])) / 100;
    };
    const pcap = await Deno.makeTempFile({ suffix: ".pcap" });
    /** Mean ns per run of the tracer's busiest BPF program (the ingress one), from its fdinfo. */
    const programNs = async (pid: number) => {
      let best = { ns: 0, count: 0 };
      for await (const entry of Deno.readDir(`/proc/${pid}/fdinfo`)) {
        const info = await Deno.readTextFile(`/proc/${pid}/fdinfo/${entry.name}`).catch(() => "");
        const ns = /^run_time_ns:\s*(\d+)$/m.exec(info);
        const count = /^run_cnt:\s*(\d+)$/m.exec(info);
        if (ns && count && Number(count[1]) > best.count) {
          best = { ns: Number(ns[1]), count: Number(count[1]) };
        }
      }
      return best.count > 0 ? Math.round(best.ns / best.count) : undefined;
    };
    /** Runs the sender once with `tool` attached (see the module comment for the names). */
    const runTool = async (toolSpec: string, rate: number, round: number): Promise<Row> => {
      const [tool, scope] = toolSpec.split(":");
      const expr = scope === "all" ? [] : expression;
      let stopTool = () => Promise.resolve({ captured: 0, lost: 0, hook: undefined as string | undefined });
      let pid = 0;
      if (tool.startsWith("netstack")) {
        // netstack: `-q -w FILE`; netstack-text: text lines to /dev/null; netstack-json: JSON lines.
        const output = tool === "netstack-json"
          ? ["--json"]
          : tool === "netstack-text"
          ? []
          : ["-q", "-w", pcap];
        const hook = {
          "netstack-tcx": ["--ingress-hook", "tcx"],
          "netstack-xdp": ["--ingress-hook", "xdp"],
          "netstack-native": ["--mode", "native"],
        }[tool] ?? [];
        const p = background(
          inLocal([Deno.execPath(), "run", "-A", ENTRY, "trace", "-i", "vb", ...hook, ...output, ...expr]),
          /^tracing /m,
          60_000,
        );
        await p.ready;
        pid = p.pid;
        stopTool = async () => {
          const err = await p.stop();
          const m = /^vb ingress (\S+): seen (\d+) matched (\d+) captured (\d+) lost (\d+)$/m.exec(err);
          if (!m) throw new Error(`no summary: ${err}`);
          return { captured: Number(m[4]), lost: Number(m[5]), hook: m[1] };
        };
      } else if (tool === "tcpdump") {
        const p = background(
          inLocal(["tcpdump", "-i", "vb", "-n", "-q", "-w", pcap, ...expr]),
          /listening on/,
          60_000,
        );
        await p.ready;
        pid = p.pid;
        stopTool = async () => {
          const err = await p.stop();
          const captured = /(\d+) packets? captured/.exec(err);
          const dropped = /(\d+) packets? dropped by kernel/.exec(err);
          if (!captured || !dropped) throw new Error(`no tcpdump summary: ${err}`);
          return { captured: Number(captured[1]), lost: Number(dropped[1]), hook: "AF_PACKET" };
        };
      } else if (tool !== "none") {
        throw new Error(`unknown tool ${tool}`);
      }
      const before = await rxPackets();
      const cpuBefore = pid ? await cpuSeconds(pid) : 0;
      const sent = await sendAt(rate);
      const cpu = pid ? Math.round(((await cpuSeconds(pid)) - cpuBefore) / sent.seconds * 100) : undefined;
      // tcpdump's TPACKET_V3 ring hands over a block when it is full or after its 1 s timeout, and what
      // is still in the ring at SIGINT is not counted: give it that second.
      await new Promise((r) => setTimeout(r, tool === "tcpdump" ? 1300 : 300));
      const reached = (await rxPackets()) - before;
      const ns = statsBefore !== undefined && tool.startsWith("netstack") ? await programNs(pid) : undefined;
      const { captured, lost, hook } = await stopTool();
      return {
        rate: "",
        tool: toolSpec,
        round,
        hook,
        programNs: ns,
        senderNs: Math.round(sent.cpuSeconds * 1e9 / Math.max(1, sent.sent)),
        sent: sent.sent,
        offered: Math.round(sent.sent / sent.seconds),
        reached,
        captured,
        lost,
        cpu,
      };
    };
    try {
      for (let round = 1; round <= rounds; round++) {
        for (const rateText of values.rates.split(",")) {
          const rate = rateText === "max" ? 0 : Number(rateText);
          // Each round starts one tool later, so that no tool always runs first (or right after another).
          const order = tools.map((_, i) => tools[(i + round - 1) % tools.length]);
          for (const tool of order) {
            const row = await runTool(tool, rate, round);
            row.rate = rateText;
            rows.push(row);
            console.error(JSON.stringify(row));
          }
        }
      }
      if (values["program-cost"]) {
        // The programs of a running trace, with and without the expression, run by BPF_PROG_TEST_RUN.
        const ifindex = (await shOk(inLocal(["cat", "/sys/class/net/vb/ifindex"]))).trim();
        for (const expr of values.expression === "" ? [[]] : [expression, []]) {
          const p = background(
            inLocal([Deno.execPath(), "run", "-A", ENTRY, "trace", "-i", "vb", "-q", "-w", pcap, ...expr]),
            /^tracing /m,
            60_000,
          );
          await p.ready;
          try {
            const out = await shOk(inLocal([
              Deno.execPath(),
              "run",
              "-A",
              SELF,
              "--test-run",
              String(p.pid),
              "--test-ifindex",
              ifindex,
            ]));
            costs.push({ expression: expr[0] ?? "(none)", programs: JSON.parse(out) });
          } finally {
            await p.stop();
          }
        }
      }
    } finally {
      await Deno.remove(pcap).catch(() => {});
    }
  } finally {
    await sh(["ip", "netns", "delete", peer]);
    await sh(["ip", "netns", "delete", local]);
    if (statsBefore !== undefined) await Deno.writeTextFile(statsSysctl, statsBefore);
  }
  console.log(
    `senders: ${values.senders}, ${seconds} s per run, ${rounds} round(s), 60-byte UDP frames to ports 1000..1099` +
      (values.expression === ""
        ? ""
        : `, expression '${values.expression}' (netstack and tcpdump; not for tools ending in :all)`),
  );
  const dash = (v: number | string | undefined) => v === undefined ? "–" : String(v);
  console.log(
    "| round | target pps | tool | hook | sent/s | sender ns/packet | reached vb | captured | lost | captured/s | tool CPU % | program ns/packet |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    const none = r.tool === "none";
    console.log(
      `| ${r.round} | ${r.rate} | ${r.tool} | ${
        dash(r.hook)
      } | ${r.offered} | ${r.senderNs} | ${r.reached} | ${none ? "–" : r.captured} | ${
        none ? "–" : r.lost
      } | ${none ? "–" : Math.round(r.captured / seconds)} | ${dash(r.cpu)} | ${dash(r.programNs)} |`,
    );
  }
  if (costs.length > 0) {
    console.log("");
    console.log("| program | expression | ns per run, rejected frame | ns per run, selected frame |");
    console.log("| --- | --- | --- | --- |");
    for (const { expression, programs } of costs) {
      for (const [name, { miss, hit }] of Object.entries(programs)) {
        console.log(`| ${name} | ${expression} | ${miss} | ${hit} |`);
      }
    }
  }
  if (rounds < 2) return;
  // Medians over the rounds, and ratios to tcpdump's medians at the same rate.
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  console.log("");
  // The ratios are medians of each round's ratio to tcpdump's run of the same round: on a loaded machine
  // the runs of one round are closer in conditions than the medians of separate runs.
  console.log(
    "| target pps | tool | hook | sent/s (median) | × tcpdump | sender ns/packet (median) | × tcpdump | captured/s | × tcpdump | lost (max) | tool CPU % | program ns/packet |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const rate of values.rates.split(",")) {
    const of = (tool: string) => rows.filter((r) => r.rate === rate && r.tool === tool);
    const tcpdump = of("tcpdump");
    /** The median over rounds of `value(row) / value(tcpdump's row of the same round)`. */
    const roundRatio = (rs: Row[], value: (r: Row) => number) => {
      const ratios = rs.flatMap((r) => {
        const reference = tcpdump.find((t) => t.round === r.round);
        return reference && value(reference) > 0 ? [value(r) / value(reference)] : [];
      });
      return ratios.length ? median(ratios).toFixed(2) : "–";
    };
    for (const tool of tools) {
      const rs = of(tool);
      const none = tool === "none";
      // Tools without the expression capture everything: their captured/s is not comparable.
      const sameSelection = !tool.endsWith(":all") || values.expression === "";
      const sent = median(rs.map((r) => r.offered));
      const captured = median(rs.map((r) => r.captured / seconds));
      const cpus = rs.flatMap((r) => r.cpu === undefined ? [] : [r.cpu]);
      const ns = rs.flatMap((r) => r.programNs === undefined ? [] : [r.programNs]);
      console.log(
        `| ${rate} | ${tool} | ${dash(rs[0]?.hook)} | ${Math.round(sent)} | ${
          roundRatio(rs, (r) => r.offered)
        } | ${median(rs.map((r) => r.senderNs))} | ${roundRatio(rs, (r) => r.senderNs)} | ${
          none ? "–" : Math.round(captured)
        } | ${none || !sameSelection ? "–" : roundRatio(rs, (r) => r.captured)} | ${
          none ? "–" : Math.max(...rs.map((r) => r.lost))
        } | ${cpus.length ? median(cpus) : "–"} | ${ns.length ? median(ns) : "–"} |`,
      );
    }
  }
}

if (import.meta.main) await main();

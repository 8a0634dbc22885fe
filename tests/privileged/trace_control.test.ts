/**
 * netstack trace's life cycle in namespaces joined by a veth pair: --count, several interfaces, detach on
 * SIGTERM, nothing left after SIGKILL, and the one-line errors.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import {
  attachedPrograms,
  LOCAL_ADDRESS,
  runTracer,
  TracerProcess,
  withVethPair,
} from "../helpers/trace_veth.ts";

privilegedTest("trace: -c stops after N packets, with two interfaces", async () => {
  await withVethPair(async ({ peer, local }) => {
    const tracer = await TracerProcess.start(
      local,
      ["-i", "vb", "-i", "lo", "--proto", "icmp", "-c", "3"],
      4,
    );
    // Bounded: at most 10 pings; the tracer must exit by itself after the third echo request.
    const ping = peer.run(["ping", "-c", "10", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
    const code = await tracer.wait();
    await ping;
    assert.equal(code, 0, tracer.stderr);
    const lines = tracer.stdout.trim().split("\n");
    assert.equal(lines.length, 3, tracer.stdout);
    // Both directions (the default): request 1 in, its reply out, request 2 in, then the stop.
    assert.match(lines[0], /vb ingress ICMP .*echo request, id \d+, seq 1,/);
    assert.match(lines[1], /vb egress ICMP .*echo reply, id \d+, seq 1,/);
    assert.match(lines[2], /vb ingress ICMP .*echo request, id \d+, seq 2,/);
    // Ingress at tcx: the default on virtual devices (veth, loopback).
    assert.match(tracer.stderr, /^vb ingress tcx: seen \d+ matched \d+ captured 2 lost 0$/m);
    assert.match(tracer.stderr, /^vb egress tcx: seen \d+ matched \d+ captured 1 lost 0$/m);
    assert.match(tracer.stderr, /^lo ingress tcx: seen \d+ matched 0 captured 0 lost 0$/m);
    assert.match(tracer.stderr, /^lo egress tcx: seen \d+ matched 0 captured 0 lost 0$/m);
  });
});

privilegedTest("trace: SIGKILL leaves no XDP or tcx program on the link", async () => {
  await withVethPair(async ({ local }) => {
    assert.deepEqual(await attachedPrograms(local, "vb"), { xdp: false, tcxEgress: 0, tcxIngress: 0 });
    // The default (tcx both ways on a veth), then ingress on XDP.
    for (
      const [hook, attached] of [
        ["auto", { xdp: false, tcxEgress: 1, tcxIngress: 1 }],
        ["xdp", { xdp: true, tcxEgress: 1, tcxIngress: 0 }],
      ] as const
    ) {
      const tracer = await TracerProcess.start(
        local,
        ["-i", "vb", "--direction", "both", "--ingress-hook", hook, "-q"],
        2,
      );
      assert.deepEqual(await attachedPrograms(local, "vb"), attached, hook);
      tracer.kill("SIGKILL");
      await tracer.wait();
      // Link fds close with the process; the kernel releases the links right away.
      assert.deepEqual(await attachedPrograms(local, "vb"), { xdp: false, tcxEgress: 0, tcxIngress: 0 });
    }
  });
});

privilegedTest("trace: SIGTERM detaches a clsact egress filter and prints the summary", async () => {
  await withVethPair(async ({ local }) => {
    const tracer = await TracerProcess.start(local, [
      "-i",
      "vb",
      "--direction",
      "egress",
      "--egress-hook",
      "clsact",
    ], 1);
    const filters = await local.exec(["tc", "filter", "show", "dev", "vb", "egress"]);
    assert.match(filters, /bpf.*direct-action/);
    tracer.kill("SIGTERM");
    assert.equal(await tracer.wait(), 0, tracer.stderr);
    assert.match(tracer.stderr, /^vb egress clsact: seen \d+ matched \d+ captured \d+ lost 0$/m);
    assert.equal((await local.exec(["tc", "filter", "show", "dev", "vb", "egress"])).trim(), "");
  });
});

privilegedTest(
  "trace: errors are one line with exit 1 (missing interface, no native XDP, no privileges) or 2",
  async () => {
    await withVethPair(async ({ local }) => {
      const missing = await runTracer(local, ["-i", "nope0"]);
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr.trim(), "netstack: interface nope0 not found");

      // The namespace's loopback has no native XDP support.
      const native = await runTracer(local, ["-i", "lo", "--mode", "native"]);
      assert.equal(native.code, 1, native.stderr);
      assert.match(native.stderr.trim(), /^netstack: lo: .*native XDP: use --mode generic$/);

      // Root without capabilities (empty bounding set): the load is refused.
      const unprivileged = await runTracer(local, ["-i", "vb"], [
        "setpriv",
        "--bounding-set=-all",
        "--inh-caps=-all",
      ]);
      assert.equal(unprivileged.code, 1, unprivileged.stderr);
      assert.match(
        unprivileged.stderr.trim(),
        /^netstack: loading the BPF programs on vb: permission denied .*CAP_BPF and CAP_NET_ADMIN$/,
      );

      const usage = await runTracer(local, ["--mode", "turbo"]);
      assert.equal(usage.code, 2);
      assert.match(
        usage.stderr,
        /^netstack trace: --mode must be one of auto, native, generic, got 'turbo'$/m,
      );
    });
  },
);

privilegedTest(
  "trace: packets lost to a full ring buffer are counted (reader stopped with SIGSTOP)",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      const tracer = await TracerProcess.start(local, ["-i", "vb", "-q", "--proto", "udp", "--port", "9"], 2);
      try {
        tracer.kill("SIGSTOP");
        // 160,000 46-byte frames: each record takes 80 bytes of the 8 MiB ring, which holds 104,857.
        const script = `import socket
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(("va",0))
f=bytes.fromhex("02000000000b02000000000a0800" + "4500002000000000401100000a6300010a630002" + "9c400009000c000000000000")
for _ in range(160000): s.send(f)
`;
        await peer.exec(["/usr/bin/python3", "-c", script], { timeoutMs: 30_000 });
      } finally {
        tracer.kill("SIGCONT");
      }
      await new Promise((r) => setTimeout(r, 300));
      tracer.kill("SIGINT");
      assert.equal(await tracer.wait(), 0, tracer.stderr);
      const m = /^vb ingress \S+: seen (\d+) matched (\d+) captured (\d+) lost (\d+)$/m.exec(tracer.stderr);
      assert.ok(m, tracer.stderr);
      const [seen, matched, captured, lost] = m.slice(1).map(Number);
      assert.ok(seen >= 160_000, `seen ${seen}`);
      assert.equal(matched, 160_000);
      assert.ok(lost > 40_000, `lost ${lost}`);
      assert.ok(captured > 100_000, `captured ${captured}`);
      assert.equal(captured + lost, matched);
    });
  },
);

privilegedTest("trace: --mode native attaches native XDP on a veth (auto chose tcx)", async () => {
  await withVethPair(async ({ peer, local }) => {
    const tracer = await TracerProcess.start(local, [
      "-i",
      "vb",
      "--direction",
      "ingress",
      "--mode",
      "native",
      "--proto",
      "icmp",
      "-c",
      "2",
    ], 1);
    await peer.run(["ping", "-c", "4", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
    assert.equal(await tracer.wait(), 0, tracer.stderr);
    assert.match(tracer.stderr, /^tracing vb ingress \(xdp\/native\)$/m);
    assert.match(tracer.stderr, /^vb ingress xdp\/native: seen \d+ matched \d+ captured 2 lost 0$/m);
    assert.equal(tracer.stdout.trim().split("\n").length, 2);
  });
});

privilegedTest(
  "trace: on a veth the default ingress hook is tcx, named in the summary; --mode generic and --ingress-hook xdp take XDP",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      for (
        const [args, hook, attached] of [
          [[], "tcx", { xdp: false, tcxEgress: 0, tcxIngress: 1 }],
          [["--mode", "generic"], "xdp/generic", { xdp: true, tcxEgress: 0, tcxIngress: 0 }],
          [["--ingress-hook", "xdp"], "xdp/generic", { xdp: true, tcxEgress: 0, tcxIngress: 0 }],
        ] as const
      ) {
        const tracer = await TracerProcess.start(
          local,
          ["-i", "vb", "--direction", "ingress", "--proto", "icmp", "-c", "2", ...args],
          1,
        );
        assert.deepEqual(await attachedPrograms(local, "vb"), attached, args.join(" "));
        await peer.run(["ping", "-c", "4", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
        assert.equal(await tracer.wait(), 0, tracer.stderr);
        const escaped = hook.replace("/", "\\/");
        assert.match(tracer.stderr, new RegExp(`^tracing vb ingress \\(${escaped}\\)$`, "m"));
        assert.match(
          tracer.stderr,
          new RegExp(`^vb ingress ${escaped}: seen \\d+ matched \\d+ captured 2 lost 0$`, "m"),
        );
        assert.equal(tracer.stdout.trim().split("\n").length, 2);
        assert.doesNotMatch(tracer.stderr, /another XDP program/);
      }
    });
  },
);

privilegedTest(
  "trace: two interfaces with the same counter slot (ifindex 64 apart) keep their own counters",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      // vb owns its counter slot (ifindex % 64); d0, created with an ifindex 64 higher, falls back to
      // the hash map. ICMP out of d0 (to a fixed neighbour; its veth peer d1 drops it) is counted on
      // d0's egress.
      const vbIndex = Number((await local.exec(["cat", "/sys/class/net/vb/ifindex"])).trim());
      await local.exec([
        "ip",
        "link",
        "add",
        "d0",
        "index",
        String(vbIndex + 64),
        "type",
        "veth",
        "peer",
        "name",
        "d1",
      ]);
      await local.exec(["ip", "addr", "add", "10.77.0.1/24", "dev", "d0"]);
      await local.exec(["ip", "link", "set", "d0", "up"]);
      await local.exec(["ip", "link", "set", "d1", "up"]);
      await local.exec([
        "ip",
        "neigh",
        "replace",
        "10.77.0.2",
        "lladdr",
        "02:00:00:00:77:02",
        "dev",
        "d0",
        "nud",
        "permanent",
      ]);
      const tracer = await TracerProcess.start(
        local,
        ["-i", "vb", "-i", "d0", "--proto", "icmp", "-q"],
        4,
      );
      await peer.run(["ping", "-c", "3", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
      await local.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.2"], { timeoutMs: 10_000 });
      tracer.kill("SIGINT");
      assert.equal(await tracer.wait(), 0, tracer.stderr);
      assert.match(tracer.stderr, /^vb ingress tcx: seen \d+ matched 3 captured 3 lost 0$/m);
      assert.match(tracer.stderr, /^vb egress tcx: seen \d+ matched 3 captured 3 lost 0$/m);
      assert.match(tracer.stderr, /^d0 ingress tcx: seen \d+ matched 0 captured 0 lost 0$/m);
      assert.match(tracer.stderr, /^d0 egress tcx: seen \d+ matched 2 captured 2 lost 0$/m);
    });
  },
);

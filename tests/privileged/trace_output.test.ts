/**
 * netstack trace's output habits against tcpdump and tshark, in namespaces it creates: `-w` with and
 * without `--print`, `-w -` piped into `tcpdump -r -`, `-C`/`-W` rotation, pcapng with interface names,
 * directions and statistics, two traces of one interface at once, and `-i any` over a bridge.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { Netns, run, runOk, withNetns } from "../helpers/netns.ts";
import { netstackCommand, startStack } from "../helpers/stack_process.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";
import { parsePcapng } from "../../lib/pcap/pcapng_reader.ts";
import {
  attachedPrograms,
  LOCAL_ADDRESS,
  spawnPython,
  TracerProcess,
  withVethPair,
} from "../helpers/trace_veth.ts";

async function tempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "netstack-trace-out-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Non-empty lines of tcpdump's or tshark's output. */
const linesOf = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

function summary(stderr: string, iface: string, direction: string) {
  const m = new RegExp(
    `^${iface} ${direction} (\\S+): seen (\\d+) matched (\\d+) captured (\\d+) lost (\\d+)$`,
    "m",
  )
    .exec(stderr);
  assert.ok(m, `no ${iface} ${direction} summary in: ${stderr}`);
  return { hook: m[1], seen: +m[2], matched: +m[3], captured: +m[4], lost: +m[5] };
}

privilegedTest(
  "trace output: -w alone prints no packet lines, --print does; two traces of one interface both see the packets",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      await tempDir(async (dir) => {
        // Both ask for XDP (a veth's default is tcx, which is shared anyway): the second finds XDP
        // taken by the first, says so and traces ingress with tcx.
        const quiet = await TracerProcess.start(
          local,
          ["-i", "vb", "--mode", "generic", "-n", "-w", `${dir}/a.pcap`],
          2,
        );
        const printing = await TracerProcess.start(
          local,
          ["-i", "vb", "--mode", "generic", "-nn", "-w", `${dir}/b.pcap`, "--print"],
          2,
        );
        try {
          assert.match(
            printing.stderr,
            /vb: another XDP program is already attached .*; tracing ingress with tcx instead/,
          );
          assert.deepEqual(await attachedPrograms(local, "vb"), { xdp: true, tcxEgress: 2, tcxIngress: 1 });
          await peer.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
          await new Promise((r) => setTimeout(r, 200));
        } finally {
          quiet.kill("SIGINT");
          printing.kill("SIGINT");
        }
        assert.equal(await quiet.wait(), 0, quiet.stderr);
        assert.equal(await printing.wait(), 0, printing.stderr);
        assert.equal(quiet.stdout, "", "-w alone prints nothing on stdout");
        const printed = linesOf(printing.stdout);
        assert.equal(printed.length, 6, printing.stdout);
        assert.equal(printed.filter((l) => / vb ingress ICMP .*echo request/.test(l)).length, 3);
        assert.equal(printed.filter((l) => / vb egress ICMP .*echo reply/.test(l)).length, 3);
        assert.match(quiet.stderr, /^6 packets written to .*a\.pcap$/m);
        assert.equal(summary(printing.stderr, "vb", "ingress").hook, "tcx");
        assert.equal(summary(quiet.stderr, "vb", "ingress").hook, "xdp/generic");
        // Both files hold the same six packets, read by tcpdump.
        for (const name of ["a.pcap", "b.pcap"]) {
          const dump = await run(["tcpdump", "-nn", "-r", `${dir}/${name}`]);
          assert.equal(dump.code, 0, dump.stderr);
          const lines = linesOf(dump.stdout);
          assert.equal(lines.length, 6, `${name}: ${dump.stdout}`);
          assert.equal(lines.filter((l) => /ICMP echo request/.test(l)).length, 3);
          assert.equal(lines.filter((l) => /ICMP echo reply/.test(l)).length, 3);
        }
      });
    });
  },
);

/** Runs `netstack trace ARGS | tcpdump -nn -r -` in `ns` while `traffic` runs; returns what tcpdump said. */
async function pipeIntoTcpdump(ns: Netns, args: string[], traffic: () => Promise<void>) {
  const trace = netstackCommand("trace", ...args).join(" ");
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns.name, "sh", "-c", `${trace} | tcpdump -nn -r -`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  let stderr = "";
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  const stdout = new Response(child.stdout).text();
  const deadline = Date.now() + 15_000;
  while ((stderr.match(/^tracing /gm) ?? []).length < 2 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await traffic();
  const status = await child.status;
  clearTimeout(timer);
  await stderrDone;
  return { code: status.code, stdout: await stdout, stderr };
}

privilegedTest(
  "trace output: -w - writes the capture to stdout for tcpdump -r -, -s 0 is the maximum",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      const result = await pipeIntoTcpdump(local, ["-i", "vb", "-w", "-", "-s", "0", "-c", "6"], async () => {
        await peer.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-s", "1000", LOCAL_ADDRESS], {
          timeoutMs: 10_000,
        });
      });
      assert.equal(result.code, 0, result.stderr);
      const lines = linesOf(result.stdout);
      assert.equal(lines.length, 6, result.stdout);
      assert.equal(lines.filter((l) => /ICMP echo request.*length 1008/.test(l)).length, 3, result.stdout);
      assert.equal(lines.filter((l) => /ICMP echo reply.*length 1008/.test(l)).length, 3, result.stdout);
      // -s 0: the maximum snap length, so the 1042-byte frames arrive whole.
      assert.match(result.stderr, /link-type EN10MB \(Ethernet\), snapshot length 4096/);
      assert.doesNotMatch(result.stdout, /\[\|icmp\]/);
      assert.match(result.stderr, /^6 packets written to standard output$/m);
    });
  },
);

privilegedTest("trace output: -C 1 -W 3 rotates like tcpdump (FILE0..FILE2, each readable)", async () => {
  await withVethPair(async ({ peer, local }) => {
    await tempDir(async (dir) => {
      const tracer = await TracerProcess.start(
        local,
        [
          "-i",
          "vb",
          "--direction",
          "ingress",
          "--proto",
          "udp",
          "-s",
          "0",
          "-w",
          `${dir}/rot`,
          "-C",
          "1",
          "-W",
          "3",
        ],
        1,
      );
      // 2,400 datagrams of 1,400 bytes: 1,458 bytes per record, ~3.5 MB in all, so four files are
      // started and the fourth overwrites rot0.
      const flood = `import socket,time
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
for i in range(2400):
    s.sendto(i.to_bytes(4,"big")*350,("${LOCAL_ADDRESS}",9))
    if i % 200 == 0: time.sleep(0.01)
`;
      assert.equal((await spawnPython(peer, flood, 20_000).done).code, 0);
      await new Promise((r) => setTimeout(r, 300));
      tracer.kill("SIGINT");
      assert.equal(await tracer.wait(), 0, tracer.stderr);
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assert.deepEqual(names, ["rot0", "rot1", "rot2"]);
      assert.equal(summary(tracer.stderr, "vb", "ingress").captured, 2400);
      assert.equal(summary(tracer.stderr, "vb", "ingress").lost, 0);
      const sequence = (name: string) =>
        parsePcap(Deno.readFileSync(`${dir}/${name}`)).records.map((r) =>
          new DataView(r.data.buffer, r.data.byteOffset).getUint32(42)
        );
      const [rot0, rot1, rot2] = names.map(sequence);
      // Rotation before the packet that would go into a file already above 1,000,000 bytes.
      for (const name of ["rot1", "rot2"]) {
        const size = Deno.statSync(`${dir}/${name}`).size;
        assert.ok(size > 1_000_000 && size <= 1_000_000 + 1458, `${name}: ${size} bytes`);
      }
      // The files continue one another: rot1, rot2, then rot0 (overwritten last) with the end.
      assert.equal(rot2[0], rot1.at(-1)! + 1);
      assert.equal(rot0[0], rot2.at(-1)! + 1);
      assert.equal(rot0.at(-1), 2399);
      for (const name of names) {
        const dump = await run(["tcpdump", "-nn", "-r", `${dir}/${name}`]);
        assert.equal(dump.code, 0, `${name}: ${dump.stderr}`);
        assert.equal(linesOf(dump.stdout).length, sequence(name).length);
      }
    });
  });
});

privilegedTest(
  "trace output: two interfaces go into pcapng; tshark shows names and directions, statistics match",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      await tempDir(async (dir) => {
        const path = `${dir}/two.pcap`; // several interfaces: pcapng whatever the name
        const tracer = await TracerProcess.start(local, [
          "-i",
          "vb",
          "-i",
          "lo",
          "--proto",
          "icmp",
          "-w",
          path,
        ], 4);
        await peer.exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
        await local.exec(["ping", "-c", "1", "-W", "1", "127.0.0.1"], { timeoutMs: 10_000 });
        await new Promise((r) => setTimeout(r, 200));
        tracer.kill("SIGINT");
        assert.equal(await tracer.wait(), 0, tracer.stderr);

        const shark = await run([
          "tshark",
          "-r",
          path,
          "-T",
          "fields",
          "-e",
          "frame.interface_name",
          "-e",
          "frame.packet_flags_direction",
          "-e",
          "icmp.type",
        ]);
        assert.equal(shark.code, 0, shark.stderr);
        const rows = linesOf(shark.stdout).map((l) => l.split("\t").join(" "));
        const vb = rows.filter((r) => r.startsWith("vb "));
        // vb: request in, reply out, twice.
        assert.deepEqual(vb, [
          "vb 0x00000001 8",
          "vb 0x00000002 0",
          "vb 0x00000001 8",
          "vb 0x00000002 0",
        ]);
        // lo: the request goes out and comes back in, then the reply.
        const lo = rows.filter((r) => r.startsWith("lo ")).sort();
        assert.deepEqual(lo, ["lo 0x00000001 0", "lo 0x00000001 8", "lo 0x00000002 0", "lo 0x00000002 8"]);
        assert.equal(rows.length, 8, shark.stdout);

        const file = parsePcapng(await Deno.readFile(path));
        assert.deepEqual(
          file.interfaces.map((i) => [i.name, i.description, i.linkType, i.snaplen, i.unitsPerSecond]),
          [
            ["vb", "ingress tcx", 1, 128, 1e9],
            ["vb", "egress tcx", 1, 128, 1e9],
            ["lo", "ingress tcx", 1, 128, 1e9],
            ["lo", "egress tcx", 1, 128, 1e9],
          ],
        );
        // One statistics block per interface block, with the summary's numbers.
        for (
          const [id, [iface, direction]] of [["vb", "ingress"], ["vb", "egress"], ["lo", "ingress"], [
            "lo",
            "egress",
          ]].entries()
        ) {
          const s = summary(tracer.stderr, iface, direction);
          const isb = file.statistics.find((x) => x.interfaceId === id);
          assert.ok(isb, `statistics of interface ${id}`);
          assert.deepEqual(
            [isb.received, isb.accepted, isb.osDropped, isb.delivered],
            [s.seen, s.matched, s.lost, s.captured].map(BigInt),
          );
        }
        // All interfaces are Ethernet here, so tcpdump (libpcap 1.10) reads the file as well.
        const dump = await run(["tcpdump", "-nn", "-r", path]);
        assert.equal(dump.code, 0, dump.stderr);
        assert.equal(linesOf(dump.stdout).length, 8);
      });
    });
  },
);

privilegedTest(
  "trace output: -i any traces every interface that is up but loopback, and those that come up later",
  async () => {
    const namespaces: Netns[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const ns = await Netns.create("ns-any");
        namespaces.push(ns);
        await ns.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        await ns.exec(["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
      }
      const [sw, a, b, c] = namespaces;
      await sw.exec(["ip", "link", "add", "br0", "type", "bridge"]);
      const plug = async (port: string, host: Netns, address: string) => {
        await runOk([
          "ip",
          "link",
          "add",
          port,
          "netns",
          sw.name,
          "type",
          "veth",
          "peer",
          "name",
          "e0",
          "netns",
          host.name,
        ]);
        await host.exec(["ip", "addr", "add", `${address}/24`, "dev", "e0"]);
        await host.exec(["ip", "link", "set", "e0", "up"]);
        await sw.exec(["ip", "link", "set", port, "master", "br0", "up"]);
      };
      await plug("p1", a, "10.98.0.1");
      await plug("p2", b, "10.98.0.2");
      await sw.exec(["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"]); // down: not traced
      await sw.exec(["ip", "link", "set", "br0", "up"]);
      await tempDir(async (dir) => {
        const path = `${dir}/any.pcapng`;
        const tracer = await TracerProcess.start(sw, ["-i", "any", "--proto", "icmp", "-w", path], 6);
        const traced = () =>
          [...tracer.stderr.matchAll(/^tracing (\S+) (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
        assert.deepEqual(traced().sort(), [
          "br0 egress",
          "br0 ingress",
          "p1 egress",
          "p1 ingress",
          "p2 egress",
          "p2 ingress",
        ]);
        await a.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.98.0.2"], { timeoutMs: 15_000 });
        // A port plugged in while the trace runs is traced from then on (rtnetlink RTM_NEWLINK).
        await plug("p3", c, "10.98.0.3");
        const deadline = Date.now() + 5_000;
        while (!traced().includes("p3 egress") && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(traced().includes("p3 ingress") && traced().includes("p3 egress"), tracer.stderr);
        await c.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.98.0.2"], { timeoutMs: 15_000 });
        await new Promise((r) => setTimeout(r, 200));
        tracer.kill("SIGINT");
        assert.equal(await tracer.wait(), 0, tracer.stderr);
        const shark = await run([
          "tshark",
          "-r",
          path,
          "-T",
          "fields",
          "-e",
          "frame.interface_name",
          "-e",
          "frame.packet_flags_direction",
          "-e",
          "icmp.type",
        ]);
        assert.equal(shark.code, 0, shark.stderr);
        const rows = linesOf(shark.stdout).map((l) => l.split("\t").join(" "));
        // Each echo request enters at the sender's port and leaves at p2; each reply the other way.
        for (const row of ["p1 0x00000001 8", "p1 0x00000002 0", "p3 0x00000001 8", "p3 0x00000002 0"]) {
          assert.equal(rows.filter((r) => r === row).length, 2, `${row} in ${shark.stdout}`);
        }
        assert.equal(rows.filter((r) => r === "p2 0x00000002 8").length, 4, shark.stdout);
        assert.equal(rows.filter((r) => r === "p2 0x00000001 0").length, 4, shark.stdout);
        assert.equal(rows.length, 16, shark.stdout);
        const file = parsePcapng(await Deno.readFile(path));
        assert.deepEqual(file.interfaces.map((i) => i.name).sort(), [
          "br0",
          "br0",
          "p1",
          "p1",
          "p2",
          "p2",
          "p3",
          "p3",
        ]);
        assert.equal(file.statistics.length, 8);
      });
    } finally {
      for (const ns of namespaces.reverse()) await ns.delete();
    }
  },
);

privilegedTest(
  "trace output: tun0 while the stack runs decodes ping and TCP from the IP header; --proto icmp matches",
  async () => {
    await withNetns("ns-trace-tun", async (ns) => {
      const stack = await startStack(ns);
      try {
        await tempDir(async (dir) => {
          const path = `${dir}/icmp.pcap`;
          // One trace on XDP, one at tcx ingress (the default on a TUN device): both parse raw IP.
          const all = await TracerProcess.start(ns, ["-i", "tun0", "--ingress-hook", "xdp", "--json"], 2);
          const icmpOnly = await TracerProcess.start(ns, ["-i", "tun0", "--proto", "icmp", "-w", path], 2);
          try {
            await ns.exec(["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"], { timeoutMs: 10_000 });
            const curl = await ns.run([
              "curl",
              "-s",
              "-m",
              "5",
              "-o",
              "/dev/null",
              "-w",
              "%{http_code}",
              "http://10.0.0.2/",
            ]);
            assert.equal(curl.stdout, "200", curl.stderr);
            await new Promise((r) => setTimeout(r, 300));
          } finally {
            all.kill("SIGINT");
            icmpOnly.kill("SIGINT");
          }
          assert.equal(await all.wait(), 0, all.stderr);
          assert.equal(await icmpOnly.wait(), 0, icmpOnly.stderr);

          // The host sends into tun0 (egress); the stack's answers come out of it (ingress).
          // deno-lint-ignore no-explicit-any
          const packets: any[] = linesOf(all.stdout).map((l) => JSON.parse(l));
          const icmp = packets.filter((p) => p.proto === "ICMP");
          assert.deepEqual(icmp.map((p) => [p.direction, p.src, p.dst, p.icmpType]), [
            ["egress", "10.0.0.1", "10.0.0.2", 8],
            ["ingress", "10.0.0.2", "10.0.0.1", 0],
            ["egress", "10.0.0.1", "10.0.0.2", 8],
            ["ingress", "10.0.0.2", "10.0.0.1", 0],
          ]);
          assert.ok(icmp.every((p) => p.srcMac === undefined && p.length === 64), all.stdout);
          const tcp = packets.filter((p) => p.proto === "TCP");
          assert.deepEqual(
            tcp.slice(0, 2).map((p) => [p.direction, p.dport ?? 0, p.sport ?? 0, p.tcpFlags]),
            [
              ["egress", 80, tcp[0].sport, "S"],
              ["ingress", tcp[0].sport, 80, "S."],
            ],
          );
          assert.equal(tcp[1].ack, tcp[0].seq + 1);
          assert.ok(tcp.some((p) => p.direction === "ingress" && p.sport === 80 && p.length > 0), all.stdout);
          // Anything else is the host's own IPv6 chatter (neighbour discovery, MLD), decoded as such.
          const other = packets.filter((p) => p.proto !== "ICMP" && p.proto !== "TCP");
          assert.ok(other.every((p) => p.proto === "ICMP6" || p.proto === "IP6"), all.stdout);

          // The second trace (tcx ingress) kept the ICMP packets only, as raw IP.
          assert.equal(summary(all.stderr, "tun0", "ingress").hook, "xdp/generic");
          assert.equal(summary(icmpOnly.stderr, "tun0", "ingress").hook, "tcx");
          const dump = await run(["tcpdump", "-nn", "-r", path]);
          assert.equal(dump.code, 0, dump.stderr);
          assert.match(dump.stderr, /link-type RAW/);
          const lines = linesOf(dump.stdout);
          assert.equal(lines.length, 4, dump.stdout);
          assert.equal(lines.filter((l) => /10\.0\.0\.1 > 10\.0\.0\.2: ICMP echo request/.test(l)).length, 2);
          assert.equal(lines.filter((l) => /10\.0\.0\.2 > 10\.0\.0\.1: ICMP echo reply/.test(l)).length, 2);
          assert.equal(parsePcap(await Deno.readFile(path)).linkType, 101);
          const out = summary(icmpOnly.stderr, "tun0", "egress");
          assert.ok(out.seen > out.matched && out.matched === 2, icmpOnly.stderr); // TCP seen, not matched
        });
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
    });
  },
);

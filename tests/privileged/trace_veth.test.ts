/**
 * netstack trace against known traffic over a veth pair between two fresh namespaces (never the
 * machine's own interfaces). The tracer runs in the `local` namespace on `vb`; traffic comes from `va`
 * in the `peer` namespace.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run } from "../helpers/netns.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";
import {
  LOCAL_ADDRESS,
  PEER_ADDRESS,
  sendUdp,
  spawnPython,
  TracerProcess,
  withVethPair,
} from "../helpers/trace_veth.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

const UDP_RECEIVER = (port: number, count: number) =>
  `import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("${LOCAL_ADDRESS}",${port})); s.settimeout(8)
for _ in range(${count}): s.recvfrom(2048)
`;

const TCP_SERVER = `import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("${LOCAL_ADDRESS}",7000)); s.listen(1); s.settimeout(8)
c,_=s.accept(); c.settimeout(8)
data=b""
while True:
    d=c.recv(100)
    if not d: break
    data+=d
c.sendall(b"bye"); c.close()
`;

const TCP_CLIENT = `import socket,time
c=socket.create_connection(("${LOCAL_ADDRESS}",7000),timeout=5); c.sendall(b"hello"); c.shutdown(socket.SHUT_WR)
while c.recv(100): pass
c.close(); time.sleep(0.2)
`;

async function tcpExchange(
  peer: Parameters<typeof spawnPython>[0],
  local: Parameters<typeof spawnPython>[0],
) {
  const server = spawnPython(local, TCP_SERVER);
  await new Promise((r) => setTimeout(r, 300));
  const client = spawnPython(peer, TCP_CLIENT);
  assert.equal((await client.done).code, 0, "tcp client");
  assert.equal((await server.done).code, 0, "tcp server");
}

privilegedTest("trace: known ping/UDP/TCP traffic in JSON and pcap, both directions", async () => {
  await withVethPair(async ({ peer, local }) => {
    const pcapPath = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const tracer = await TracerProcess.start(local, [
        "-i",
        "vb",
        "--direction",
        "both",
        "--json",
        "-w",
        pcapPath,
      ], 2);
      await peer.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
      const receiver = spawnPython(local, UDP_RECEIVER(5555, 3));
      await new Promise((r) => setTimeout(r, 300));
      await sendUdp(peer, LOCAL_ADDRESS, 40001, 5555, ["one", "two", "three"]);
      assert.equal((await receiver.done).code, 0, "udp receiver");
      await tcpExchange(peer, local);
      await new Promise((r) => setTimeout(r, 200));
      tracer.kill("SIGINT");
      assert.equal(await tracer.wait(), 0, tracer.stderr);

      const packets: Json[] = tracer.stdout.trim().split("\n").map((line) => JSON.parse(line));
      const icmp = packets.filter((p) => p.proto === "ICMP");
      const udp = packets.filter((p) => p.proto === "UDP");
      const tcp = packets.filter((p) => p.proto === "TCP");
      assert.equal(
        icmp.length + udp.length + tcp.length,
        packets.length,
        `only the test's packets: ${tracer.stdout}`,
      );

      // ping: three echo requests in, three replies out, in order.
      assert.equal(icmp.length, 6, tracer.stdout);
      icmp.forEach((p, i) => {
        const request = i % 2 === 0;
        assert.equal(p.direction, request ? "ingress" : "egress");
        assert.equal(p.src, request ? PEER_ADDRESS : LOCAL_ADDRESS);
        assert.equal(p.dst, request ? LOCAL_ADDRESS : PEER_ADDRESS);
        assert.match(
          p.info,
          new RegExp(`^echo ${request ? "request" : "reply"}, id \\d+, seq ${Math.floor(i / 2) + 1}$`),
        );
        assert.equal(p.length, 64);
        assert.equal(p.wireLength, 98);
      });
      // UDP: exactly the three datagrams, with their ports and payload lengths; nothing goes back.
      assert.deepEqual(
        udp.map((p) => [p.direction, p.src, p.sport, p.dst, p.dport, p.length]),
        [3, 3, 5].map((n) => ["ingress", PEER_ADDRESS, 40001, LOCAL_ADDRESS, 5555, n]),
      );
      // TCP: handshake, the data each way and the FINs, all on port 7000.
      assert.ok(tcp.every((p) => (p.direction === "ingress" ? p.dport : p.sport) === 7000), tracer.stdout);
      assert.equal(tcp[0].direction, "ingress");
      assert.equal(tcp[0].tcpFlags, "S");
      assert.equal(tcp[1].direction, "egress");
      assert.equal(tcp[1].tcpFlags, "S.");
      assert.equal(tcp[1].ack, tcp[0].seq + 1);
      assert.ok(tcp.some((p) => p.direction === "ingress" && p.length === 5 && p.tcpFlags.includes("P")));
      assert.ok(tcp.some((p) => p.direction === "egress" && p.length === 3 && p.tcpFlags.includes("P")));
      assert.ok(tcp.some((p) => p.direction === "ingress" && p.tcpFlags.includes("F")));
      assert.ok(tcp.some((p) => p.direction === "egress" && p.tcpFlags.includes("F")));

      // Summary: everything the hooks saw matched (no filter) and was captured; nothing lost.
      const summary = (direction: string) => {
        const m = new RegExp(
          `^vb ${direction} (\\S+): seen (\\d+) matched (\\d+) captured (\\d+) lost (\\d+)$`,
          "m",
        )
          .exec(tracer.stderr);
        assert.ok(m, tracer.stderr);
        return { hook: m[1], seen: +m[2], matched: +m[3], captured: +m[4], lost: +m[5] };
      };
      const ingress = summary("ingress");
      const egress = summary("egress");
      assert.equal(ingress.hook, "tcx"); // auto mode on a veth
      assert.equal(egress.hook, "tcx");
      assert.equal(ingress.captured, packets.filter((p) => p.direction === "ingress").length);
      assert.equal(egress.captured, packets.filter((p) => p.direction === "egress").length);
      for (const c of [ingress, egress]) {
        assert.equal(c.seen, c.matched);
        assert.equal(c.matched, c.captured);
        assert.equal(c.lost, 0);
      }

      // The pcap file holds the same packets, and tcpdump and tshark read it.
      const dump = await run(["tcpdump", "-nn", "-r", pcapPath]);
      assert.equal(dump.code, 0, dump.stderr);
      const lines = dump.stdout.trim().split("\n");
      assert.equal(lines.length, packets.length);
      assert.equal(lines.filter((l) => /ICMP echo request/.test(l)).length, 3);
      assert.equal(
        lines.filter((l) => new RegExp(`${PEER_ADDRESS}\\.40001 > ${LOCAL_ADDRESS}\\.5555: UDP`).test(l))
          .length,
        3,
      );
      assert.match(dump.stderr, /link-type EN10MB/);
      const file = parsePcap(await Deno.readFile(pcapPath));
      assert.equal(file.linkType, 1);
      assert.equal(file.snaplen, 128);
      assert.deepEqual(file.records.map((r) => r.timestampMicros), packets.map((p) => p.timestampMicros));
      assert.deepEqual(file.records.map((r) => r.originalLength), packets.map((p) => p.wireLength));
      assert.deepEqual(file.records.map((r) => r.data.length), packets.map((p) => p.capturedLength));
      const shark = await run(["tshark", "-r", pcapPath, "-T", "fields", "-e", "frame.len"]);
      assert.equal(shark.code, 0, shark.stderr);
      assert.deepEqual(shark.stdout.trim().split("\n").map(Number), packets.map((p) => p.wireLength));
    } finally {
      await Deno.remove(pcapPath).catch(() => {});
    }
  });
});

privilegedTest(
  "trace: in-kernel filter (--proto udp --port 5555) passes only matching packets, text lines",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      const tracer = await TracerProcess.start(local, ["-i", "vb", "--proto", "udp", "--port", "5555"], 2);
      await peer.exec(["ping", "-c", "2", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
      await sendUdp(peer, LOCAL_ADDRESS, 40002, 6666, ["other", "other"]);
      await sendUdp(peer, LOCAL_ADDRESS, 40002, 5555, ["abcd", "abcdefgh"]);
      await sendUdp(peer, LOCAL_ADDRESS, 5555, 6666, ["sport"]);
      await new Promise((r) => setTimeout(r, 200));
      tracer.kill("SIGTERM");
      assert.equal(await tracer.wait(), 0, tracer.stderr);

      const lines = tracer.stdout.trim().split("\n");
      assert.equal(lines.length, 3, tracer.stdout);
      const prefix = /^\d\d:\d\d:\d\d\.\d{6} vb ingress UDP /;
      assert.ok(lines.every((l) => prefix.test(l)), tracer.stdout);
      assert.match(lines[0], new RegExp(`UDP ${PEER_ADDRESS}\\.40002 > ${LOCAL_ADDRESS}\\.5555: length 4$`));
      assert.match(lines[1], new RegExp(`UDP ${PEER_ADDRESS}\\.40002 > ${LOCAL_ADDRESS}\\.5555: length 8$`));
      assert.match(lines[2], new RegExp(`UDP ${PEER_ADDRESS}\\.5555 > ${LOCAL_ADDRESS}\\.6666: length 5$`));
      const m = /^vb ingress tcx: seen (\d+) matched (\d+) captured (\d+) lost (\d+)$/m.exec(
        tracer.stderr,
      );
      assert.ok(m, tracer.stderr);
      const [seen, matched, captured, lost] = m.slice(1).map(Number);
      assert.ok(seen >= 7, `seen ${seen}`); // 2 echo requests + 5 datagrams
      assert.equal(matched, 3);
      assert.equal(captured, 3); // non-matching packets never reached user space
      assert.equal(lost, 0);
      // Egress is traced by default too (as tcpdump): the echo replies and port-unreachable errors went
      // out there, and none of them is UDP.
      const out = /^vb egress tcx: seen (\d+) matched (\d+) captured (\d+) lost 0$/m.exec(tracer.stderr);
      assert.ok(out, tracer.stderr);
      assert.ok(Number(out[1]) >= 2, `egress seen ${out[1]}`);
      assert.deepEqual([Number(out[2]), Number(out[3])], [0, 0]);
    });
  },
);

privilegedTest("trace: --snaplen cuts the copy in the kernel; lengths stay right, pcap says so", async () => {
  await withVethPair(async ({ peer, local }) => {
    const pcapPath = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const tracer = await TracerProcess.start(local, [
        "-i",
        "vb",
        "-s",
        "38",
        "--json",
        "-w",
        pcapPath,
        "-c",
        "2",
      ], 1);
      await peer.run(["ping", "-c", "4", "-i", "0.2", "-W", "1", LOCAL_ADDRESS], { timeoutMs: 10_000 });
      assert.equal(await tracer.wait(), 0, tracer.stderr);
      const packets: Json[] = tracer.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assert.equal(packets.length, 2);
      // Both directions by default: the first request in, its reply out.
      assert.deepEqual(packets.map((p) => [p.direction, p.icmpType]), [["ingress", 8], ["egress", 0]]);
      for (const p of packets) {
        assert.equal(p.capturedLength, 38);
        assert.equal(p.wireLength, 98);
        assert.equal(p.proto, "ICMP");
        assert.equal(p.length, 64); // from the IP header, not the capture
        assert.equal(p.truncated, true); // id and seq were cut off
      }
      const file = parsePcap(await Deno.readFile(pcapPath));
      assert.equal(file.snaplen, 38);
      assert.deepEqual(file.records.map((r) => [r.data.length, r.originalLength]), [[38, 98], [38, 98]]);
      const dump = await run(["tcpdump", "-nn", "-r", pcapPath]);
      assert.equal(dump.code, 0, dump.stderr);
      assert.equal(dump.stdout.trim().split("\n").length, 2);
    } finally {
      await Deno.remove(pcapPath).catch(() => {});
    }
  });
});

/**
 * The BPF parser and in-kernel filters on crafted frames (VLAN tags, IPv4 options and fragments, IPv6
 * extension headers, ARP), sent raw from the peer namespace onto the veth. The ingress hooks (tcx, the
 * default on a veth, and XDP) see every frame that arrives on `vb`, whatever its destination MAC, before
 * the (IPv6-disabled) stack drops it.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import type { Netns } from "../helpers/netns.ts";
import { TracerProcess, withVethPair } from "../helpers/trace_veth.ts";
import { arpRequest, ethernet, icmpEcho, ipv4, ipv6, tcp, udp, v6 } from "../helpers/trace_packets.ts";

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

async function sendFrames(peer: Netns, frames: Uint8Array[]): Promise<void> {
  const hex = frames.map((f) => Array.from(f, (b) => b.toString(16).padStart(2, "0")).join(""));
  const script = `import socket,time
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(("va",0))
for h in ${JSON.stringify(hex)}:
    s.send(bytes.fromhex(h)); time.sleep(0.005)
`;
  await peer.exec(["/usr/bin/python3", "-c", script], { timeoutMs: 10_000 });
}

async function trace(local: Netns, peer: Netns, args: string[], frames: Uint8Array[]) {
  // Crafted frames arrive on vb: the ingress parser is what these tests exercise, so ingress only.
  const tracer = await TracerProcess.start(
    local,
    ["-i", "vb", "--direction", "ingress", "--json", ...args],
    1,
  );
  await sendFrames(peer, frames);
  await new Promise((r) => setTimeout(r, 150));
  tracer.kill("SIGINT");
  assert.equal(await tracer.wait(), 0, tracer.stderr);
  const packets: Json[] = tracer.stdout.trim() === ""
    ? []
    : tracer.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const m = /^vb ingress \S+: seen (\d+) matched (\d+) captured (\d+) lost (\d+)$/m.exec(tracer.stderr);
  assert.ok(m, tracer.stderr);
  return { packets, seen: +m[1], matched: +m[2], captured: +m[3], lost: +m[4] };
}

const A = "10.99.0.1";
const B = "10.99.0.2";
const hopByHop = (next: number) => [next, 0, 1, 4, 0, 0, 0, 0];
const fragment = (
  next: number,
  offsetUnits: number,
) => [next, 0, (offsetUnits >> 5) & 0xff, (offsetUnits << 3) & 0xf8, 0, 0, 0, 7];
const ah = (next: number) => [next, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, ...new Array(12).fill(0)];

privilegedTest(
  "trace: in-kernel parser finds ports through VLAN tags, IPv4 options and IPv6 extension headers",
  async () => {
    await withVethPair(async ({ peer, local }) => {
      const frames = [
        /* 0 match */ ethernet(0x0800, ipv4(A, B, 17, udp(1001, 5555, [1])), [100, 200]),
        /* 1 match */ ethernet(
          0x86dd,
          ipv6(v6(1), v6(2), 0, [...hopByHop(60), ...hopByHop(17), ...udp(1002, 5555, [])]),
        ),
        /* 2 match */ ethernet(0x86dd, ipv6(v6(1), v6(2), 44, [...fragment(17, 0), ...udp(1003, 5555, [])])),
        /* 3 no: later fragment */ ethernet(
          0x86dd,
          ipv6(v6(1), v6(2), 44, [...fragment(17, 2), ...udp(1004, 5555, [])]),
        ),
        /* 4 no: later fragment */ ethernet(
          0x0800,
          ipv4(A, B, 17, udp(1005, 5555, []), { fragmentOffset: 2 }),
        ),
        /* 5 match */ ethernet(0x0800, ipv4(A, B, 17, udp(1006, 5555, []), { ipOptions: [1, 1, 1, 0] })),
        /* 6 no: TCP */ ethernet(0x0800, ipv4(A, B, 6, tcp(1007, 5555, 1, 0, 0x02))),
        /* 7 no: ARP */ ethernet(0x0806, arpRequest(A, B)),
        /* 8 match */ ethernet(0x86dd, ipv6(v6(1), v6(2), 51, [...ah(17), ...udp(1008, 5555, [])])),
        /* 9 no: other port */ ethernet(0x0800, ipv4(A, B, 17, udp(1009, 5556, []))),
        /* 10 match, sport */ ethernet(0x8100, [0, 7, 0x08, 0x00, ...ipv4(A, B, 17, udp(5555, 1010, []))]),
      ];
      // At tcx ingress (the default) the kernel has taken the outer VLAN tag out of the frame: the
      // program puts it back, so both hooks give the same packets.
      for (const hook of ["tcx", "xdp"]) {
        const r = await trace(
          local,
          peer,
          ["--ingress-hook", hook, "--proto", "udp", "--port", "5555"],
          frames,
        );
        assert.deepEqual(r.packets.map((p) => p.sport), [1001, 1002, 1003, 1006, 1008, 5555], hook);
        assert.ok(r.packets.every((p) => p.proto === "UDP"));
        assert.deepEqual(r.packets[0].vlans, [100, 200], hook);
        assert.deepEqual(r.packets[5].vlans, [7], hook);
        assert.equal(r.packets[1].src, "2001:db8::1");
        assert.equal(r.packets[5].dport, 1010);
        assert.equal(r.matched, 6);
        assert.equal(r.captured, 6);
        assert.ok(r.seen >= frames.length, `seen ${r.seen}`);
        assert.equal(r.lost, 0);
      }
    });
  },
);

privilegedTest("trace: in-kernel host and protocol filters (IPv6 prefix, ICMPv6, ARP, TCP)", async () => {
  await withVethPair(async ({ peer, local }) => {
    const other = [0x20, 0x01, 0x0d, 0xb9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const icmp6 = await trace(local, peer, ["--proto", "icmp6", "--host", "2001:db8::/64"], [
      ethernet(0x86dd, ipv6(other, v6(2), 58, icmpEcho(128, 1, 1))), // dst in prefix: match
      ethernet(0x86dd, ipv6(other, other, 58, icmpEcho(128, 1, 2))), // outside: no
      ethernet(0x86dd, ipv6(v6(1), v6(2), 17, udp(1, 2, []))), // not ICMPv6: no
      ethernet(0x0800, ipv4(A, B, 1, icmpEcho(8, 1, 3))), // ICMPv4: no
    ]);
    assert.equal(icmp6.packets.length, 1);
    assert.equal(icmp6.packets[0].proto, "ICMP6");
    assert.equal(icmp6.packets[0].info, "echo request, id 1, seq 1");
    assert.equal(icmp6.matched, 1);

    const arp = await trace(local, peer, ["--proto", "arp", "--host", "10.99.0.0/24"], [
      ethernet(0x0806, arpRequest("192.168.0.1", "192.168.0.2")), // no
      ethernet(0x0806, arpRequest("192.168.0.1", B)), // target in prefix: match
      ethernet(0x0800, ipv4(A, B, 17, udp(1, 2, []))), // not ARP: no
    ]);
    assert.deepEqual(arp.packets.map((p) => [p.proto, p.src, p.dst]), [["ARP", "192.168.0.1", B]]);
    assert.equal(arp.matched, 1);

    const tcpOnly = await trace(local, peer, ["--proto", "tcp", "--host", "10.99.0.1"], [
      ethernet(0x0800, ipv4(A, B, 6, tcp(40000, 80, 7, 0, 0x02))), // match
      ethernet(0x0800, ipv4("10.99.0.3", B, 6, tcp(40001, 80, 7, 0, 0x02))), // other host: no
      ethernet(0x0800, ipv4(A, B, 17, udp(40002, 80, []))), // UDP: no
    ]);
    assert.deepEqual(tcpOnly.packets.map((p) => [p.sport, p.tcpFlags, p.seq]), [[40000, "S", 7]]);
    assert.equal(tcpOnly.matched, 1);
  });
});

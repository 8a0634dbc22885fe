/**
 * IPv6 on a real TUN device inside a fresh network namespace, with the Linux kernel as the peer: ping -6
 * (also with fragments), UDP echo of large datagrams, a closed port refused, both families side by side,
 * and --no-ipv6.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run, withNetns } from "../helpers/netns.ts";
import { startStack } from "../helpers/stack_process.ts";

const PY_UDP6 = `
import socket, sys
size = int(sys.argv[1])
payload = bytes((i * 31) % 256 for i in range(size))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(payload, ("fd00::2", 7))
data, addr = s.recvfrom(65535)
print("same" if data == payload else "different", len(data), addr[0], addr[1])
`;

const PY_REFUSED6 = `
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("fd00::2", 9999))
s.send(b"anyone there?")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
`;

async function stats(ns: { run(cmd: string[]): Promise<{ code: number; stdout: string }> }) {
  const res = await ns.run(["curl", "-s", "--max-time", "5", "http://10.0.0.2/stats"]);
  assert.equal(res.code, 0);
  return JSON.parse(res.stdout);
}

privilegedTest(
  "ipv6 on TUN: ping -6, large pings in fragments, UDP echo to 8,000 bytes, closed port refused",
  async () => {
    await withNetns("ns-ip6", async (ns) => {
      const stack = await startStack(ns);
      try {
        assert.match(stack.stderr, /ready iface=tun0 addr=10\.0\.0\.2\/24 addr6=fd00::2\/64/);
        const addr = await ns.run(["ip", "-6", "addr", "show", "dev", "tun0"]);
        assert.match(
          addr.stdout,
          /inet6 fd00::1\/64 scope global/,
          "the host side got --host-addr6 by ioctl",
        );
        const ping = await ns.run([
          "ping",
          "-6",
          "-c",
          "3",
          "-i",
          "0.2",
          "-W",
          "2",
          "-p",
          "c0ffee42",
          "fd00::2",
        ]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        assert.match(ping.stdout, /3 packets transmitted, 3 received/);
        assert.doesNotMatch(ping.stdout, /wrong data byte|DUP!/);
        // 4000 bytes do not fit 1500: the kernel fragments, the stack reassembles, and fragments its reply.
        const big = await ns.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "fd00::2"]);
        assert.equal(big.code, 0, big.stdout + big.stderr);
        assert.match(big.stdout, /2 packets transmitted, 2 received/);
        assert.match(big.stdout, /4008 bytes from fd00::2/);
        for (const size of [1, 1400, 8000]) {
          const echo = await ns.run(["python3", "-c", PY_UDP6, String(size)]);
          assert.equal(echo.code, 0, echo.stderr);
          assert.equal(echo.stdout.trim(), `same ${size} fd00::2 7`);
        }
        const refused = await ns.run(["python3", "-c", PY_REFUSED6]);
        assert.equal(refused.stdout.trim(), "refused", "ICMPv6 port unreachable reached the kernel");
        const s = await stats(ns);
        assert.equal(s.address6, "fd00::2/64");
        assert.ok(s.ipv6.reassembled >= 2 + 1, JSON.stringify(s.ipv6));
        assert.ok(s.ipv6.fragmentsOut >= 2 * 3, JSON.stringify(s.ipv6));
        assert.ok(s.icmp6.echoReplies >= 5);
        assert.ok(s.icmp6.errorsSent >= 1);
        assert.equal(s.udp.drops["port-closed"], 1);
        assert.equal(s.ipv4.drops.ipv6, undefined, "IPv6 is no longer a drop under ipv4");
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
    });
  },
);

privilegedTest(
  "ipv6 on TUN: both families side by side on one device; --no-ipv6 leaves IPv6 out",
  async () => {
    await withNetns("ns-ip6d", async (ns) => {
      const stack = await startStack(ns);
      try {
        const pings = await Promise.all([
          ns.run(["ping", "-4", "-c", "5", "-i", "0.1", "-W", "2", "10.0.0.2"]),
          ns.run(["ping", "-6", "-c", "5", "-i", "0.1", "-W", "2", "fd00::2"]),
          ns.run(["python3", "-c", PY_UDP6, "3000"]),
        ]);
        assert.match(pings[0].stdout, /5 packets transmitted, 5 received/);
        assert.match(pings[1].stdout, /5 packets transmitted, 5 received/);
        assert.equal(pings[2].stdout.trim(), "same 3000 fd00::2 7");
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
    });
    await withNetns("ns-ip6n", async (ns) => {
      const stack = await startStack(ns, ["--no-ipv6"]);
      try {
        assert.doesNotMatch(stack.stderr, /addr6=/);
        const addr = await ns.run(["ip", "-6", "addr", "show", "dev", "tun0", "scope", "global"]);
        assert.doesNotMatch(addr.stdout, /fd00::1/, "no IPv6 address given to the host side");
        const ping4 = await ns.run(["ping", "-4", "-c", "1", "-W", "2", "10.0.0.2"]);
        assert.equal(ping4.code, 0);
        // The kernel's own IPv6 (router solicitations, MLD) still arrives: counted, not answered.
        await ns.run(["ping", "-6", "-c", "1", "-W", "1", "-I", "tun0", "ff02::1"]);
        const s = await stats(ns);
        assert.equal(s.ipv6.disabled, true);
        assert.ok(s.ipv6.drops["ipv6-disabled"] >= 1, JSON.stringify(s.ipv6));
        assert.equal(s.icmp6, undefined);
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
    });
  },
);

privilegedTest("ipv6 on TUN: --capture carries both families with valid checksums", async () => {
  await withNetns("ns-ip6c", async (ns) => {
    const capture = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const stack = await startStack(ns, ["--capture", capture]);
      try {
        await ns.exec(["ping", "-4", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"]);
        await ns.exec(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fd00::2"]);
        const echo = await ns.run(["python3", "-c", PY_UDP6, "100"]);
        assert.equal(echo.stdout.trim(), "same 100 fd00::2 7");
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      const dump = await run(["tcpdump", "-n", "-vv", "-r", capture]);
      assert.equal(dump.code, 0, dump.stderr);
      assert.equal(dump.stdout.match(/ICMP echo request/g)?.length, 2, dump.stdout);
      assert.equal(dump.stdout.match(/ICMP6, echo request/g)?.length, 2, dump.stdout);
      assert.equal(dump.stdout.match(/ICMP6, echo reply/g)?.length, 2, dump.stdout);
      assert.match(dump.stdout, /fd00::1\.\d+ > fd00::2\.7: \[udp sum ok\] UDP, length 100/);
      assert.match(dump.stdout, /fd00::2\.7 > fd00::1\.\d+: \[udp sum ok\] UDP, length 100/);
      assert.doesNotMatch(dump.stdout, /bad (udp )?cksum/i);
    } finally {
      await Deno.remove(capture);
    }
  });
});

/**
 * IPv6 on a TAP device with the Linux kernel on the host side: neighbour discovery both ways (the kernel's
 * `ip -6 neigh` shows the stack REACHABLE), ping to the link-local and the static address, UDP echo, and
 * SLAAC from Debian's radvd: the stack forms an address from the advertised prefix, takes the advertised
 * MTU and default router, and is reachable at that address.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { type Netns, withNetns } from "../helpers/netns.ts";
import { kernelPeer, startStack } from "../helpers/stack_process.ts";
import { waitUntil } from "../helpers/mip.ts";

const MAC = "02:00:00:00:00:b6";
/** fe80:: with the modified EUI-64 identifier of MAC (RFC 4291 App. A): the u/l bit flipped. */
const LINK_LOCAL = "fe80::ff:fe00:b6";

const PY_UDP6 = `
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.settimeout(3)
payload = bytes(range(256)) * 12
s.sendto(payload, (sys.argv[1], 7, 0, socket.if_nametoindex("tap0") if sys.argv[1].startswith("fe80") else 0))
data, addr = s.recvfrom(65535)
print("same" if data == payload else "different", addr[0])
`;

async function stats(ns: Netns): Promise<Record<string, Record<string, unknown>>> {
  const res = await ns.run(["curl", "-s", "--max-time", "5", "http://10.0.0.2/stats"]);
  assert.equal(res.code, 0, res.stderr);
  return JSON.parse(res.stdout);
}

privilegedTest(
  "ipv6 on TAP: NDP both ways, the stack REACHABLE in ip -6 neigh, link-local ping, UDP",
  async () => {
    await withNetns("ns-tap6", async (ns) => {
      const stack = await startStack(ns, ["--backend", "tap", "--mac", MAC]);
      try {
        assert.match(
          stack.stderr,
          new RegExp(
            `ready iface=tap0 addr=10\\.0\\.0\\.2/24 addr6=fd00::2/64 .*addr6-link=${LINK_LOCAL}/64`,
          ),
        );
        assert.match(stack.stderr, /address fd00::2 is unique on the link/, "DAD ran before ready");
        // The stack turns the host side's own DAD off (its only neighbour is the stack): at `ready` the
        // host's fd00::1 and link-local address are usable, not tentative.
        assert.equal(
          (await ns.exec(["ip", "-6", "addr", "show", "dev", "tap0", "tentative"])).trim(),
          "",
          "no host address is tentative at ready",
        );
        const ping = await ns.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd00::2"]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr + stack.stderr);
        const neigh = await ns.exec(["ip", "-6", "neigh", "show", "dev", "tap0"]);
        assert.match(neigh, new RegExp(`^fd00::2 lladdr ${MAC} (router )?REACHABLE`, "m"), neigh);
        const linkLocal = await ns.run([
          "ping",
          "-6",
          "-c",
          "2",
          "-i",
          "0.2",
          "-W",
          "2",
          `${LINK_LOCAL}%tap0`,
        ]);
        assert.equal(linkLocal.code, 0, linkLocal.stdout + linkLocal.stderr);
        const big = await ns.run(["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "fd00::2"]);
        assert.match(big.stdout, /2 packets transmitted, 2 received/, big.stdout + big.stderr);
        for (const target of ["fd00::2", LINK_LOCAL]) {
          const echo = await ns.run(["python3", "-c", PY_UDP6, target]);
          assert.equal(
            echo.stdout.trim(),
            `same ${target}`,
            echo.stderr,
          );
        }
        // TCP over IPv6 on Ethernet (software checksums: IPv6 on TAP does not use the offloads).
        const tcp = await kernelPeer(ns, ["echo", "fd00::2", 7, 1 << 20]);
        assert.equal(tcp.matching, 1, JSON.stringify(tcp));
        const s = await stats(ns);
        const ndp = s.ndp as Record<string, unknown>;
        // The stack resolved the host's address by its own solicitation, or learnt it from the kernel's.
        const neighbors = ndp.neighbors as Record<string, string>;
        assert.match(neighbors["fd00::1"], /^(REACHABLE|STALE|DELAY|PROBE) /, JSON.stringify(ndp));
        assert.ok((ndp.dadProbesSent as number) >= 2, "link-local and fd00::2 were probed");
        assert.equal(ndp.dadConflicts, 0);
        assert.ok((ndp.mldReportsSent as number) >= 1);
        assert.deepEqual(ndp.addresses, [
          "fd00::2/64 preferred static",
          `${LINK_LOCAL}/64 preferred link-local`,
        ]);
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
    });
  },
);

privilegedTest(
  "ipv6 on TAP: SLAAC from radvd gives an address that is reachable, the MTU and a router",
  async () => {
    await withNetns("ns-radvd", async (ns) => {
      const dir = await Deno.makeTempDir({ prefix: "netstack-radvd-" });
      const conf = `${dir}/radvd.conf`;
      await Deno.writeTextFile(
        conf,
        `interface tap0 {
  AdvSendAdvert on;
  MinRtrAdvInterval 3;
  MaxRtrAdvInterval 10;
  AdvDefaultLifetime 600;
  AdvLinkMTU 1400;
  prefix fd00:77::/64 { AdvOnLink on; AdvAutonomous on; AdvValidLifetime 3600; AdvPreferredLifetime 1800; };
};
`,
      );
      // radvd advertises only where the host forwards (inside this test's namespace only).
      await ns.exec(["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"]);
      const stack = await startStack(ns, ["--backend", "tap", "--mac", MAC]);
      const radvd = new Deno.Command("ip", {
        args: ["netns", "exec", ns.name, "radvd", "-n", "-C", conf, "-p", `${dir}/radvd.pid`, "-m", "stderr"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        const slaac = "fd00:77::ff:fe00:b6";
        await waitUntil(
          async () => {
            const s = await stats(ns);
            return (s.ndp.addresses as string[]).includes(`${slaac}/64 preferred slaac`);
          },
          "the stack's SLAAC address",
          20_000,
        );
        const s = await stats(ns);
        assert.equal(s.ndp.mtu, 1400, "the advertised MTU is taken");
        assert.equal((s.ndp.routers as string[]).length, 1);
        assert.match((s.ndp.routers as string[])[0], /^fe80::/);
        assert.ok((s.ndp.routerAdvertisements as number) >= 1);
        // The host reaches the SLAAC address on the advertised prefix.
        await ns.exec(["ip", "-6", "addr", "add", "fd00:77::1/64", "dev", "tap0", "nodad"]);
        const ping = await ns.run(["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", slaac]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr + stack.stderr);
        const echo = await ns.run(["python3", "-c", PY_UDP6, slaac]);
        assert.equal(echo.stdout.trim(), `same ${slaac}`, echo.stderr);
        // Off-link destinations go through the advertised router: the reply to a source outside every
        // prefix of the stack is sent to the router's MAC (the host), which delivers it locally.
        await ns.exec(["ip", "-6", "addr", "add", "fd99::1/128", "dev", "lo"]);
        const routed = await ns.run([
          "ping",
          "-6",
          "-c",
          "2",
          "-i",
          "0.2",
          "-W",
          "2",
          "-I",
          "fd99::1",
          slaac,
        ]);
        assert.equal(routed.code, 0, routed.stdout + routed.stderr);
      } finally {
        try {
          radvd.kill("SIGTERM");
        } catch { /* gone */ }
        await radvd.status;
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);

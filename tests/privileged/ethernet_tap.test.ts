/**
 * The product on a TAP device (`netstack stack --backend tap`), with the Linux kernel on the host side:
 * ARP both ways, ping, UDP and TCP echo, replies to an off-link source through `--gateway`, our MAC in
 * the kernel's neighbour table; and an active open from the stack, which has to resolve the host by ARP on
 * its own initiative.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { loggedStats } from "../helpers/mip.ts";
import { kernelPeer, runStackWithInput, serveKernelPeer, startStack } from "../helpers/stack_process.ts";

const MAC = "02:00:00:00:00:b2";

const PY_UDP_ECHO = `
import socket, sys
payload = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.bind((sys.argv[2], 40007))
s.sendto(payload, ("10.0.0.2", 7))
data, addr = s.recvfrom(65535)
print(data.hex(), addr[0], addr[1])
`;

privilegedTest(
  "ethernet on TAP: ping, UDP and TCP echo, replies via the gateway, our MAC in the neighbour table",
  async () => {
    await withNetns("ns-tap", async (ns) => {
      const stack = await startStack(ns, ["--backend", "tap", "--mac", MAC, "--gateway", "10.0.0.1"]);
      try {
        assert.match(
          stack.stderr,
          /ready iface=tap0 addr=10\.0\.0\.2\/24 addr6=fd00::2\/64 host=10\.0\.0\.1\/24 mac=02:00:00:00:00:b2 /,
        );
        const ping = await ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr + stack.stderr);
        assert.match(ping.stdout, /3 packets transmitted, 3 received/);

        const big = await ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", "10.0.0.2"]);
        assert.equal(big.code, 0, big.stdout + big.stderr + stack.stderr);
        assert.match(big.stdout, /2 packets transmitted, 2 received/);

        const neigh = await ns.exec(["ip", "neigh", "show", "dev", "tap0"]);
        assert.match(neigh, new RegExp(`^10\\.0\\.0\\.2 lladdr ${MAC} `, "m"), neigh);

        const payload = "00ff" + "6e6574737461636b".repeat(50);
        const echo = await ns.run(["python3", "-c", PY_UDP_ECHO, payload, "10.0.0.1"]);
        assert.equal(echo.code, 0, echo.stderr);
        assert.equal(echo.stdout.trim(), `${payload} 10.0.0.2 7`);

        const tcp = await kernelPeer(ns, ["echo", "10.0.0.2", 7, 1 << 20]);
        assert.equal(tcp.matching, 1, JSON.stringify(tcp));

        // From an address outside the subnet: the reply goes through the gateway (the host, 10.0.0.1).
        await ns.exec(["ip", "addr", "add", "10.9.0.1/32", "dev", "lo"]);
        const routed = await ns.run(["python3", "-c", PY_UDP_ECHO, "abcd", "10.9.0.1"]);
        assert.equal(routed.code, 0, routed.stderr + stack.stderr);
        assert.equal(routed.stdout.trim(), "abcd 10.0.0.2 7");
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      const stats = loggedStats(stack.stderr);
      assert.equal(stats.icmp.echoReplies, 5);
      assert.equal(stats.ipv4.reassembled, 2, "the two large pings");
      assert.equal(stats.device.offloads, true, "TAP with virtio_net_hdr offload");
      assert.ok((stats.arp.announcementsSent as number) >= 1, "gratuitous ARP at start");
      assert.equal((stats.arp.drops as Record<string, number>).unresolved ?? 0, 0);
      assert.equal((stats.ethernet.drops as Record<string, number>)["no-route"] ?? 0, 0);
      const link = await ns.run(["ip", "link", "show", "tap0"]);
      assert.notEqual(link.code, 0, "tap0 is removed at shutdown");
    });
  },
);

privilegedTest(
  "ethernet on TAP: --connect resolves the host by ARP itself and bridges a TCP connection",
  async () => {
    await withNetns("ns-tap-active", async (ns) => {
      const peer = await serveKernelPeer(ns, 5001, 50_000);
      try {
        const input = new TextEncoder().encode("hello over ethernet\n");
        const result = await runStackWithInput(
          ns,
          ["--backend", "tap", "--connect", "10.0.0.1:5001", "-v"],
          input,
        );
        assert.equal(result.code, 0, result.stderr);
        const observed = await peer.result;
        assert.equal(observed.receivedLength, input.length);
        assert.equal((observed.remote as { hostname: string }).hostname, "10.0.0.2");
        assert.equal(result.stdout.length, 50_000);
        const stats = loggedStats(result.stderr);
        assert.ok((stats.arp.requestsSent as number) >= 1, "the stack resolved 10.0.0.1 by ARP itself");
      } finally {
        peer.kill();
      }
    });
  },
);

/**
 * TCP over IPv6 on a real TUN device, with the Linux kernel's TCP as the peer: a 16 MiB echo, curl over
 * IPv6, a closed port refused, `--connect [ADDR]:PORT` to a kernel IPv6 listener, and bulk transfer over
 * IPv6 next to IPv4 in the same run.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { kernelPeer, runStackWithInput, serveKernelPeer, startStack } from "../helpers/stack_process.ts";

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

privilegedTest(
  "tcp over ipv6: 16 MiB echo, curl -6, a closed port refused, both families' bulk in one run",
  async () => {
    await withNetns("ns-tcp6", async (ns) => {
      const stack = await startStack(ns);
      try {
        const echo = await kernelPeer(ns, ["echo", "fd00::2", 7, 16 << 20], 120_000);
        assert.equal(echo.matching, 1, JSON.stringify(echo));
        const page = await ns.run(["curl", "-6", "-sS", "-m", "5", "-i", "http://[fd00::2]/"]);
        assert.equal(page.code, 0, page.stderr);
        assert.match(page.stdout, /^HTTP\/1\.1 200/);
        const refused = await kernelPeer(ns, ["connect", "fd00::2", 4444]);
        assert.equal(refused.error, "ConnectionRefused", JSON.stringify(refused));
        // Bulk to discard over each family, one after the other in the same stack (a loaded machine: the
        // numbers are for comparison, not assertions).
        const v4 = await kernelPeer(ns, ["discard", "10.0.0.2", 9, 200 << 20], 120_000);
        const v6 = await kernelPeer(ns, ["discard", "fd00::2", 9, 200 << 20], 120_000);
        const rate = (r: Record<string, unknown>) => (r.gbits as number).toFixed(2);
        console.log(`200 MiB to discard: IPv4 ${rate(v4)} Gbit/s, IPv6 ${rate(v6)} Gbit/s`);
        const stats = await ns.run(["curl", "-6", "-sS", "-m", "5", "http://[fd00::2]/stats"]);
        const s = JSON.parse(stats.stdout);
        assert.ok(s.ipv6.rxPackets > 1000, JSON.stringify(s.ipv6));
        assert.equal(s.tcp.drops["bad-checksum"], 0);
      } finally {
        assert.equal(await stack.stop(), 0, stack.stderr);
      }
    });
  },
);

privilegedTest(
  "tcp over ipv6: --connect [fd00::1]:PORT bridges stdin/stdout to a kernel IPv6 listener",
  async () => {
    await withNetns("ns-tcp6c", async (ns) => {
      const peer = await serveKernelPeer(ns, 5000, 300_000, "::");
      try {
        const payload = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
        const result = await runStackWithInput(ns, ["--connect", "[fd00::1]:5000"], payload);
        assert.equal(result.code, 0, result.stderr);
        const observed = await peer.result;
        assert.equal(observed.receivedLength, payload.length);
        assert.equal(observed.received, await sha256Hex(payload));
        assert.equal((observed.remote as { hostname: string }).hostname, "fd00::2");
        assert.equal(await sha256Hex(result.stdout), observed.sent);
      } finally {
        peer.kill();
      }
    });
  },
);

/**
 * TCP of the stack against the Linux kernel's TCP (Deno sockets and curl inside the namespace): the
 * services, a refused connection, half-close, many concurrent connections, the stack's own active open,
 * and a transfer through in-process loss and reordering.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import {
  kernelPeer,
  netstackCommand,
  runStackWithInput,
  serveKernelPeer,
  startStack,
} from "../helpers/stack_process.ts";

async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

privilegedTest("tcp: echo returns 1 MiB byte for byte, half-close honoured", async () => {
  await withNetns("ns-tcp-echo", async (ns) => {
    const stack = await startStack(ns);
    try {
      const result = await kernelPeer(ns, ["echo", "10.0.0.2", 7, 1 << 20]);
      assert.equal(result.matching, 1, JSON.stringify(result));
    } finally {
      assert.equal(await stack.stop(), 0, stack.stderr);
    }
  });
});

privilegedTest("tcp: 200 MiB to discard, 1 MiB from chargen, curl of / and /stats", async () => {
  await withNetns("ns-tcp-bulk", async (ns) => {
    const stack = await startStack(ns);
    try {
      const discard = await kernelPeer(ns, ["discard", "10.0.0.2", 9, 200 << 20], 120_000);
      assert.equal(discard.sent, 200 << 20);
      assert.equal(discard.echoed, 0);
      console.log(`discard: ${(discard.gbits as number).toFixed(2)} Gbit/s`);

      const chargen = await kernelPeer(ns, ["chargen", "10.0.0.2", 19, 1 << 20]);
      assert.equal(chargen.received, 1 << 20);
      const first = Array.from({ length: 72 }, (_, i) => String.fromCharCode(32 + i)).join("");
      assert.equal(chargen.head, `${first}\r\n`);

      const page = await ns.run(["curl", "-sS", "-m", "5", "-i", "http://10.0.0.2/"]);
      assert.equal(page.code, 0, page.stderr);
      assert.match(page.stdout, /^HTTP\/1\.1 200 OK/);
      assert.match(page.stdout, /<h1>netstack/);
      const stats = await ns.run(["curl", "-sS", "-m", "5", "-f", "http://10.0.0.2/stats"]);
      assert.equal(stats.code, 0, stats.stderr);
      const json = JSON.parse(stats.stdout);
      assert.equal(json.address, "10.0.0.2/24");
      assert.ok(json.tcp.bytesIn >= 200 << 20, "the discard transfer is counted");
      assert.equal(typeof json.tcp.drops, "object");
      const missing = await ns.run([
        "curl",
        "-sS",
        "-m",
        "5",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://10.0.0.2/x",
      ]);
      assert.equal(missing.stdout, "404");
    } finally {
      assert.equal(await stack.stop(), 0, stack.stderr);
    }
  });
});

privilegedTest(
  "tcp: a closed port refuses (RST), and 200 concurrent echo connections all match",
  async () => {
    await withNetns("ns-tcp-many", async (ns) => {
      const stack = await startStack(ns);
      try {
        const refused = await kernelPeer(ns, ["connect", "10.0.0.2", 4444]);
        assert.equal(refused.error, "ConnectionRefused");
        const many = await kernelPeer(ns, ["echo", "10.0.0.2", 7, 10_000, 200], 120_000);
        assert.equal(many.matching, 200, JSON.stringify(many));
      } finally {
        assert.equal(await stack.stop(), 0, stack.stderr);
      }
    });
  },
);

privilegedTest(
  "tcp: --connect opens from the stack to a kernel listener and bridges stdin/stdout",
  async () => {
    await withNetns("ns-tcp-active", async (ns) => {
      // The listener binds to any address: the host side's exists only once the stack configured the device.
      const peer = await serveKernelPeer(ns, 5000, 300_000);
      try {
        const payload = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
        const result = await runStackWithInput(ns, ["--connect", "10.0.0.1:5000"], payload);
        assert.equal(result.code, 0, result.stderr);
        const observed = await peer.result;
        assert.equal(observed.receivedLength, payload.length);
        assert.equal(observed.received, await sha256Hex(payload));
        assert.equal((observed.remote as { hostname: string }).hostname, "10.0.0.2");
        assert.equal(result.stdout.length, 300_000);
        assert.equal(await sha256Hex(result.stdout), observed.sent);
      } finally {
        peer.kill();
      }
    });
  },
);

privilegedTest("tcp: a refused --connect exits 1 with one line", async () => {
  await withNetns("ns-tcp-refuse", async (ns) => {
    const result = await ns.run(netstackCommand("stack", "--connect", "10.0.0.1:5999"), {
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /^netstack: --connect 10\.0\.0\.1:5999: connection refused/m);
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  });
});

privilegedTest("tcp: a 50 MiB echo round trip survives 5% loss and 2% reordering both ways", async () => {
  await withNetns("ns-tcp-loss", async (ns) => {
    const stack = await startStack(ns, ["--impair", "loss=0.05,reorder=0.02,seed=7"]);
    try {
      const result = await kernelPeer(ns, ["echo", "10.0.0.2", 7, 50 << 20], 240_000);
      assert.equal(result.matching, 1, JSON.stringify(result));
      console.log(`50 MiB echo under 5% loss: ${(result.seconds as number).toFixed(1)} s`);
    } finally {
      assert.equal(await stack.stop(), 0, stack.stderr);
    }
    const stats = JSON.parse(/stats (\{.*\})/.exec(stack.stderr)![1]);
    assert.ok(stats.tcp.retransmissions > 0, "loss must have caused retransmissions");
    // The impairment really acted in both directions.
    assert.ok(
      stats.device.impairedIn.lost > 0 && stats.device.impairedOut.lost > 0,
      JSON.stringify(stats.device),
    );
    assert.ok(stats.device.impairedIn.reordered > 0 && stats.device.impairedOut.reordered > 0);
    console.log(
      `retransmissions ${stats.tcp.retransmissions}, fast recoveries ${stats.tcp.fastRecoveries}, RTOs ${stats.tcp.rtoExpirations}`,
    );
  });
});

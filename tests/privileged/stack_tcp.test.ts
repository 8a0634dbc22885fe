/**
 * TCP of the stack against the Linux kernel's TCP (Deno sockets and curl inside the namespace): the
 * services, a refused connection, half-close, many concurrent connections, the stack's own active open,
 * and a transfer through in-process loss and reordering.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { kernelPeer, netstackCommand, REPO, startStack } from "../helpers/stack_process.ts";

const PEER = `${REPO}tests/helpers/tcp_peer.ts`;

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
      // The host side address exists once the stack configured the device, so the listener binds to any.
      const peerProcess = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns.name,
          Deno.execPath(),
          "run",
          "--allow-all",
          "--config",
          `${REPO}deno.json`,
          PEER,
          "serve",
          "0.0.0.0",
          "5000",
          String(300_000),
        ],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      // Collect the peer's JSON lines; the first says its listener is up.
      let peerText = "";
      const peerDone = (async () => {
        for await (const chunk of peerProcess.stdout.pipeThrough(new TextDecoderStream())) peerText += chunk;
        return await peerProcess.status;
      })();
      const deadline = Date.now() + 20_000;
      while (!peerText.includes("listening")) {
        assert.ok(Date.now() < deadline, "the kernel listener did not start");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const payload = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
      const stack = new Deno.Command("ip", {
        args: ["netns", "exec", ns.name, ...netstackCommand("stack", "--connect", "10.0.0.1:5000")],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const killer = setTimeout(() => {
        try {
          stack.kill("SIGKILL");
          peerProcess.kill("SIGKILL");
        } catch { /* gone */ }
      }, 60_000);
      try {
        const writer = stack.stdin.getWriter();
        await writer.write(payload);
        await writer.close();
        const [stackResult, peerStatus] = await Promise.all([stack.output(), peerDone]);
        const stderr = new TextDecoder().decode(stackResult.stderr);
        assert.equal(stackResult.code, 0, stderr);
        assert.equal(peerStatus.code, 0, peerText);
        const observed = JSON.parse(peerText.trim().split("\n").pop()!);
        assert.equal(observed.receivedLength, payload.length);
        const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", payload));
        assert.equal(observed.received, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
        assert.equal(observed.remote.hostname, "10.0.0.2");
        assert.equal(stackResult.stdout.length, 300_000);
        const got = new Uint8Array(await crypto.subtle.digest("SHA-256", stackResult.stdout));
        assert.equal(Array.from(got, (b) => b.toString(16).padStart(2, "0")).join(""), observed.sent);
      } finally {
        clearTimeout(killer);
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
    console.log(
      `retransmissions ${stats.tcp.retransmissions}, fast recoveries ${stats.tcp.fastRecoveries}, RTOs ${stats.tcp.rtoExpirations}`,
    );
  });
});

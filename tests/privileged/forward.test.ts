/**
 * Forwarding mode end to end, in three namespaces (tests/helpers/forward_topology.ts): the application
 * in `app` has only netstack's TUN device and a default route via the stack; netstack runs in `run`;
 * the servers live in `server`, behind a veth from `run`. Everything the application reaches goes
 * through netstack's relay, and the servers see netstack's namespace as the client.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run } from "../helpers/netns.ts";
import { startStack } from "../helpers/stack_process.ts";
import { type ForwardTopology, withForwardTopology } from "../helpers/forward_topology.ts";
import { client, startServer } from "../helpers/forward_peers.ts";

const PORT = 40007; // not a port tcpdump decodes as some protocol (7007 is AFS)
const HTTP_PORT = PORT + 1;

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function stats(t: ForwardTopology): Promise<Record<string, unknown>> {
  return JSON.parse(await t.app.exec(["curl", "-s", "--max-time", "5", "http://10.0.0.2/stats"]));
}

privilegedTest("forward: TCP and UDP from a confined namespace are relayed to the server side", async (t) => {
  await withForwardTopology("ns-fwd", async (topo) => {
    const { app, server } = topo;
    const dir = await Deno.makeTempDir();
    const file = `${dir}/blob`;
    const blob = new Uint8Array(20 * 1024 * 1024);
    for (let i = 0; i < blob.length; i += 65536) crypto.getRandomValues(blob.subarray(i, i + 65536));
    await Deno.writeFile(file, blob);
    const srv = await startServer(server, dir, PORT);
    const stack = await startStack(topo.run, ["--netns", app.name, "--forward", "--log-level", "debug"]);
    try {
      assert.match(
        stack.stderr,
        new RegExp(`ready iface=tun0 netns=${app.name} .*forward=on max-flows=1024`),
      );
      const route = await app.exec(["ip", "route", "show", "default"]);
      assert.match(route, /default via 10\.0\.0\.2 dev tun0/);

      await t.step("curl of a 20 MiB file is byte-exact", async () => {
        const out = `${dir}/fetched`;
        const curl = await app.run([
          "curl",
          "-sS",
          "--max-time",
          "60",
          "-o",
          out,
          `http://${topo.serverAddress}:${HTTP_PORT}/blob`,
        ], { timeoutMs: 70_000 });
        assert.equal(curl.code, 0, curl.stderr);
        assert.equal((await Deno.stat(out)).size, blob.length);
        assert.equal(await sha256(out), await sha256(file));
      });

      await t.step("TCP echo of 8 MiB with half-close", async () => {
        const r = await client(app, ["echo", topo.serverAddress, PORT, 8 * 1024 * 1024]);
        assert.deepEqual(r, { exact: true, received: 8 * 1024 * 1024 });
      });

      await t.step("100 concurrent echo connections", async () => {
        const r = await client(app, ["many", topo.serverAddress, PORT, 100, 20_000]);
        assert.deepEqual(r, { exact: 100, errors: [] });
      });

      await t.step("the server sees netstack's namespace address, not the application's", () => {
        const peers = srv.output().match(/^peer .*$/gm) ?? [];
        assert.ok(peers.length >= 101, srv.output());
        assert.deepEqual([...new Set(peers)], [`peer ${topo.runAddress}`]);
      });

      await t.step("UDP echo up to 8,000 bytes, answered from the server's address", async () => {
        const sizes = [1, 512, 1472, 1473, 4000, 8000];
        const r = await client(app, ["udp", topo.serverAddress, PORT, sizes.join(",")]);
        assert.deepEqual(r, { exact: sizes, sources: [`${topo.serverAddress}:${PORT}`] });
      });

      await t.step("a reset by the server resets the application's connection", async () => {
        assert.deepEqual(await client(app, ["reset", topo.serverAddress, PORT + 2]), {
          result: "ConnectionResetError:104",
        });
      });

      await t.step("a closed port is refused within a second", async () => {
        const r = await client(app, ["connect", topo.serverAddress, 9, 5]);
        assert.equal(r.result, "ConnectionRefusedError:111");
        assert.ok((r.seconds as number) < 1, `refused after ${r.seconds} s`);
      });

      await t.step("an unreachable destination fails within seconds, and nothing is wedged", async () => {
        // No route from netstack's namespace: the host connect fails at once.
        const noRoute = await client(app, ["connect", "10.78.0.5", 80, 15]);
        assert.match(noRoute.result as string, /^OSError:113$|^OSError:101$/, JSON.stringify(noRoute));
        assert.ok((noRoute.seconds as number) < 5, `failed after ${noRoute.seconds} s`);
        // On the veth's subnet but absent: ARP fails after a few seconds (or the connect timeout).
        const absent = await client(app, ["connect", "10.77.0.99", 80, 15]);
        assert.match(absent.result as string, /^OSError:113$/, JSON.stringify(absent));
        assert.ok((absent.seconds as number) < 10, `failed after ${absent.seconds} s`);
        const r = await client(app, ["echo", topo.serverAddress, PORT, 1000]);
        assert.deepEqual(r, { exact: true, received: 1000 });
      });

      await t.step("ping to the server side is relayed, the stack's own address answers itself", async () => {
        const ping = await app.run([
          "ping",
          "-c",
          "3",
          "-i",
          "0.2",
          "-W",
          "2",
          "-p",
          "c0ffee42",
          topo.serverAddress,
        ]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        assert.match(ping.stdout, /3 packets transmitted, 3 received/);
        assert.doesNotMatch(ping.stdout, /wrong data byte|DUP!/);
        const own = await app.run(["ping", "-c", "1", "-W", "2", "10.0.0.2"]);
        assert.equal(own.code, 0, own.stdout + own.stderr);
      });

      await t.step(
        "the stack's own address still reaches its services; /stats counts the flows",
        async () => {
          const s = await stats(topo);
          const forward = s.forward as Record<string, number>;
          assert.ok(forward.tcpOpened >= 104, JSON.stringify(forward));
          assert.ok(forward.tcpReset >= 1, JSON.stringify(forward));
          assert.equal(forward.tcpRefused, 1);
          assert.equal(forward.tcpFailed, 2);
          assert.ok(forward.udpOpened >= 1);
          assert.equal(forward.flowLimitDrops, 0);
          assert.equal(forward.echoReplies, 3);
          assert.ok(Array.isArray(s.forward && (s.forward as Record<string, unknown>).flows));
          assert.match(stack.stderr, /connecting to 10\.77\.0\.2:9 failed/);
        },
      );
    } finally {
      assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      await srv.stop();
      await Deno.remove(dir, { recursive: true });
    }
    assert.notEqual((await app.run(["ip", "link", "show", "tun0"])).code, 0, "tun0 is gone after SIGTERM");
  });
});

privilegedTest(
  "forward: flow limit, UDP idle timeout, and the capture shows the relayed traffic",
  async () => {
    await withForwardTopology("ns-fwl", async (topo) => {
      const { app, server } = topo;
      const dir = await Deno.makeTempDir();
      const capture = `${dir}/forward.pcap`;
      const srv = await startServer(server, dir, PORT);
      const stack = await startStack(topo.run, [
        "--netns",
        app.name,
        "--forward",
        "--max-flows",
        "1",
        "--udp-timeout",
        "1",
        "--capture",
        capture,
      ]);
      try {
        // One UDP association fills the table: a TCP SYN meanwhile is dropped and counted (the connect
        // gives up before the kernel retransmits its SYN, 1 s later, when the association may be gone).
        const blocked = await client(app, ["udp-then-connect", topo.serverAddress, PORT, 0.8]);
        assert.equal(blocked.result, "TimeoutError:None");
        // After the idle timeout the association is gone and TCP gets through.
        await new Promise((resolve) => setTimeout(resolve, 2500));
        const r = await client(app, ["echo", topo.serverAddress, PORT, 5000]);
        assert.deepEqual(r, { exact: true, received: 5000 });
        const s = JSON.parse(await app.exec(["curl", "-s", "--max-time", "5", "http://10.0.0.2/stats"]));
        assert.ok(s.forward.flowLimitDrops >= 1, JSON.stringify(s.forward));
        assert.ok(s.forward.udpIdleClosed >= 1, JSON.stringify(s.forward));
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
        await srv.stop();
      }
      const dump = await run(["tcpdump", "-n", "-r", capture, "host", topo.serverAddress]);
      assert.equal(dump.code, 0, dump.stderr);
      assert.match(
        dump.stdout,
        new RegExp(
          `10\\.0\\.0\\.1\\.\\d+ > ${topo.serverAddress.replaceAll(".", "\\.")}\\.${PORT}: Flags \\[S\\]`,
        ),
      );
      assert.match(
        dump.stdout,
        new RegExp(
          `${topo.serverAddress.replaceAll(".", "\\.")}\\.${PORT} > 10\\.0\\.0\\.1\\.\\d+: UDP, length 5`,
        ),
      );
      await Deno.remove(dir, { recursive: true });
    });
  },
);

privilegedTest(
  "forward: over TAP too (ARP for the stack as gateway), with --impair loss recovered",
  async () => {
    await withForwardTopology("ns-fwt", async (topo) => {
      const { app, server } = topo;
      const dir = await Deno.makeTempDir();
      const srv = await startServer(server, dir, PORT);
      const stack = await startStack(topo.run, [
        "--backend",
        "tap",
        "--netns",
        app.name,
        "--forward",
        "--impair",
        "loss=0.1,seed=11",
      ]);
      try {
        assert.match(await app.exec(["ip", "route", "show", "default"]), /default via 10\.0\.0\.2 dev tap0/);
        assert.deepEqual(await client(app, ["echo", topo.serverAddress, PORT, 300_000]), {
          exact: true,
          received: 300_000,
        });
        const s = JSON.parse(
          await app.exec(["curl", "-s", "--retry", "3", "--max-time", "5", "http://10.0.0.2/stats"]),
        );
        const lost = s.device.impairedIn.lost + s.device.impairedOut.lost;
        // ...and TCP recovered: the echo above was exact.
        assert.ok(
          lost > 0,
          `the impairment dropped packets on the relayed path: ${JSON.stringify(s.device)}`,
        );
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
        await srv.stop();
        await Deno.remove(dir, { recursive: true });
      }
      assert.notEqual((await app.run(["ip", "link", "show", "tap0"])).code, 0, "tap0 is gone after SIGTERM");
    });
  },
);

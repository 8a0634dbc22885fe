/**
 * The command line as nc users and a second stack meet it: --connect quiet on stderr, host names from
 * /etc/hosts, -w, a closed stdout ending quietly; a subnet already routed elsewhere refused in one line;
 * no access to /dev/net/tun explained with a hint.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run, withNetns } from "../helpers/netns.ts";
import { netstackCommand, runStackWithInput, serveKernelPeer, startStack } from "../helpers/stack_process.ts";

privilegedTest(
  "stack: a subnet another interface already routes is refused in one line naming it",
  async () => {
    await withNetns("ns-overlap", async (ns) => {
      const first = await startStack(ns, ["--services", "none"]);
      try {
        const second = await ns.run(netstackCommand("stack", "--iface", "tun1", "--services", "none"), {
          timeoutMs: 20_000,
        });
        assert.equal(second.code, 1, second.stderr);
        const lines = second.stderr.trim().split("\n");
        assert.equal(lines.length, 1, second.stderr);
        assert.match(lines[0], /^netstack: 10\.0\.0\.2 is already routed through tun0 \(10\.0\.0\.0\/24\)/);
        assert.match(lines[0], /--addr 10\.0\.1\.2\/24 --host-addr 10\.0\.1\.1\/24/);
        assert.notEqual((await ns.run(["ip", "link", "show", "tun1"])).code, 0, "no tun1 left behind");
        // The suggested subnet works beside the first stack.
        const beside = await startStack(ns, [
          "--iface",
          "tun1",
          "--addr",
          "10.0.1.2/24",
          "--host-addr",
          "10.0.1.1/24",
          "--services",
          "none",
        ]);
        assert.equal(await beside.stop(), 0, beside.stderr);
      } finally {
        assert.equal(await first.stop(), 0, first.stderr);
      }
    });
  },
);

privilegedTest(
  "stack: --connect is quiet like nc, takes /etc/hosts names, and -w bounds the connect",
  async () => {
    await withNetns("ns-nc", async (ns) => {
      // `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts for what runs inside.
      const etc = `/etc/netns/${ns.name}`;
      await Deno.mkdir(etc, { recursive: true });
      try {
        await Deno.writeTextFile(`${etc}/hosts`, "127.0.0.1 localhost\n10.0.0.1 peerhost\n");
        const peer = await serveKernelPeer(ns, 5000, 1000);
        try {
          const result = await runStackWithInput(ns, ["--connect", "peerhost:5000"], new Uint8Array(100));
          assert.equal(result.code, 0, result.stderr);
          assert.equal(result.stderr, "", "no INFO lines, no stats on stderr by default");
          assert.equal(result.stdout.length, 1000);
          assert.equal((await peer.result).receivedLength, 100);
        } finally {
          peer.kill();
        }
        // Nobody answers 10.0.0.9 (the host does not forward): -w 1 gives up after a second, in one line.
        const started = Date.now();
        const silent = await ns.run(netstackCommand("stack", "--connect", "10.0.0.9:80", "-w", "1"), {
          timeoutMs: 30_000,
        });
        assert.equal(silent.code, 1, silent.stderr);
        assert.equal(silent.stderr.trim(), "netstack: --connect 10.0.0.9:80: connection timed out after 1 s");
        assert.ok(Date.now() - started < 15_000, "bounded by -w, not by the retransmissions");
        const unknown = await ns.run(netstackCommand("stack", "--connect", "nosuch.invalid:80"), {
          timeoutMs: 30_000,
        });
        assert.equal(unknown.code, 1, unknown.stderr);
        assert.match(
          unknown.stderr.trim(),
          /^netstack: --connect nosuch\.invalid:80: cannot resolve 'nosuch\.invalid'/,
        );
        assert.equal(unknown.stderr.trim().split("\n").length, 1);
      } finally {
        await Deno.remove(etc, { recursive: true }).catch(() => {});
      }
    });
  },
);

privilegedTest("stack: --connect ... | head ends quietly with exit 0 on the closed stdout", async () => {
  await withNetns("ns-pipe", async (ns) => {
    const peer = await serveKernelPeer(ns, 5000, 20 << 20);
    // Its connection ends in a reset once we stop reading, as it would with nc: that is not the point here.
    peer.result.catch(() => {});
    try {
      const command = netstackCommand("stack", "--connect", "10.0.0.1:5000").join(" ");
      const result = await ns.run(
        [
          "bash",
          "-c",
          `${command} </dev/null 2>/tmp/${ns.name}.err | head -c 1000 | wc -c; ` +
          `echo "status \${PIPESTATUS[0]}"; cat /tmp/${ns.name}.err; rm -f /tmp/${ns.name}.err`,
        ],
        { timeoutMs: 60_000 },
      );
      const [count, status, ...stderr] = result.stdout.trim().split("\n");
      assert.equal(count.trim(), "1000");
      assert.equal(status, "status 0", result.stdout);
      assert.deepEqual(stderr, [], "nothing on stderr");
    } finally {
      peer.kill();
    }
  });
});

privilegedTest(
  "stack without access to /dev/net/tun exits 1 with a hint, like the other privilege errors",
  async () => {
    await withNetns("ns-nobody", async (ns) => {
      // A user other than root: DENO_DIR must be readable by it, so the npm cache is copied to a temp dir.
      const info = JSON.parse((await run([Deno.execPath(), "info", "--json"])).stdout);
      const denoDir = await Deno.makeTempDir({ prefix: "netstack-nobody-" });
      try {
        await run(["cp", "-r", info.npmCache, `${denoDir}/npm`]);
        await run(["chown", "-R", "65534:65534", denoDir]);
        await Deno.chmod(denoDir, 0o755);
        const result = await ns.run([
          "setpriv",
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "--inh-caps=-all",
          "env",
          `DENO_DIR=${denoDir}`,
          "HOME=/tmp",
          ...netstackCommand("stack"),
        ], { timeoutMs: 60_000 });
        assert.equal(result.code, 1, result.stderr);
        const line = result.stderr.trim();
        assert.equal(line.split("\n").length, 1, line);
        // /dev/net/tun of mode 0600 refuses the open (EACCES); of mode 0666, TUNSETIFF refuses (EPERM).
        assert.match(
          line,
          /^netstack: (opening \/dev\/net\/tun|creating TUN device tun0) failed: (EACCES|EPERM) \([^)]+\); it needs root/,
        );
      } finally {
        await Deno.remove(denoDir, { recursive: true });
      }
    });
  },
);

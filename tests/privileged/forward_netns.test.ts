/**
 * `--netns`: netstack runs in one namespace and creates its TUN device in another, configured there
 * (address, up, and with `--forward` a default route via the stack); SIGTERM removes the device.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { spawnStack, startStack } from "../helpers/stack_process.ts";

privilegedTest(
  "--netns: the device lives in the target namespace, configured, and goes at SIGTERM",
  async () => {
    await withNetns("ns-fwd-run", async (run) => {
      await withNetns("ns-fwd-app", async (app) => {
        const stack = await startStack(run, ["--netns", app.name, "--iface", "tunx0"]);
        try {
          assert.match(stack.stderr, new RegExp(`ready iface=tunx0 netns=${app.name} `));
          const addr = JSON.parse(await app.exec(["ip", "-j", "addr", "show", "dev", "tunx0"]));
          assert.equal(addr.length, 1);
          assert.ok(addr[0].flags.includes("UP"), JSON.stringify(addr[0].flags));
          const inet = addr[0].addr_info.filter((a: { family: string }) => a.family === "inet");
          assert.deepEqual(
            inet.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
            [
              "10.0.0.1/24",
            ],
          );
          const inet6 = addr[0].addr_info.filter((a: { family: string; scope: string }) =>
            a.family === "inet6" && a.scope === "global"
          );
          assert.deepEqual(
            inet6.map((a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`),
            ["fd00::1/64"],
          );
          // Not in netstack's own namespace.
          assert.notEqual((await run.run(["ip", "link", "show", "tunx0"])).code, 0);
          // No default route without --forward.
          assert.equal((await app.exec(["ip", "route", "show", "default"])).trim(), "");
          const ping = await app.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.0.0.2"]);
          assert.equal(ping.code, 0, ping.stdout + ping.stderr);
        } finally {
          assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
        }
        assert.notEqual((await app.run(["ip", "link", "show", "tunx0"])).code, 0, "tunx0 is gone");
      });
    });
  },
);

privilegedTest("--netns: a namespace that does not exist is one line and exit 1", async () => {
  await withNetns("ns-fwd-run", async (run) => {
    const stack = spawnStack(run, ["--netns", "netstack-no-such-namespace"]);
    assert.equal(await stack.exited(), 1);
    assert.match(
      stack.stderr,
      /^netstack: opening network namespace netstack-no-such-namespace failed: ENOENT .*ip netns add/m,
    );
    assert.doesNotMatch(stack.stderr, /\n\s+at /, "no stack trace");
  });
});

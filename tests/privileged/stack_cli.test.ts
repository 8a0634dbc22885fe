/** Runtime failures of `netstack stack` exit 1 with one line naming the cause and the remedy. */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { netstackCommand } from "../helpers/stack_process.ts";

privilegedTest("stack without CAP_NET_ADMIN exits 1 saying it needs root", async () => {
  await withNetns("ns-nocap", async (ns) => {
    // setpriv drops CAP_NET_ADMIN from the bounding set, so even root lacks it in the child.
    const result = await ns.run(
      ["setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", ...netstackCommand("stack")],
      { timeoutMs: 20_000 },
    );
    assert.equal(result.code, 1, result.stderr);
    assert.equal(
      result.stderr.trim(),
      "netstack: creating TUN device tun0 failed: EPERM (Operation not permitted); it needs root or CAP_NET_ADMIN (run with sudo)",
    );
  });
});

privilegedTest("stack with an unwritable capture path exits 1 and leaves no device behind", async () => {
  await withNetns("ns-cap", async (ns) => {
    const result = await ns.run(netstackCommand("stack", "--capture", "/nonexistent-dir/x.pcap"), {
      timeoutMs: 20_000,
    });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr.trim(), /^netstack: cannot write the capture file \/nonexistent-dir\/x\.pcap/);
    assert.equal(result.stderr.trim().split("\n").length, 1);
    const link = await ns.run(["ip", "link", "show", "tun0"]);
    assert.notEqual(link.code, 0);
  });
});

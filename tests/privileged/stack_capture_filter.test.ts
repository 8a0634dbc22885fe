/**
 * `netstack stack --capture FILE --capture-filter EXPR`: the stack's own packets in and out, filtered in
 * user space by the compiled expression (raw IP on TUN), with tcpdump reading the file as the judge.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run, withNetns } from "../helpers/netns.ts";
import { netstackCommand, startStack } from "../helpers/stack_process.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";

async function tcpdumpCount(file: string, expression: string): Promise<number> {
  const result = await run(["tcpdump", "-nr", file, expression]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim() === "" ? 0 : result.stdout.trim().split("\n").length;
}

privilegedTest("stack capture filter: only the matching packets, both directions, on TUN", async () => {
  await withNetns("ns-capf", async (ns) => {
    const file = await Deno.makeTempFile({ suffix: ".pcap" });
    try {
      const stack = await startStack(ns, ["--capture", file, "--capture-filter", "icmp or udp port 7"]);
      await ns.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.0.0.2"], { timeoutMs: 10_000 });
      const udp = `import socket
s=socket.socket(2,2); s.settimeout(3)
for p in (b"one", b"two"):
    s.sendto(p, ("10.0.0.2", 7)); s.recv(100)
`;
      await ns.exec(["/usr/bin/python3", "-c", udp], { timeoutMs: 10_000 });
      await ns.exec(["curl", "-s", "-o", "/dev/null", "--max-time", "5", "http://10.0.0.2/"], {
        timeoutMs: 10_000,
      });
      assert.equal(await stack.stop("SIGINT"), 0, stack.stderr);

      const records = parsePcap(Deno.readFileSync(file)).records;
      assert.equal(records.length, 10, "3 echo requests and replies, 2 UDP datagrams each way");
      assert.equal(await tcpdumpCount(file, "icmp or udp port 7"), records.length, "every record matches");
      assert.equal(await tcpdumpCount(file, "icmp[icmptype] = icmp-echoreply"), 3);
      assert.equal(await tcpdumpCount(file, "udp src port 7"), 2);
      assert.equal(await tcpdumpCount(file, "tcp"), 0, "the HTTP exchange is filtered out");
    } finally {
      await Deno.remove(file);
    }
  });
});

privilegedTest("stack capture filter: a wrong expression exits 2 before creating the device", async () => {
  await withNetns("ns-capf", async (ns) => {
    const result = await ns.run(
      netstackCommand("stack", "--capture", "/tmp/x.pcap", "--capture-filter", "udp port"),
      {
        timeoutMs: 20_000,
      },
    );
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr.split("\n")[0],
      /^netstack stack: --capture-filter 'udp port': .*syntax error/,
    );
    assert.notEqual((await ns.run(["ip", "link", "show", "tun0"])).code, 0);
  });
});

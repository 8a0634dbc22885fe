/**
 * `netstack trace` with expressions as a user runs it (no privileges needed: these exit before loading
 * anything): `-d` prints what `tcpdump -d` prints, a wrong expression is libpcap's message and exit 2, an
 * expression netstack cannot run is named and exit 2, never an unfiltered capture.
 */

import assert from "node:assert/strict";
import { run } from "../helpers/netns.ts";
import { netstackCommand } from "../helpers/stack_process.ts";
import { LinkType, PcapWriter } from "../../lib/pcap/writer.ts";

Deno.test("trace -d: the same text as tcpdump -d, exit 0", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const file = Deno.openSync(path, { write: true, truncate: true });
    new PcapWriter(file, { linkType: LinkType.ETHERNET, snaplen: 65535 }).close();
    file.close();
    for (
      const words of [
        ["tcp[tcpflags]", "&", "(tcp-syn|tcp-fin)", "!=", "0"],
        ["vlan", "and", "tcp"],
        ["ip6 and udp portrange 1000-2000"],
        ["ip[6:2] & 0x1fff != 0 or len > 500"],
        [],
      ]
    ) {
      const ours = await run(netstackCommand("trace", "-d", ...words));
      const tcpdump = await run(["tcpdump", "-d", "-r", path, ...words]);
      assert.equal(ours.code, 0, ours.stderr);
      assert.equal(tcpdump.code, 0, tcpdump.stderr);
      assert.equal(ours.stdout, tcpdump.stdout, words.join(" "));
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("trace: a wrong expression is libpcap's message in one line and exit 2", async () => {
  const result = await run(netstackCommand("trace", "-i", "lo", "tcp", "and", "and"));
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  const [first, hint] = result.stderr.trim().split("\n");
  assert.match(first, /^netstack trace: expression 'tcp and and': .*syntax error/);
  assert.match(hint, /--help/);
});

Deno.test("trace: constructs netstack cannot run are named, exit 2, nothing traced", async () => {
  for (
    const [expression, named] of [
      ["ip6 protochain 6", /jumps backwards.*protochain/],
      ["inbound", /packet type/],
      ["ifindex 3", /ifindex/],
    ] as const
  ) {
    const result = await run(netstackCommand("trace", "-i", "lo", expression));
    assert.equal(result.code, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr.split("\n")[0], named);
    assert.doesNotMatch(result.stderr, /^tracing /m);
  }
});

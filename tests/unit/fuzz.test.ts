/**
 * A bounded fuzz run (the long one is `deno task fuzz`): mutated IPv4 and IPv6 frames and segments through
 * every wire parser and the stack's own core (StackCore), in the IP, Ethernet and DHCP setups, with no exception, no malformed packet
 * sent and every input accounted for; and the machinery itself: replays are exact, failures are caught
 * and reported with the command that replays them, and the accounting notices a packet lost or counted
 * twice.
 */

import assert from "node:assert/strict";
import { runFuzz, runSession } from "../helpers/fuzz/run.ts";
import { FuzzCore, isEthernet, PEER_ADDRESS6, STACK_ADDRESS6 } from "../helpers/fuzz/core.ts";
import { icmpv6Bytes, ipv6Packet } from "../helpers/fuzz/build6.ts";
import { unaccounted } from "../helpers/fuzz/accounting.ts";
import { Ipv4Interface } from "../../lib/iface/ipv4_interface.ts";
import { udpPacket } from "../helpers/fuzz/build.ts";

Deno.test("fuzz: a bounded run over the IP, Ethernet, DHCP and services setups finds nothing", async () => {
  const result = await runFuzz({
    seed: 20261130,
    cases: 1200,
    sessions: 5,
    timeMs: 120_000,
    setups: ["ip", "ethernet", "dhcp", "services"],
  });
  assert.equal(
    result.failure,
    null,
    result.failure ? `${result.failure.error}\n${result.failure.replay}` : "",
  );
  assert.equal(result.sessions.length, 5);
  for (const s of result.sessions) {
    assert.equal(s.cases, 1200);
    assert.ok(s.mutated > 500 && s.mutated < 1200, "most inputs are mutated, not all");
    assert.ok(s.sent > 100, `the core answered (${s.setup}: ${s.sent} packets)`);
    // IPv6 goes deep too: received, echo answered, TCP connections accepted or opened over it.
    assert.ok(s.reached["ipv6 rx"] > 100, `${s.setup}: ipv6 rx ${s.reached["ipv6 rx"]}`);
    assert.ok(s.reached["icmp6 echo replies"] > 0, `${s.setup}: an ICMPv6 echo answered`);
    assert.ok(s.reached["tcp ipv6 connections"] > 0, `${s.setup}: a TCP connection over IPv6`);
    if (isEthernet(s.setup)) assert.ok(s.reached["ndp rx"] > 0, `${s.setup}: NDP/MLD reached`);
    if (s.setup === "services") {
      assert.ok(
        s.reached["services accepted"] > 3,
        `services took connections: ${JSON.stringify(s.reached)}`,
      );
    }
    assert.ok(Object.keys(s.drops).length > 10, "drops are counted under many named reasons");
  }
});

Deno.test("fuzz: a session replays exactly from its seed (the services' too)", async () => {
  const replay = async () => {
    const outcome = await runSession(77, "services", 800);
    assert.ok(!("error" in outcome));
    const { slowest: _slowest, ...rest } = outcome; // a wall-clock time: the one part that may differ
    return rest;
  };
  assert.deepEqual(await replay(), await replay());
});

Deno.test("fuzz: an exception in the core fails the case, and the replay line reproduces it", async () => {
  const original = Ipv4Interface.prototype.ingress;
  let calls = 0;
  Ipv4Interface.prototype.ingress = function (...args: Parameters<typeof original>) {
    if (++calls === 300) throw new Error("planted");
    return original.apply(this, args);
  };
  try {
    const failure = await runSession(5, "ip", 1000);
    assert.ok("error" in failure);
    assert.match(failure.error, /planted/);
    assert.equal(
      failure.replay,
      `deno task fuzz --seed 5 --sessions 1 --cases ${failure.caseIndex + 1} --setup ip`,
    );
    calls = 0;
    const again = await runSession(5, "ip", failure.caseIndex + 1);
    assert.ok(
      "error" in again && again.caseIndex === failure.caseIndex && again.inputHex === failure.inputHex,
    );
  } finally {
    Ipv4Interface.prototype.ingress = original;
  }
});

Deno.test("fuzz: the accounting notices a packet lost, or counted twice", () => {
  const core = new FuzzCore("ip", 0, () => 0.5, () => {});
  core.ingress(udpPacket(0x0a000001, 1000, 0x0a000002, 7, new Uint8Array(4)), 1, false);
  core.ingress(udpPacket(0x0a000001, 1000, 0x0a000002, 99, new Uint8Array(4)), 2, false);
  assert.deepEqual(unaccounted(core.stats()), []);
  const lost = core.stats();
  lost.deviceIn++;
  assert.equal(unaccounted(lost).length, 1);
  const twice = core.stats();
  twice.udp.drops["port-closed"]++;
  assert.equal(unaccounted(twice).length, 1);
  // Over IPv6 likewise: an echo request answered, then one counted twice.
  const request = ipv6Packet({
    src: PEER_ADDRESS6,
    dst: STACK_ADDRESS6,
    protocol: 58,
    payload: icmpv6Bytes(128, 0, 1, new Uint8Array(8)),
  });
  core.ingress(request, 3, false);
  assert.equal(core.stats().icmp6.echoReplies, 1);
  assert.deepEqual(unaccounted(core.stats()), []);
  const twice6 = core.stats();
  twice6.ipv6.drops["not-ours"] = (twice6.ipv6.drops["not-ours"] ?? 0) + 1;
  assert.equal(unaccounted(twice6).length, 1);
  const caught = core.stats();
  caught.tcp.drops["internal-error"] = 1;
  assert.match(unaccounted(caught).join(), /caught exception/);
});

import assert from "node:assert/strict";
import { type NeighborActions, NeighborCache } from "../../lib/iface/neighbor_cache.ts";
import { DropCounters } from "../../lib/iface/stats.ts";
import { formatIpv6 } from "../../lib/wire/ipv6_address.ts";
import { ip6 } from "../helpers/ipv6_packets.ts";

const PEER = ip6("fd00::1");
const MAC = 0x02_00_00_00_00_01;
const OTHER_MAC = 0x02_00_00_00_00_02;

function harness(options = {}) {
  const drops = new DropCounters();
  // random() = 0.5 makes ReachableTime exactly the base (30 s).
  const cache = new NeighborCache(drops, { random: () => 0.5, ...options });
  const solicited: [string, number][] = [];
  const released: [number, number][] = [];
  const actions: NeighborActions = {
    solicit: (target, mac) => solicited.push([formatIpv6(target), mac]),
    release: (packet, mac) => released.push([packet[0], mac]),
  };
  return { cache, drops, solicited, released, actions };
}

Deno.test("nud: INCOMPLETE → REACHABLE on a solicited advertisement; queued packets are released", () => {
  const { cache, released, actions, solicited } = harness();
  assert.equal(cache.resolve(PEER, 0, 0), -1);
  assert.equal(
    cache.enqueue(PEER, 0, new Uint8Array([1]), 0),
    true,
    "the first solicitation is the caller's",
  );
  assert.equal(cache.enqueue(PEER, 0, new Uint8Array([2]), 10), false);
  assert.equal(cache.get(PEER)!.state, "INCOMPLETE");
  assert.equal(cache.poll(500, actions), 1000);
  assert.equal(solicited.length, 0);
  cache.advertisement(PEER, MAC, true, true, 600, actions);
  assert.equal(cache.get(PEER)!.state, "REACHABLE");
  assert.deepEqual(released, [[1, MAC], [2, MAC]]);
  assert.equal(cache.queuedPackets, 0);
  assert.equal(cache.resolve(PEER, 0, 700), MAC);
});

Deno.test("nud: INCOMPLETE retries 3 multicast solicitations one RetransTimer apart, then fails", () => {
  const { cache, drops, solicited, actions } = harness();
  cache.enqueue(PEER, 0, new Uint8Array(1), 0);
  cache.poll(1000, actions);
  cache.poll(2000, actions);
  assert.deepEqual(solicited, [["fd00::1", -1], ["fd00::1", -1]], "multicast (-1), 2 more after the first");
  cache.poll(2999, actions);
  assert.equal(cache.size, 1);
  cache.poll(3000, actions);
  assert.equal(cache.size, 0);
  assert.equal(cache.failures, 1);
  assert.equal(drops.get("unresolved"), 1);
});

Deno.test("nud: REACHABLE → STALE after ReachableTime; use → DELAY; no confirmation → PROBE → deleted", () => {
  const { cache, solicited, actions } = harness();
  cache.enqueue(PEER, 0, new Uint8Array(1), 0);
  cache.advertisement(PEER, MAC, true, false, 0, actions);
  assert.equal(cache.reachableTime, 30_000);
  cache.poll(29_999, actions);
  assert.equal(cache.get(PEER)!.state, "REACHABLE");
  cache.poll(30_000, actions);
  assert.equal(cache.get(PEER)!.state, "STALE");
  assert.equal(cache.poll(40_000, actions), null, "STALE has no timer");
  assert.equal(cache.resolve(PEER, 0, 40_000), MAC, "a STALE entry is still used");
  assert.equal(cache.get(PEER)!.state, "DELAY");
  assert.equal(cache.poll(44_999, actions), 45_000);
  cache.poll(45_000, actions);
  assert.equal(cache.get(PEER)!.state, "PROBE");
  assert.deepEqual(solicited, [["fd00::1", MAC]], "unicast probe to the cached MAC");
  cache.poll(46_000, actions);
  cache.poll(47_000, actions);
  assert.equal(solicited.length, 3);
  cache.poll(48_000, actions);
  assert.equal(cache.size, 0);
  assert.equal(cache.unreachable, 1);
});

Deno.test("nud: a solicited advertisement in DELAY or PROBE confirms (REACHABLE again)", () => {
  const { cache, actions } = harness();
  cache.learn(PEER, 0, MAC, 0, actions);
  assert.equal(cache.get(PEER)!.state, "STALE", "learnt from a solicitation: STALE (RFC 4861 §7.2.3)");
  cache.resolve(PEER, 0, 100);
  cache.poll(5100, actions);
  assert.equal(cache.get(PEER)!.state, "PROBE");
  cache.advertisement(PEER, MAC, true, false, 5200, actions);
  assert.equal(cache.get(PEER)!.state, "REACHABLE");
});

Deno.test("nud: override rules of RFC 4861 §7.2.5 for a different link-layer address", () => {
  const { cache, actions } = harness();
  cache.enqueue(PEER, 0, new Uint8Array(1), 0);
  cache.advertisement(PEER, MAC, true, true, 0, actions);
  // O clear and another MAC: REACHABLE → STALE, the MAC is kept.
  cache.advertisement(PEER, OTHER_MAC, true, false, 10, actions);
  assert.equal(cache.get(PEER)!.state, "STALE");
  assert.equal(cache.get(PEER)!.mac, MAC);
  // O set: the MAC is replaced; unsolicited → STALE.
  cache.advertisement(PEER, OTHER_MAC, false, true, 20, actions);
  assert.equal(cache.get(PEER)!.mac, OTHER_MAC);
  assert.equal(cache.get(PEER)!.state, "STALE");
  // An advertisement for an unknown neighbour creates nothing.
  cache.advertisement(ip6("fd00::9"), MAC, true, true, 30, actions);
  assert.equal(cache.get(ip6("fd00::9")), undefined);
  // A solicitation's option with a new MAC: STALE with the new MAC.
  cache.advertisement(PEER, OTHER_MAC, true, true, 40, actions);
  cache.learn(PEER, 0, MAC, 50, actions);
  assert.deepEqual([cache.get(PEER)!.state, cache.get(PEER)!.mac], ["STALE", MAC]);
});

Deno.test("nud: bounded — queues per neighbour and in all, and entries (LRU eviction, never INCOMPLETE)", () => {
  const { cache, drops, actions } = harness({ capacity: 2, maxQueuedPerNeighbor: 2, maxQueuedTotal: 3 });
  for (let i = 0; i < 3; i++) cache.enqueue(PEER, 0, new Uint8Array(1), 0);
  assert.equal(drops.get("neighbor-queue-full"), 1);
  cache.enqueue(ip6("fd00::3"), 0, new Uint8Array(1), 0);
  cache.enqueue(ip6("fd00::3"), 0, new Uint8Array(1), 0);
  assert.equal(drops.get("neighbor-queue-full"), 2, "the total bound bites too");
  assert.equal(cache.queuedPackets, 3);
  // Both entries are INCOMPLETE: a third neighbour finds no victim.
  cache.enqueue(ip6("fd00::4"), 0, new Uint8Array(1), 0);
  assert.equal(drops.get("neighbor-cache-full"), 1);
  cache.advertisement(PEER, MAC, true, true, 1, actions);
  cache.learn(ip6("fd00::4"), 0, MAC, 2, actions);
  assert.equal(cache.evictions, 1);
  assert.equal(cache.get(PEER), undefined, "the resolved entry was the least recently used");
  assert.equal(cache.size, 2);
});

Deno.test("nud: a router's Reachable Time and Retrans Timer apply (0 means unspecified)", () => {
  const { cache, solicited, actions } = harness();
  cache.setTimers(10_000, 250);
  assert.equal(cache.reachableTime, 10_000);
  assert.equal(cache.retransTimer, 250);
  cache.setTimers(0, 0);
  assert.equal(cache.retransTimer, 250);
  cache.enqueue(PEER, 0, new Uint8Array(1), 0);
  cache.poll(250, actions);
  assert.equal(solicited.length, 1);
});

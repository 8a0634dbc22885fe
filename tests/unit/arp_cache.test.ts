/** The ARP cache alone, on a virtual clock: expiry, eviction, queue bounds, retries and failure. */

import assert from "node:assert/strict";
import { ArpCache } from "../../lib/iface/arp_cache.ts";
import { DropCounters } from "../../lib/iface/stats.ts";
import { ip } from "../helpers/packets.ts";

const packet = (n: number) => new Uint8Array([n, n, n]);

Deno.test("arp cache: entries expire after their lifetime; a refresh extends it", () => {
  const drops = new DropCounters();
  const cache = new ArpCache(drops, { entryLifetimeMs: 10_000 });
  cache.insert(ip("10.0.0.1"), 0x0a, 0, () => assert.fail("nothing was queued"));
  assert.equal(cache.lookup(ip("10.0.0.1"), 9_999), 0x0a);
  assert.equal(cache.lookup(ip("10.0.0.1"), 10_000), null);
  assert.equal(cache.size, 0);
  assert.equal(cache.expirations, 1);

  cache.insert(ip("10.0.0.3"), 0x0c, 0, () => {});
  cache.insert(ip("10.0.0.3"), 0x0d, 8_000, () => {});
  assert.equal(cache.lookup(ip("10.0.0.3"), 17_999), 0x0d, "refreshed at 8 s, lives until 18 s");
  // poll sweeps expired entries even when nobody looks them up.
  cache.insert(ip("10.0.0.4"), 0x0e, 0, () => {});
  cache.poll(10_000, () => {});
  assert.equal(cache.entries(10_000).some((e) => e.ip === ip("10.0.0.4")), false);
  assert.equal(cache.size, 1);
});

Deno.test("arp cache: a full cache evicts the entry refreshed least recently", () => {
  const cache = new ArpCache(new DropCounters(), { capacity: 2 });
  cache.insert(1, 0x1, 0, () => {});
  cache.insert(2, 0x2, 1, () => {});
  cache.insert(1, 0x1, 2, () => {}); // refresh 1: now 2 is the oldest
  cache.insert(3, 0x3, 3, () => {});
  assert.equal(cache.size, 2);
  assert.equal(cache.lookup(2, 4), null);
  assert.equal(cache.lookup(1, 4), 0x1);
  assert.equal(cache.lookup(3, 4), 0x3);
  assert.equal(cache.evictions, 1);
});

Deno.test("arp cache: 3 requests 1 s apart, then failure drops the queued packets as unresolved", () => {
  const drops = new DropCounters();
  const cache = new ArpCache(drops);
  const target = ip("10.0.0.9");
  assert.equal(cache.enqueue(target, packet(1), 0), "request-now");
  assert.equal(cache.enqueue(target, packet(2), 10), "queued");
  const requests: number[] = [];
  const at = (now: number) => {
    const deadline = cache.poll(now, (addr) => {
      assert.equal(addr, target);
      requests.push(now);
    });
    return deadline;
  };
  assert.equal(at(500), 1000, "first retry due 1 s after the first request");
  assert.deepEqual(requests, []);
  assert.equal(at(1000), 2000);
  assert.equal(at(2000), 3000);
  assert.deepEqual(requests, [1000, 2000], "two retries after the first request: three in all");
  assert.equal(cache.queuedPackets, 2);
  assert.equal(at(2999), 3000);
  assert.equal(at(3000), null, "the last request went unanswered for 1 s: resolution failed");
  assert.deepEqual(requests, [1000, 2000]);
  assert.equal(drops.get("unresolved"), 2);
  assert.equal(cache.failures, 1);
  assert.equal(cache.pendingCount, 0);
  assert.equal(cache.queuedPackets, 0);
  // A later packet starts a fresh resolution.
  assert.equal(cache.enqueue(target, packet(3), 5000), "request-now");
});

Deno.test("arp cache: per-destination, global and pending bounds drop and count", () => {
  const drops = new DropCounters();
  const cache = new ArpCache(drops, { maxQueuedPerDestination: 2, maxQueuedTotal: 3, maxPending: 2 });
  assert.equal(cache.enqueue(1, packet(1), 0), "request-now");
  assert.equal(cache.enqueue(1, packet(2), 0), "queued");
  assert.equal(cache.enqueue(1, packet(3), 0), "dropped");
  assert.equal(drops.get("arp-queue-full"), 1);
  assert.equal(cache.enqueue(2, packet(4), 0), "request-now");
  assert.equal(cache.enqueue(2, packet(5), 0), "dropped", "global bound of 3 reached");
  assert.equal(drops.get("arp-queue-full"), 2);
  assert.equal(cache.enqueue(3, packet(6), 0), "dropped", "two resolutions already in progress");
  assert.equal(drops.get("arp-too-many-pending"), 1);
  assert.equal(cache.queuedPackets, 3);
});

Deno.test("arp cache: a reply releases the queued packets in order, as copies", () => {
  const cache = new ArpCache(new DropCounters());
  const original = packet(7);
  cache.enqueue(5, original, 0);
  original[0] = 99; // the caller's buffer is reused: the queue must hold a copy
  cache.enqueue(5, packet(8), 0);
  const released: number[] = [];
  cache.insert(5, 0xabc, 100, (p) => released.push(p[0]));
  assert.deepEqual(released, [7, 8]);
  assert.equal(cache.pendingCount, 0);
  assert.equal(cache.queuedPackets, 0);
  assert.equal(cache.lookup(5, 100), 0xabc);
  assert.equal(cache.poll(100, () => assert.fail("no retry after resolution")), null);
});

Deno.test("arp cache: clear counts the waiting packets as flushed", () => {
  const drops = new DropCounters();
  const cache = new ArpCache(drops);
  cache.enqueue(1, packet(1), 0);
  cache.enqueue(1, packet(2), 0);
  cache.insert(2, 0x2, 0, () => {});
  cache.clear();
  assert.equal(drops.get("flushed"), 2);
  assert.equal(cache.size + cache.pendingCount + cache.queuedPackets, 0);
});

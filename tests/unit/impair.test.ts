import assert from "node:assert/strict";
import { ImpairedDevice, parseImpairment } from "../../lib/phy/impair.ts";
import { Prng } from "../../lib/prng.ts";
import { Impairment } from "../../lib/phy/impairment.ts";
import { MemoryDevice } from "../../lib/phy/memory.ts";

function numbered(n: number): Uint8Array {
  return new Uint8Array([n >> 8, n & 0xff]);
}
const id = (p: Uint8Array) => (p[0] << 8) | p[1];

Deno.test("impair: the spec parses, with clear errors", () => {
  assert.deepEqual(parseImpairment("loss=0.05,reorder=0.02,duplicate=0.01,seed=7"), {
    loss: 0.05,
    reorder: 0.02,
    duplicate: 0.01,
    seed: 7,
    direction: "both",
  });
  assert.equal(parseImpairment("direction=in").direction, "in");
  assert.throws(() => parseImpairment("loss=2"), /probability/);
  assert.throws(() => parseImpairment("loss=-0.1"), /probability/);
  assert.throws(() => parseImpairment("jitter=1"), /unknown impairment 'jitter'/);
  assert.throws(() => parseImpairment("loss"), /key=value/);
  assert.throws(() => parseImpairment("seed=x"), /whole number/);
});

Deno.test("impair: the PRNG is deterministic per seed and roughly uniform", () => {
  const a = new Prng(7);
  const b = new Prng(7);
  const values = Array.from({ length: 10000 }, () => a.next());
  assert.deepEqual(values.slice(0, 5), Array.from({ length: 5 }, () => b.next()));
  const mean = values.reduce((x, y) => x + y, 0) / values.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  assert.ok(values.every((v) => v >= 0 && v < 1));
});

Deno.test("impair: outbound loss, duplication and reordering match their rates and keep every survivor", () => {
  const inner = new MemoryDevice();
  const device = new ImpairedDevice(inner, {
    loss: 0.1,
    reorder: 0.05,
    duplicate: 0.05,
    seed: 3,
    direction: "out",
  });
  const n = 20000;
  for (let i = 0; i < n; i++) device.send(numbered(i));
  void device.wait(0); // releases a packet still held back
  const ids = inner.sent.map(id);
  const c = device.outbound;
  assert.equal(ids.length, n - c.lost + c.duplicated);
  assert.ok(Math.abs(c.lost / n - 0.1) < 0.01, `lost ${c.lost}`);
  assert.ok(Math.abs(c.duplicated / n - 0.045) < 0.01, `duplicated ${c.duplicated}`);
  assert.ok(c.reordered > 0.03 * n && c.reordered < 0.06 * n, `reordered ${c.reordered}`);
  // Out of order exactly where a packet was held: some id is followed by a smaller one.
  let inversions = 0;
  for (let i = 1; i < ids.length; i++) if (ids[i] < ids[i - 1]) inversions++;
  assert.equal(inversions, c.reordered);
  assert.equal(new Set(ids).size, n - c.lost);
});

Deno.test("impair: the same seed gives the same outcome", () => {
  const run = () => {
    const inner = new MemoryDevice();
    const device = new ImpairedDevice(inner, parseImpairment("loss=0.2,reorder=0.1,duplicate=0.1,seed=42"));
    for (let i = 0; i < 500; i++) device.send(numbered(i));
    return inner.sent.map(id);
  };
  assert.deepEqual(run(), run());
});

Deno.test("impair: inbound reordering never strands a packet on a quiet link", () => {
  const inner = new MemoryDevice();
  const device = new ImpairedDevice(inner, { loss: 0, reorder: 1, duplicate: 0, seed: 1, direction: "in" });
  const got: number[] = [];
  inner.inject(numbered(1));
  device.receive((p) => got.push(id(p)), 64); // held back
  assert.equal(got.length, 0);
  device.receive((p) => got.push(id(p)), 64); // nothing new arrived: released
  assert.deepEqual([...got], [1]);
  inner.inject(numbered(2));
  inner.inject(numbered(3));
  device.receive((p) => got.push(id(p)), 64);
  assert.deepEqual([...got], [1, 3, 2]);
});

Deno.test("impairment model: a rate limit serializes packets, delays them, and drops beyond its queue", () => {
  const link = new Impairment({ rateBytesPerMs: 100, queuePackets: 5, delayMs: 10 }, new Prng(1));
  const got: [number, number][] = [];
  let now = 0;
  const deliver = (p: Uint8Array) => got.push([id(p), now]);
  const packet = (i: number) => {
    const bytes = new Uint8Array(1000);
    bytes.set(numbered(i));
    return bytes;
  };
  for (let i = 0; i < 10; i++) link.offer(packet(i), 0, null, 0, deliver);
  assert.equal(link.stats().lost, 5, "drop-tail beyond 5 queued packets");
  assert.equal(link.nextDue(), 20, "10 ms to serialize 1000 bytes at 100 B/ms, plus 10 ms of delay");
  now = 35;
  assert.equal(link.deliverDue(now, deliver), 2);
  now = 1000;
  assert.equal(link.deliverDue(now, deliver), 3);
  assert.deepEqual(got.map(([i]) => i), [0, 1, 2, 3, 4]);
  assert.equal(link.nextDue(), null);
  // Once the queue drained, the link takes packets again.
  link.offer(numbered(10), 0, null, 1000, deliver);
  assert.equal(link.stats().lost, 5);
});

Deno.test("impairment model: jitter and timed reordering reorder by due time; a group loses once", () => {
  const link = new Impairment({ delayMs: 1, reorder: 0.5, reorderDelayMs: 50, jitterMs: 2 }, new Prng(9));
  const got: number[] = [];
  for (let i = 0; i < 200; i++) link.offer(numbered(i), 0, null, i, (p) => got.push(id(p)));
  link.deliverDue(10_000, (p) => got.push(id(p)));
  assert.equal(got.length, 200);
  assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
  const reordered = link.stats().reordered;
  assert.ok(reordered > 60 && reordered < 140, `reordered ${reordered}`);
  let late = 0;
  for (let i = 1; i < got.length; i++) if (got[i] < got[i - 1]) late++;
  assert.ok(late > 0, "held packets were overtaken");
  const lossy = new Impairment({ loss: 1 }, new Prng(2));
  assert.equal(lossy.losesGroup(), true);
  assert.deepEqual(lossy.stats(), { lost: 1, duplicated: 0, reordered: 0 });
  const kept: number[] = [];
  lossy.offer(numbered(1), 0, null, 0, (p) => kept.push(id(p)), true);
  assert.deepEqual(kept, [1], "a piece of a group that was kept is not lost again");
});

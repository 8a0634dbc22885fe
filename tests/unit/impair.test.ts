import assert from "node:assert/strict";
import { ImpairedDevice, parseImpairment, seededRandom } from "../../lib/phy/impair.ts";
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
  const a = seededRandom(7);
  const b = seededRandom(7);
  const values = Array.from({ length: 10000 }, () => a());
  assert.deepEqual(values.slice(0, 5), Array.from({ length: 5 }, () => b()));
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

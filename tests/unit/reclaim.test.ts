/** When the stack gives memory back: after a large drop of connections or buffer bytes, once it settled. */

import assert from "node:assert/strict";
import { ReclaimTrigger } from "../../lib/stack/reclaim.ts";

const s = (connections: number, bufferBytes = 0) => ({ connections, bufferBytes });

Deno.test("reclaim: waits for a large drop below the high-water mark to settle, then fires once", () => {
  const t = new ReclaimTrigger({ connectionDrop: 1000, byteDrop: 1 << 20, maxWait: 5 });
  assert.equal(t.sample(s(0)), false);
  assert.equal(t.sample(s(10_000)), false, "growth never reclaims");
  assert.equal(t.sample(s(9_500)), false, "a small drop does not count");
  assert.equal(t.sample(s(4_000)), false, "still dropping: not settled");
  assert.equal(t.sample(s(4_000)), true, "settled: reclaim");
  assert.equal(t.sample(s(4_000)), false, "once per drop: the marks restart from there");
  assert.equal(t.sample(s(3_500)), false);
});

Deno.test("reclaim: buffer bytes count too, and a drop still going on is acted on after maxWait samples", () => {
  const t = new ReclaimTrigger({ connectionDrop: 1000, byteDrop: 1 << 20, maxWait: 3 });
  t.sample(s(10, 8 << 20));
  assert.equal(t.sample(s(10, 6 << 20)), false);
  assert.equal(t.sample(s(10, 6 << 20)), true, "2 MiB of buffers freed and settled");
  const u = new ReclaimTrigger({ connectionDrop: 1000, byteDrop: 1 << 20, maxWait: 3 });
  u.sample(s(50_000));
  const fired = [40_000, 30_000, 20_000, 10_000].map((n) => u.sample(s(n)));
  assert.deepEqual(fired, [false, false, true, false], "the third sample of a steady decline fires");
});

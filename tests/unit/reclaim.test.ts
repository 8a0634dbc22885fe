/** When the stack gives memory back: after a large change of connections or buffer bytes, once it settled. */

import assert from "node:assert/strict";
import { ReclaimTrigger } from "../../lib/stack/reclaim.ts";

const s = (connections: number, bufferBytes = 0) => ({ connections, bufferBytes });

Deno.test("reclaim: waits for a large change to settle, then fires once per change", () => {
  const t = new ReclaimTrigger({ connectionChange: 1000, byteChange: 1 << 20, maxWait: 5 });
  assert.equal(t.sample(s(0)), false);
  assert.equal(t.sample(s(500)), false, "a small change does not count");
  assert.equal(t.sample(s(10_000)), false, "still opening: not settled");
  assert.equal(t.sample(s(10_000)), true, "the burst of opens settled: reclaim its garbage");
  assert.equal(t.sample(s(10_000)), false, "once per change");
  assert.equal(t.sample(s(9_500)), false, "a small drop does not count");
  assert.equal(t.sample(s(4_000)), false, "still closing");
  assert.equal(t.sample(s(4_000)), true, "the closes settled: reclaim");
  assert.equal(t.sample(s(4_000)), false);
});

Deno.test("reclaim: buffer bytes count too, and a change still going on is acted on after maxWait samples", () => {
  const t = new ReclaimTrigger({ connectionChange: 1000, byteChange: 1 << 20, maxWait: 3 });
  assert.equal(t.sample(s(10, 8 << 20)), false);
  assert.equal(t.sample(s(10, 6 << 20)), false);
  assert.equal(t.sample(s(10, 6 << 20)), true, "6 MiB of buffers, settled");
  assert.equal(t.sample(s(10, 6 << 20)), false);
  const u = new ReclaimTrigger({ connectionChange: 1000, byteChange: 1 << 20, maxWait: 3 });
  u.sample(s(50_000));
  u.sample(s(50_000));
  const fired = [40_000, 30_000, 20_000, 10_000].map((n) => u.sample(s(n)));
  assert.deepEqual(fired, [false, false, true, false], "the third sample of a steady decline fires");
});

/** When the stack gives memory back: after a large change of connections or buffer bytes, once it settled. */

import assert from "node:assert/strict";
import { ReclaimTrigger } from "../../lib/stack/reclaim.ts";

const s = (connections: number, bufferBytes = 0) => ({ connections, bufferBytes });

Deno.test("reclaim: waits for a large change to settle, then fires once per change", () => {
  const t = new ReclaimTrigger({ connectionChange: 1000, byteChange: 1 << 20 });
  assert.equal(t.sample(s(0)), false);
  assert.equal(t.sample(s(500)), false, "a small change does not count");
  assert.equal(t.sample(s(10_000)), false, "still opening: not settled");
  assert.equal(t.sample(s(10_050)), true, "the burst of opens settled (within a tenth of the threshold)");
  assert.equal(t.sample(s(10_050)), false, "once per change");
  assert.equal(t.sample(s(9_500)), false, "a small drop does not count");
  assert.equal(t.sample(s(4_000)), false, "still closing");
  assert.equal(t.sample(s(3_000)), false, "still closing");
  assert.equal(t.sample(s(3_000)), true, "the closes settled: reclaim");
  assert.equal(t.sample(s(3_000)), false);
});

Deno.test("reclaim: buffer bytes count too; growth past maxConnectionsForGrowth is left to V8, drops never", () => {
  const t = new ReclaimTrigger({ connectionChange: 1000, byteChange: 1 << 20 });
  assert.equal(t.sample(s(10, 8 << 20)), false);
  assert.equal(t.sample(s(10, 6 << 20)), false, "buffers still changing");
  assert.equal(t.sample(s(10, 6 << 20)), true, "6 MiB of buffers more than at the start, settled");
  const u = new ReclaimTrigger({
    connectionChange: 1000,
    byteChange: 1 << 20,
    maxConnectionsForGrowth: 50_000,
  });
  u.sample(s(0));
  u.sample(s(100_000));
  assert.equal(
    u.sample(s(100_000)),
    false,
    "100,000 connections: a collection would stop the stack too long",
  );
  assert.equal(u.sample(s(20_000)), false, "closing");
  assert.equal(u.sample(s(20_000)), true, "the drop settled: reclaim");
});

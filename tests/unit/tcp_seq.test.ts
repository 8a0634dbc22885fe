import assert from "node:assert/strict";
import {
  seqAdd,
  seqDiff,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLt,
  seqMax,
  seqMin,
} from "../../lib/tcp/seq.ts";
import { Prng } from "../../lib/prng.ts";

Deno.test("tcp seq: comparisons across the 2^32 wrap", () => {
  const high = 0xfffffff0, low = 0x10;
  assert.ok(seqLt(high, low));
  assert.ok(seqGt(low, high));
  assert.ok(seqLe(high, high) && seqGe(low, low));
  assert.equal(seqDiff(low, high), 0x20);
  assert.equal(seqDiff(high, low), -0x20);
  assert.equal(seqAdd(high, 0x20), low);
  assert.equal(seqAdd(low, -0x20), high);
  assert.equal(seqMax(high, low), low);
  assert.equal(seqMin(high, low), high);
  assert.ok(seqInRange(0xffffffff, high, low));
  assert.ok(seqInRange(0, high, low));
  assert.ok(!seqInRange(low, high, low), "end is exclusive");
  assert.ok(!seqInRange(5, 5, 5), "empty range");
});

Deno.test("tcp seq: ordering is antisymmetric for distances below 2^31", () => {
  const prng = new Prng(0x9e3779b9);
  for (let i = 0; i < 1000; i++) {
    const x = prng.nextU32();
    const d = (x >>> 2) + 1; // 1 ..< 2^30
    const a = x, b = seqAdd(x, d);
    assert.ok(seqLt(a, b) && seqGt(b, a) && !seqLt(b, a));
    assert.equal(seqDiff(b, a), d);
  }
});

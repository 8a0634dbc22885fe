import assert from "node:assert/strict";
import { ReassemblyQueue } from "../../lib/tcp/reassembly.ts";
import { RecvBuffer } from "../../lib/tcp/recv_buffer.ts";
import { SendBuffer } from "../../lib/tcp/send_buffer.ts";
import { Prng } from "../../lib/prng.ts";
import { MemoryBudget, SPARE_STORES } from "../../lib/tcp/memory_budget.ts";

const bytes = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

Deno.test("tcp buffers: send ring wraps, copies out at offsets and consumes", () => {
  const b = new SendBuffer(10);
  assert.equal(b.write(bytes(7)), 7);
  b.consume(5);
  assert.equal(b.write(bytes(20, 7)), 8, "bounded by free space");
  assert.equal(b.length, 10);
  const out = new Uint8Array(10);
  b.copyOut(0, out, 0, 10);
  assert.deepEqual(out, bytes(10, 5));
  b.copyOut(3, out, 1, 4);
  assert.deepEqual(out.subarray(1, 5), bytes(4, 8));
  assert.throws(() => b.copyOut(8, out, 0, 3), RangeError);
  b.consume(10);
  assert.equal(b.length, 0);
});

Deno.test("tcp buffers: receive ring writes past the readable end and commits", () => {
  const r = new RecvBuffer(8);
  r.writeAt(3, bytes(3, 3), 0, 3); // out of order
  r.writeAt(0, bytes(3), 0, 3);
  r.commit(6);
  const out = new Uint8Array(4);
  assert.equal(r.read(out), 4);
  assert.deepEqual(out, bytes(4));
  r.writeAt(0, bytes(6, 6), 0, 6); // wraps
  r.commit(6);
  const all = new Uint8Array(20);
  assert.equal(r.read(all), 8);
  assert.deepEqual(all.subarray(0, 8), bytes(8, 4));
  assert.throws(() => r.writeAt(5, bytes(4), 0, 4), RangeError);
});

Deno.test("tcp reassembly: merges ranges, advances RCV.NXT, bounds the queue", () => {
  const q = new ReassemblyQueue(3);
  assert.ok(q.add(100, 10));
  assert.ok(q.add(120, 10));
  assert.ok(q.add(140, 10));
  assert.equal(q.add(160, 10), false, "a fourth disjoint range is refused");
  assert.ok(q.add(110, 10), "filling the gap merges 100..130");
  assert.equal(q.rangeCount, 2);
  assert.equal(q.advance(90), 90, "nothing contiguous yet");
  assert.equal(q.advance(100), 130);
  assert.equal(q.rangeCount, 1);
  assert.ok(q.add(125, 20), "overlap extends 140..150 down to 125");
  assert.equal(q.rangeStart(0), 125);
  assert.equal(q.rangeEnd(0), 150);
});

Deno.test("tcp reassembly: SACK blocks list the most recently changed range first", () => {
  const q = new ReassemblyQueue(8);
  q.add(100, 10);
  q.add(200, 10);
  q.add(300, 10);
  q.add(210, 5); // extends the middle range: now the most recent
  const out = new Uint32Array(8);
  assert.equal(q.sackBlocks(out, 3), 3);
  assert.deepEqual([...out.subarray(0, 6)], [200, 215, 300, 310, 100, 110]);
});

Deno.test("tcp reassembly: works across the sequence wrap", () => {
  const q = new ReassemblyQueue(4);
  q.add(0xfffffff0, 0x10);
  q.add(0x10, 0x10);
  q.add(0, 0x10);
  assert.equal(q.rangeCount, 1);
  assert.equal(q.advance(0xffffffe0), 0xffffffe0);
  assert.equal(q.advance(0xfffffff0), 0x20);
});

Deno.test("tcp buffers: randomized send ring against a model, with growth while wrapped", () => {
  const prng = new Prng(42);
  const rnd = (n: number) => prng.below(n);
  const b = new SendBuffer(100_000);
  let model: number[] = [];
  let next = 0;
  for (let step = 0; step < 3000; step++) {
    if (rnd(3) > 0) {
      const chunk = bytes(rnd(5000), next);
      const n = b.write(chunk);
      for (let i = 0; i < n; i++) model.push(chunk[i]);
      next += n;
    } else {
      const n = rnd(model.length + 1);
      b.consume(n);
      model = model.slice(n);
    }
    assert.equal(b.length, model.length);
    if (model.length > 0) {
      const off = rnd(model.length), n = rnd(model.length - off + 1);
      const out = new Uint8Array(n);
      b.copyOut(off, out, 0, n);
      assert.deepEqual([...out], model.slice(off, off + n));
    }
  }
  assert.ok(b.allocated <= 131072 && b.allocated >= 16384);
});

Deno.test("tcp buffers: randomized receive ring against a model, out-of-order writes survive growth", () => {
  const prng = new Prng(7);
  const rnd = (n: number) => prng.below(n);
  const r = new RecvBuffer(200_000);
  // The stream byte at absolute offset i is i & 0xff; `readPos` bytes were read, `committed` are readable.
  let readPos = 0, committed = 0;
  for (let step = 0; step < 2000; step++) {
    const op = rnd(4);
    if (op === 0) {
      // Out-of-order write somewhere after the readable end.
      const off = rnd(Math.max(1, r.free - 10));
      const n = Math.min(rnd(3000), r.free - off);
      const abs = readPos + committed + off;
      r.writeAt(off, bytes(n, abs), 0, n);
    } else if (op === 1) {
      // In-order write then commit.
      const n = Math.min(rnd(4000), r.free);
      r.writeAt(0, bytes(n, readPos + committed), 0, n);
      r.commit(n);
      committed += n;
    } else {
      const out = new Uint8Array(rnd(6000));
      const n = r.read(out);
      assert.deepEqual(out.subarray(0, n), bytes(n, readPos));
      readPos += n;
      committed -= n;
    }
    assert.equal(r.length, committed);
  }
  // Out-of-order bytes written before the store grows are preserved by the growth.
  const r2 = new RecvBuffer(100_000);
  r2.writeAt(0, bytes(1000), 0, 1000);
  r2.commit(1000);
  const head = new Uint8Array(600);
  assert.equal(r2.read(head), 600); // head is now mid-store
  r2.writeAt(14_000, bytes(1000, 15_000), 0, 1000); // out of order, wraps the 16 KiB store
  assert.equal(r2.allocated, 16384);
  r2.writeAt(30_000, bytes(1000, 31_000), 0, 1000); // forces growth
  assert.ok(r2.allocated > 16384);
  r2.writeAt(0, bytes(14_000, 1000), 0, 14_000);
  r2.writeAt(15_000, bytes(15_000, 16_000), 0, 15_000);
  r2.commit(31_000);
  const all = new Uint8Array(31_400);
  assert.equal(r2.read(all), 31_400);
  assert.deepEqual(all, bytes(31_400, 600));
});

Deno.test("tcp buffers: a drained first store is reused by the next buffer, never shared, the cache bounded", () => {
  const budget = new MemoryBudget(1 << 30);
  const send = new SendBuffer(1 << 20, budget);
  send.write(bytes(100));
  const first = budget.stats().used;
  send.consume(100); // drained: the store is released and kept as a spare
  assert.equal(budget.stats().used, 0);
  assert.equal(budget.stats().spare, first);
  const recv = new RecvBuffer(1 << 20, budget);
  recv.writeAt(0, bytes(5, 9), 0, 5);
  recv.commit(5);
  assert.equal(budget.stats().spare, 0, "the receive buffer took the spare");
  assert.equal(budget.stats().used, first, "and is charged for it");
  send.write(bytes(3, 50)); // a fresh store: the spare is held by the receive buffer
  const out = new Uint8Array(5);
  assert.equal(recv.read(out), 5);
  assert.deepEqual(out, bytes(5, 9), "stale bytes of the spare are never read");
  const copied = new Uint8Array(3);
  send.copyOut(0, copied, 0, 3);
  assert.deepEqual(copied, bytes(3, 50));
  // The cache keeps at most SPARE_STORES stores.
  const rings = Array.from({ length: SPARE_STORES + 10 }, () => new SendBuffer(1 << 20, budget));
  for (const ring of rings) ring.write(bytes(1));
  for (const ring of rings) ring.consume(1);
  assert.equal(budget.stats().spare, SPARE_STORES * first);
});

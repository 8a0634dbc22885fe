/** The TCP layer's indexed timer heap against a brute-force model. */

import assert from "node:assert/strict";
import { type TimerEntry, TimerHeap } from "../../lib/tcp/timer_heap.ts";
import { Prng } from "../../lib/prng.ts";

class Entry implements TimerEntry {
  timerIndex = -1;
  timerDeadline = Infinity;
  constructor(readonly id: number) {}
}

Deno.test("timer heap: schedule, re-arm, cancel and popDue agree with a brute-force model", () => {
  const rng = new Prng(13);
  const heap = new TimerHeap<Entry>();
  const entries = Array.from({ length: 200 }, (_, i) => new Entry(i));
  const model = new Map<Entry, number>();
  let now = 0;
  for (let step = 0; step < 20_000; step++) {
    const e = entries[rng.nextU32() % entries.length];
    const op = rng.nextU32() % 10;
    if (op < 6) {
      const deadline = now + (rng.nextU32() % 1000);
      heap.schedule(e, deadline);
      model.set(e, deadline);
    } else if (op < 7) {
      heap.schedule(e, rng.next() < 0.5 ? null : Infinity);
      model.delete(e);
    } else if (op < 8) {
      heap.remove(e);
      model.delete(e);
    } else {
      now += rng.nextU32() % 50;
      const popped: Entry[] = [];
      for (let x = heap.popDue(now); x !== null; x = heap.popDue(now)) popped.push(x);
      const due = [...model].filter(([, d]) => d <= now);
      assert.deepEqual(new Set(popped), new Set(due.map(([x]) => x)), `step ${step}`);
      // Popped in deadline order.
      for (let i = 1; i < popped.length; i++) {
        assert.ok(model.get(popped[i - 1])! <= model.get(popped[i])!);
      }
      for (const x of popped) {
        assert.equal(x.timerIndex, -1);
        model.delete(x);
      }
    }
    assert.equal(heap.size, model.size);
    const earliest = Math.min(...model.values());
    assert.equal(heap.earliest, earliest);
    assert.equal(e.timerIndex >= 0, model.has(e));
  }
});

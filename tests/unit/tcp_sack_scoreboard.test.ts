import assert from "node:assert/strict";
import { SackScoreboard } from "../../lib/tcp/sack_scoreboard.ts";

const blocks = (...pairs: [number, number][]) => new Uint32Array(pairs.flat());

Deno.test("tcp sack scoreboard: merges blocks, ignores invalid and D-SACK blocks", () => {
  const s = new SackScoreboard();
  const una = 1000, nxt = 10000;
  assert.equal(s.update(blocks([2000, 3000], [4000, 5000]), 2, una, nxt), 2000);
  assert.equal(s.update(blocks([3000, 4000]), 1, una, nxt), 1000, "bridges the two ranges");
  assert.equal(s.rangeCount, 1);
  assert.equal(s.update(blocks([500, 900]), 1, una, nxt), 0, "D-SACK below SND.UNA");
  assert.equal(s.update(blocks([9000, 11000]), 1, una, nxt), 0, "beyond SND.NXT");
  assert.equal(s.update(blocks([6000, 6000]), 1, una, nxt), 0, "empty");
  assert.equal(s.sackedBytes, 3000);
  s.advance(2500);
  assert.equal(s.sackedBytes, 2500);
  assert.equal(s.rangeStart(0), 2500);
});

Deno.test("tcp sack scoreboard: IsLost boundary, hole search and pipe helpers (RFC 6675)", () => {
  const s = new SackScoreboard();
  const mss = 1000, una = 0;
  s.update(blocks([1000, 2000]), 1, una, 20000);
  assert.equal(s.lossBoundary(una, mss), una, "one SACKed segment: nothing lost yet");
  s.update(blocks([3000, 4000]), 1, una, 20000);
  assert.equal(s.lossBoundary(una, mss), una, "2 × SMSS above is not more than (DupThresh − 1) × SMSS");
  s.update(blocks([5000, 6000]), 1, una, 20000);
  // Three discontiguous SACKed ranges above the hole at 0: bytes below the lowest of them are lost.
  assert.equal(s.lossBoundary(una, mss), 1000);
  assert.equal(s.nextUnsacked(1000), 2000);
  assert.equal(s.nextUnsacked(2500), 2500);
  assert.equal(s.nextSackedStart(2000, 99999), 3000);
  assert.equal(s.unsackedBytes(0, 6000), 3000);
  assert.ok(s.isSacked(3500) && !s.isSacked(4500));
  assert.equal(s.highestSacked(0), 6000);
});

import assert from "node:assert/strict";
import {
  foldSum,
  internetChecksum,
  ipv4PseudoHeaderSum,
  sumWords,
  updateChecksum16,
} from "../../lib/wire/checksum.ts";
import { Prng } from "../../lib/prng.ts";

/** A deliberately naive RFC 1071 checksum to compare the optimized one against. */
function referenceChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i] << 8) + (i + 1 < bytes.length ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return ~sum & 0xffff;
}

function seeded(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.nextU32() >>> 16;
}

Deno.test("checksum: RFC 1071 §3 example sums to 0xddf2", () => {
  const bytes = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(foldSum(sumWords(bytes)), 0xddf2);
  assert.equal(internetChecksum(bytes), 0x220d);
});

Deno.test("checksum: a known IPv4 header verifies to zero and recomputes to its field", () => {
  const header = new Uint8Array([
    0x45,
    0x00,
    0x00,
    0x73,
    0x00,
    0x00,
    0x40,
    0x00,
    0x40,
    0x11,
    0xb8,
    0x61,
    0xc0,
    0xa8,
    0x00,
    0x01,
    0xc0,
    0xa8,
    0x00,
    0xc7,
  ]);
  assert.equal(internetChecksum(header), 0);
  header[10] = 0;
  header[11] = 0;
  assert.equal(internetChecksum(header), 0xb861);
});

Deno.test("checksum: matches the reference on random data of every length 0..300, odd ones included", () => {
  const random = seeded(42);
  for (let length = 0; length <= 300; length++) {
    const bytes = new Uint8Array(length).map(() => random() & 0xff);
    assert.equal(internetChecksum(bytes), referenceChecksum(bytes), `length ${length}`);
  }
});

Deno.test("checksum: ranges and initial sums compose", () => {
  const random = seeded(7);
  const bytes = new Uint8Array(1001).map(() => random() & 0xff);
  // Splitting at an even offset must give the same sum as one pass.
  const split = sumWords(bytes, 0, 500) + sumWords(bytes, 500, 1001);
  assert.equal(foldSum(split), foldSum(sumWords(bytes)));
  assert.equal(internetChecksum(bytes, 10, 20), referenceChecksum(bytes.subarray(10, 20)));
});

Deno.test("checksum: all-ones and all-zeros data", () => {
  assert.equal(internetChecksum(new Uint8Array(64).fill(0xff)), 0);
  assert.equal(internetChecksum(new Uint8Array(64)), 0xffff);
  assert.equal(internetChecksum(new Uint8Array(0)), 0xffff);
});

Deno.test("checksum: a 64 KiB buffer of 0xff folds without overflow", () => {
  const bytes = new Uint8Array(65535).fill(0xff);
  assert.equal(internetChecksum(bytes), referenceChecksum(bytes));
});

Deno.test("checksum: the pseudo-header sum equals summing the 12 pseudo-header bytes", () => {
  const pseudo = new Uint8Array([10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0x01, 0x02]);
  assert.equal(foldSum(ipv4PseudoHeaderSum(0x0a000001, 0x0a000002, 17, 0x0102)), foldSum(sumWords(pseudo)));
});

Deno.test("checksum: the incremental update of RFC 1624 equals a full recomputation", () => {
  const random = seeded(99);
  for (let round = 0; round < 200; round++) {
    const bytes = new Uint8Array(40).map(() => random() & 0xff);
    bytes[10] = 0;
    bytes[11] = 0;
    const checksum = internetChecksum(bytes);
    const oldWord = (bytes[4] << 8) | bytes[5];
    const newWord = random() & 0xffff;
    bytes[4] = newWord >> 8;
    bytes[5] = newWord & 0xff;
    const full = internetChecksum(bytes);
    const incremental = updateChecksum16(checksum, oldWord, newWord);
    // 0x0000 and 0xffff are the same value in ones' complement; RFC 1624 eqn. 3 never yields +0 from -0.
    assert.ok(incremental === full || (incremental ^ full) === 0xffff, `round ${round}`);
  }
});

import assert from "node:assert/strict";
import { IPV4_HEADER_LENGTH } from "../../lib/wire/ipv4.ts";
import { foldSum, sumWords } from "../../lib/wire/checksum.ts";
import { parseTcpOptions, sumWordsWide, TcpFlags, TcpOptions, TcpSegment } from "../../lib/wire/tcp.ts";
import { buildSegment, parseSegment } from "../helpers/tcp_packet.ts";
import { Prng } from "../../lib/prng.ts";

const SRC = 0x0a000002, DST = 0x0a000001;

Deno.test("tcp wire: header fields and options round-trip through writer and view", () => {
  const bytes = buildSegment({
    src: SRC,
    dst: DST,
    srcPort: 1234,
    dstPort: 80,
    flags: "S.",
    seq: 0xfffffffe,
    ack: 0x80000001,
    window: 4321,
    options: { mss: 1400, ts: [0xdeadbeef, 7], sack: [[1, 2], [0xfffffff0, 5]] },
    payload: 3,
  });
  const seg = new TcpSegment().wrap(bytes, IPV4_HEADER_LENGTH);
  assert.equal(seg.check(SRC, DST), null);
  assert.equal(seg.srcPort, 1234);
  assert.equal(seg.dstPort, 80);
  assert.equal(seg.seq, 0xfffffffe);
  assert.equal(seg.ack, 0x80000001);
  assert.equal(seg.flags, TcpFlags.SYN | TcpFlags.ACK);
  assert.equal(seg.window, 4321);
  assert.equal(seg.payloadLength, 3);
  assert.equal(seg.sequenceLength, 4, "SYN counts one");
  const p = parseSegment(bytes);
  assert.equal(p.mss, 1400);
  assert.deepEqual(p.ts, [0xdeadbeef, 7]);
  assert.deepEqual(p.sack, [[1, 2], [0xfffffff0, 5]]);
  const syn = parseSegment(buildSegment({
    src: SRC,
    dst: DST,
    srcPort: 1,
    dstPort: 2,
    flags: "S",
    seq: 0,
    options: { mss: 536, sackOk: true, ts: [1, 0], wscale: 9 },
  }));
  assert.equal(syn.wscale, 9);
  assert.equal(syn.sackOk, true);
  assert.equal(syn.mss, 536);
});

Deno.test("tcp wire: checksum covers the pseudo-header", () => {
  const bytes = buildSegment({
    src: SRC,
    dst: DST,
    srcPort: 1,
    dstPort: 2,
    flags: ".",
    seq: 1,
    ack: 1,
    payload: 11,
  });
  const seg = new TcpSegment().wrap(bytes, IPV4_HEADER_LENGTH);
  assert.equal(seg.check(SRC, DST), null);
  assert.equal(seg.check(SRC, DST + 1), "bad-checksum", "wrong destination address");
  bytes[bytes.length - 1] ^= 1;
  assert.equal(seg.check(SRC, DST), "bad-checksum");
  assert.equal(seg.check(SRC, DST, false), null, "verification can be skipped (offload)");
});

Deno.test("tcp wire: malformed options never throw and keep what parsed", () => {
  const o = new TcpOptions();
  const cases: number[][] = [
    [2, 4, 5, 0xb4, 1, 3], // MSS then a truncated window scale
    [2, 0], // length 0
    [2, 1], // length 1
    [8, 10, 1, 2, 3], // timestamps running past the end
    [2],
    [3, 3, 30], // window scale 30 → clamped to 14
    [5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0], // SACK with a non-multiple of 8
    [2, 3, 1, 4, 2], // MSS with a wrong length is ignored, SACK-permitted still read
  ];
  const results = cases.map((c) => {
    const b = new Uint8Array(c);
    parseTcpOptions(b, 0, b.length, o);
    return {
      mss: o.mss,
      ws: o.windowScale,
      sackOk: o.sackPermitted,
      ts: o.hasTimestamps,
      bad: o.malformed,
      n: o.sackBlockCount,
    };
  });
  assert.deepEqual(results[0], { mss: 1460, ws: -1, sackOk: false, ts: false, bad: true, n: 0 });
  assert.equal(results[1].bad, true);
  assert.equal(results[2].bad, true);
  assert.equal(results[3].bad, true);
  assert.equal(results[3].ts, false);
  assert.equal(results[4].bad, true);
  assert.equal(results[5].ws, 14);
  assert.equal(results[6].n, 0);
  assert.deepEqual(results[7], { mss: -1, ws: -1, sackOk: true, ts: false, bad: false, n: 0 });
  // Random garbage: never throws.
  const prng = new Prng(1);
  for (let i = 0; i < 2000; i++) {
    const b = prng.bytes(40);
    parseTcpOptions(b, 0, prng.below(41), o);
  }
});

Deno.test("tcp wire: truncated and bad-offset segments are rejected by check()", () => {
  const bytes = buildSegment({ src: SRC, dst: DST, srcPort: 1, dstPort: 2, flags: ".", seq: 1, payload: 0 });
  const seg = new TcpSegment();
  assert.equal(seg.wrap(bytes, IPV4_HEADER_LENGTH, IPV4_HEADER_LENGTH + 19).check(SRC, DST), "truncated");
  const bad = bytes.slice();
  bad[IPV4_HEADER_LENGTH + 12] = 0x40; // data offset 4 words
  assert.equal(seg.wrap(bad, IPV4_HEADER_LENGTH).check(SRC, DST), "bad-offset");
  bad[IPV4_HEADER_LENGTH + 12] = 0x60; // 24 bytes in a 20-byte segment
  assert.equal(seg.wrap(bad, IPV4_HEADER_LENGTH).check(SRC, DST), "bad-offset");
});

Deno.test("tcp wire: the wide checksum sum folds to the same value as sumWords for any alignment", () => {
  const backing = new Uint8Array(70_000);
  const prng = new Prng(99);
  backing.set(prng.bytes(backing.length));
  for (let trial = 0; trial < 400; trial++) {
    const x = prng.nextU32();
    const viewStart = x % 16;
    const view = backing.subarray(viewStart);
    const start = (x >>> 4) % 64;
    const length = trial < 20 ? trial * 7 : (x >>> 10) % 66_000;
    const end = Math.min(view.length, start + length);
    const initial = trial % 3 === 0 ? 0x1234567 : 0;
    assert.equal(
      foldSum(sumWordsWide(view, start, end, initial)),
      foldSum(sumWords(view, start, end, initial)),
      `viewStart ${viewStart} start ${start} end ${end}`,
    );
  }
});

/**
 * Unit tests of the receive side on its own: acceptability (RFC 9293 §3.10.7.4), PAWS (RFC 7323 §5),
 * trimming, reassembly, delayed ACKs, the advertised window and FIN sequencing.
 */

import assert from "node:assert/strict";
import { resolveTcpConfig, type TcpLayerOptions } from "../../lib/tcp/config.ts";
import { SegmentText, TcpReceiver, TextResult } from "../../lib/tcp/receiver.ts";
import { TcpStats } from "../../lib/tcp/stats.ts";
import { TcpOptions } from "../../lib/wire/tcp.ts";

function receiver(options: TcpLayerOptions = {}): { r: TcpReceiver; stats: TcpStats } {
  const stats = new TcpStats();
  const r = new TcpReceiver(resolveTcpConfig(options), stats);
  return { r, stats };
}

function text(seq: number, length: number, fin = false, offset = 0): SegmentText {
  const t = new SegmentText();
  t.seq = seq;
  t.offset = offset;
  t.length = length;
  t.fin = fin;
  return t;
}

const bytes = (n: number, first = 0) => Uint8Array.from({ length: n }, (_, i) => (first + i) & 0xff);

Deno.test("tcp receiver: window scale and MSS follow the configuration", () => {
  assert.equal(receiver({ recvBufferSize: 1 << 20 }).r.rcvScale, 5);
  assert.equal(receiver({ recvBufferSize: 65535 }).r.rcvScale, 0);
  assert.equal(receiver({ recvBufferSize: 1 << 20, windowScaling: false }).r.rcvScale, 0);
  assert.equal(receiver({ mtu: 1500 }).r.advertisedMss, 1460);
});

Deno.test("tcp receiver: acceptability test, the four cases and the right-edge ACK (RFC 9293 §3.10.7.4)", () => {
  const { r } = receiver({ recvBufferSize: 10_000, windowScaling: false });
  r.start(999);
  assert.equal(r.rcvNxt, 1000);
  assert.equal(r.window, 0, "nothing advertised yet");
  assert.equal(r.acceptable(1000, 0), true, "empty segment at RCV.NXT with a zero window");
  assert.equal(r.acceptable(1001, 0), false);
  assert.equal(r.acceptable(1000, 10), true, "zero window: acceptable at RCV.NXT (text trimmed later)");
  assert.equal(r.acceptable(1001, 10), false);
  assert.equal(r.synWindow(), 10_000);
  assert.equal(r.window, 10_000);
  assert.equal(r.acceptable(999, 0), false, "empty segment before RCV.NXT");
  assert.equal(r.acceptable(11_000, 0), true, "empty segment exactly at the right edge (as Linux)");
  assert.equal(r.acceptable(11_001, 0), false);
  assert.equal(r.acceptable(500, 501), true, "last byte inside");
  assert.equal(r.acceptable(500, 500), false, "entirely old");
  assert.equal(r.acceptable(10_999, 100), true, "first byte inside");
  assert.equal(r.acceptable(11_000, 1), false, "beyond the window");
});

Deno.test("tcp receiver: PAWS rejects old timestamps except on RSTs; TS.Recent follows Last.ACK.sent", () => {
  const { r } = receiver();
  r.timestamps = true;
  r.start(0);
  r.tsRecent = 500;
  const opts = new TcpOptions();
  opts.hasTimestamps = true;
  opts.tsVal = 400;
  assert.equal(r.pawsRejects(opts, false), true);
  assert.equal(r.pawsRejects(opts, true), false, "RSTs are exempt");
  opts.tsVal = 600;
  assert.equal(r.pawsRejects(opts, false), false);
  r.noteTimestamp(5, opts);
  assert.equal(r.tsRecent, 500, "a segment beyond Last.ACK.sent does not update TS.Recent");
  r.noteTimestamp(1, opts);
  assert.equal(r.tsRecent, 600);
});

Deno.test("tcp receiver: trimming drops duplicate text and text beyond the window, and asks for an ACK", () => {
  const { r } = receiver({ recvBufferSize: 1000, windowScaling: false });
  r.start(99);
  r.synWindow();
  const t = text(90, 30, true, 40);
  r.trim(t);
  assert.deepEqual([t.seq, t.offset, t.length, t.fin], [100, 50, 20, true]);
  assert.equal(r.ackNow, true);
  r.ackNow = false;
  const old = text(80, 10, true);
  r.trim(old);
  assert.deepEqual([old.seq, old.length, old.fin], [100, 0, false], "a FIN we already have");
  const wide = text(1000, 500, true);
  r.trim(wide);
  assert.deepEqual([wide.seq, wide.length, wide.fin], [1000, 100, false], "cut at the right edge");
  assert.equal(r.ackNow, true);
});

Deno.test("tcp receiver: in-order data is delayed-ACKed, every second full segment ACKed at once", () => {
  const { r, stats } = receiver({ delayedAckMs: 40 });
  r.start(0);
  r.synWindow();
  const mss = r.advertisedMss;
  assert.equal(r.receive(bytes(mss), 1, 0, mss, 100, false), true);
  assert.equal(r.ackNow, false);
  assert.equal(r.delayedAckDeadline, 140);
  assert.equal(r.receive(bytes(mss), 1 + mss, 0, mss, 110, false), true);
  assert.equal(r.ackNow, true, "second full-size segment");
  assert.equal(r.rcvNxt, 1 + 2 * mss);
  assert.equal(stats.bytesIn, 2 * mss);
  r.onAckSent();
  assert.equal(r.ackNow, false);
  assert.equal(r.delayedAckDeadline, Infinity);
});

Deno.test("tcp receiver: out-of-order data is held, SACKed and delivered when the gap fills", () => {
  const { r } = receiver();
  r.sack = true;
  r.start(0);
  r.synWindow();
  assert.equal(r.receive(bytes(100, 100), 101, 0, 100, 0, false), false, "not readable yet");
  assert.equal(r.ackNow, true, "out-of-order data triggers an immediate ACK");
  assert.equal(r.reassembly.rangeCount, 1);
  const buf = new Uint8Array(40);
  const end = r.writeSackBlocks(buf, 0, 4);
  assert.equal(end, 12, "one block: NOP, NOP, kind, length, 8 bytes");
  assert.deepEqual([...buf.subarray(0, 12)], [1, 1, 5, 10, 0, 0, 0, 101, 0, 0, 0, 201]);
  r.ackNow = false;
  assert.equal(r.receive(bytes(100), 1, 0, 100, 0, false), true);
  assert.equal(r.rcvNxt, 201);
  assert.equal(r.ackNow, true, "a filled gap is ACKed at once");
  const out = new Uint8Array(300);
  assert.equal(r.buffer.read(out), 200);
  assert.deepEqual([...out.subarray(0, 200)], [...bytes(200)]);
  assert.equal(r.writeSackBlocks(buf, 0, 4), 0, "no SACK option without held data");
});

Deno.test("tcp receiver: data after close is acknowledged and discarded; a full buffer drops", () => {
  const { r, stats } = receiver({ recvBufferSize: 100, windowScaling: false });
  r.start(0);
  r.synWindow();
  assert.equal(r.receive(bytes(50), 1, 0, 50, 0, true), false, "discarded: not readable");
  assert.equal(r.rcvNxt, 51);
  assert.equal(r.buffer.length, 0);
  assert.equal(r.receive(bytes(150), 51, 0, 150, 0, false), true);
  assert.equal(r.rcvNxt, 152, "only the buffer's room (with its one-unit slack) is taken");
  assert.equal(r.receive(bytes(10), 152, 0, 10, 0, false), false);
  assert.equal(stats.drops["buffer-full"], 1);
});

Deno.test("tcp receiver: a FIN beyond a gap waits for the gap (RFC 9293 §3.10.7.4 eighth)", () => {
  const { r } = receiver();
  r.start(0);
  r.synWindow();
  const late = text(11, 10, true);
  assert.equal(r.receiveText(bytes(10), late, 0, true, false), 0, "held out of order, FIN pending");
  assert.equal(r.finDue(), false);
  const first = text(1, 10);
  assert.equal(r.receiveText(bytes(10), first, 0, true, false), TextResult.READABLE | TextResult.FIN);
  r.consumeFin(0);
  assert.equal(r.rcvNxt, 22);
  assert.equal(r.peerFin, true);
  assert.equal(r.finDue(), false);
});

Deno.test("tcp receiver: text after the peer's FIN is dropped and counted", () => {
  const { r, stats } = receiver();
  r.start(0);
  r.synWindow();
  assert.equal(r.receiveText(bytes(10), text(1, 10), 0, false, false), 0);
  assert.equal(stats.drops["after-close"], 1);
  assert.equal(r.rcvNxt, 1);
});

Deno.test("tcp receiver: the window edge never moves left and moves right only by the SWS threshold", () => {
  const { r } = receiver({ recvBufferSize: 10_000, windowScaling: false });
  r.start(0);
  assert.equal(r.windowField(), 10_000);
  r.receive(bytes(8000), 1, 0, 8000, 0, false);
  assert.equal(r.windowField(), 2000, "the edge stays; the window shrinks by what arrived");
  r.buffer.read(new Uint8Array(1000));
  assert.equal(r.windowUpdateDue(), false, "1000 bytes freed: below the SWS threshold");
  assert.equal(r.windowField(), 2000, "receiver SWS avoidance: the edge does not move");
  r.buffer.read(new Uint8Array(7000));
  assert.equal(r.windowUpdateDue(), true, "the window at least doubles");
  assert.equal(r.windowField(), 10_000);
});

Deno.test("tcp receiver: unacceptable empty segments are answered at most once per interval", () => {
  const { r, stats } = receiver({ invalidAckIntervalMs: 500 });
  r.ackInvalid(1000, 0, false);
  assert.equal(r.ackNow, true);
  r.ackNow = false;
  r.ackInvalid(1200, 0, false);
  assert.equal(r.ackNow, false);
  assert.equal(stats.invalidAcksSuppressed, 1);
  r.ackInvalid(1200, 10, false);
  assert.equal(r.ackNow, true, "a segment with data is always answered");
  r.ackNow = false;
  r.ackInvalid(1600, 0, false);
  assert.equal(r.ackNow, true);
});

Deno.test("tcp receiver: a new incarnation needs a newer timestamp or a higher sequence (RFC 6191)", () => {
  const { r } = receiver();
  r.start(1000);
  const opts = new TcpOptions();
  assert.equal(r.acceptsNewIncarnation(1001, opts), false);
  assert.equal(r.acceptsNewIncarnation(1002, opts), true);
  r.timestamps = true;
  r.tsRecent = 50;
  opts.hasTimestamps = true;
  opts.tsVal = 40;
  assert.equal(r.acceptsNewIncarnation(5000, opts), false, "timestamps decide when both have them");
  opts.tsVal = 60;
  assert.equal(r.acceptsNewIncarnation(0, opts), true);
});

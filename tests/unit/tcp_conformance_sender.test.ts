/**
 * Packet-level conformance tests of sender behaviour (fast retransmit, SACK recovery, Nagle, keepalive)
 * and of the receive window, driven by a scripted peer on a virtual clock.
 */

import assert from "node:assert/strict";
import type { TcpConnection } from "../../lib/tcp/connection.ts";
import type { TcpLayerOptions } from "../../lib/tcp/config.ts";
import { type OptionSpec, TcpRig } from "../helpers/tcp_packet.ts";

interface Established {
  rig: TcpRig;
  conn: TcpConnection;
  peerSeq: number;
  ourSeq: number;
}

function establish(options: TcpLayerOptions, synOptions: OptionSpec, peerWindow = 65535): Established {
  const rig = new TcpRig(options);
  const listener = rig.layer.listen(80);
  rig.inject({ flags: "S", seq: 1000, window: 65535, options: synOptions });
  const synAck = rig.take()[0];
  rig.advance(50);
  const ts: OptionSpec = synOptions.ts ? { ts: [synOptions.ts[0] + 1, synAck.ts![0]] } : {};
  rig.inject({ flags: ".", seq: 1001, ack: synAck.seq + 1, window: peerWindow, options: ts });
  rig.take();
  const conn = listener.accept()!;
  return { rig, conn, peerSeq: 1001, ourSeq: (synAck.seq + 1) >>> 0 };
}

Deno.test("tcp sender: three duplicate ACKs trigger fast retransmit; partial ACK retransmits the next hole (RFC 6582)", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({
    congestionControl: "newreno",
    sack: false,
    timestamps: false,
  }, {
    mss: 1000,
  });
  conn.send(new Uint8Array(10_000));
  rig.poll();
  assert.equal(rig.take().length, 10, "initial window of 10 segments");
  const ack = (n: number) => rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + n, window: 65535 });
  ack(1000);
  rig.expectNone("new ACK, nothing more to send");
  ack(1000);
  ack(1000);
  rig.expectNone("two duplicate ACKs");
  ack(1000);
  rig.expectOne({ flags: ".", seq: ourSeq + 1000, len: 1000 }, "fast retransmit on the third");
  assert.equal(rig.layer.stats().fastRecoveries, 1);
  assert.equal(conn.congestion.ssthresh, 4500, "ssthresh = FlightSize / 2");
  ack(5000);
  rig.expectOne(
    { seq: ourSeq + 5000, len: 1000 },
    "partial ACK: retransmit the first unacknowledged segment",
  );
  ack(10_000);
  rig.expectNone();
  assert.equal(conn.stats().recovery, "none");
  assert.equal(conn.cwnd, 4500);
});

Deno.test("tcp sender: SACK blocks mark holes lost (RFC 6675 IsLost) and only the holes are retransmitted", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const mss = conn.sendMss;
  assert.equal(mss, 1448);
  conn.send(new Uint8Array(10 * mss));
  rig.poll();
  assert.equal(rig.take().length, 10);
  const sackAck = (blocks: [number, number][]) =>
    rig.inject({
      flags: ".",
      seq: peerSeq,
      ack: ourSeq,
      window: 65535,
      options: { ts: [200, 0], sack: blocks.map(([l, r]) => [ourSeq + l * mss, ourSeq + r * mss]) },
    });
  sackAck([[1, 3]]);
  rig.expectNone("two segments SACKed above the hole: not yet lost");
  sackAck([[1, 4]]);
  rig.expectOne({ seq: ourSeq, len: mss }, "three SACKed segments above: the hole is lost");
  sackAck([[5, 10], [1, 4]]);
  rig.expectOne({ seq: ourSeq + 4 * mss, len: mss }, "second hole retransmitted; SACKed data is not");
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + 10 * mss, window: 65535, options: { ts: [201, 0] } });
  rig.expectNone();
  assert.equal(rig.layer.stats().retransmissions, 2);
});

Deno.test("tcp sender: a lost retransmission is detected from later SACKs and resent before the RTO", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const mss = conn.sendMss;
  conn.send(new Uint8Array(40 * mss));
  rig.poll();
  assert.equal(rig.take().length, 10);
  const sackAck = (ack: number, blocks: [number, number][]) =>
    rig.inject({
      flags: ".",
      seq: peerSeq,
      ack: ourSeq + ack * mss,
      window: 65535,
      options: { ts: [200, 0], sack: blocks.map(([l, r]) => [ourSeq + l * mss, ourSeq + r * mss]) },
    });
  sackAck(0, [[1, 4]]);
  const first = rig.take();
  assert.equal(first[0].seq, ourSeq, "hole retransmitted");
  // New data flows during recovery as segments are SACKed; the retransmission of segment 0 is lost.
  const before = rig.layer.stats().retransmissions;
  for (let k = 5; k <= 16; k++) sackAck(0, [[1, k]]);
  const later = rig.take();
  const again = later.filter((s) => s.seq === ourSeq);
  assert.equal(again.length, 1, "segment 0 resent once more, without an RTO");
  assert.equal(rig.layer.stats().rtoExpirations, 0);
  assert.equal(rig.layer.stats().lostRetransmissions, 1);
  assert.ok(rig.layer.stats().retransmissions > before);
});

Deno.test("tcp sender: Nagle holds a second small segment until the first is acknowledged; noDelay does not", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460 });
  conn.send(new Uint8Array(10));
  rig.poll();
  rig.expectOne({ seq: ourSeq, len: 10 });
  conn.send(new Uint8Array(10));
  rig.poll();
  rig.expectNone("held by Nagle");
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + 10, window: 65535 });
  rig.expectOne({ seq: ourSeq + 10, len: 10 }, "released by the ACK");
  conn.noDelay = true;
  conn.send(new Uint8Array(10));
  rig.poll();
  rig.expectOne({ seq: ourSeq + 20, len: 10 }, "noDelay: sent at once");
});

Deno.test("tcp sender: keepalive probes after idle, abort after keepaliveCount unanswered", () => {
  const { rig, conn, peerSeq, ourSeq } = establish(
    { keepalive: true, keepaliveIdleMs: 1000, keepaliveIntervalMs: 500, keepaliveCount: 2 },
    { mss: 1460 },
  );
  const t0 = rig.now;
  rig.advance(1000);
  rig.expectOne({ flags: ".", seq: ourSeq - 1, len: 0, time: t0 + 1000 }, "first keepalive");
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq, window: 65535 });
  rig.advance(999);
  rig.expectNone("an answer restarts the idle timer");
  rig.advance(1);
  rig.expectOne({ seq: ourSeq - 1, time: t0 + 2000 });
  rig.advance(500);
  rig.expectOne({ seq: ourSeq - 1, time: t0 + 2500 });
  assert.equal(conn.state, "ESTABLISHED");
  rig.advance(500);
  rig.expectNone();
  assert.equal(conn.state, "CLOSED");
  assert.equal(conn.error, "timeout");
});

Deno.test("tcp sender: an application-closed connection leaves FIN-WAIT-2 after finWait2TimeoutMs", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({ finWait2TimeoutMs: 3000 }, { mss: 1460 });
  conn.close();
  rig.poll();
  rig.expectOne({ flags: "F.", seq: ourSeq });
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + 1, window: 65535 });
  assert.equal(conn.state, "FIN_WAIT_2");
  rig.advance(2999);
  assert.equal(conn.state, "FIN_WAIT_2");
  rig.advance(1);
  assert.equal(conn.state, "CLOSED");
  assert.equal(rig.layer.connectionCount, 0);
});

Deno.test("tcp receiver: a FIN arriving before the data it follows is processed once the gap fills", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true });
  rig.inject({ flags: "F.", seq: peerSeq + 100, ack: ourSeq, payload: 100 });
  rig.expectOne({ ack: peerSeq, sack: [[peerSeq + 100, peerSeq + 200]] });
  assert.equal(conn.state, "ESTABLISHED");
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq, payload: 100 });
  rig.expectOne({ ack: peerSeq + 201, sack: [] }, "data and FIN acknowledged together");
  assert.equal(conn.state, "CLOSE_WAIT");
  const buf = new Uint8Array(500);
  assert.equal(conn.recv(buf), 200);
  assert.equal(conn.recv(buf), null);
});

Deno.test("tcp receiver: ACK of unsent data is answered with an ACK and dropped", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460 });
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq + 5000, payload: 10 });
  rig.expectOne({ flags: ".", seq: ourSeq, ack: peerSeq });
  assert.equal(conn.readableBytes, 0);
  assert.equal(rig.layer.stats().drops["bad-ack"], 1);
});

Deno.test("tcp receiver: close() with unread data sends RST (RFC 2525 §2.17)", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460 });
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq, payload: 10 });
  rig.take();
  conn.close();
  rig.poll();
  rig.expectOne({ flags: "R", seq: ourSeq });
  assert.equal(conn.state, "CLOSED");
  assert.equal(rig.layer.connectionCount, 0);
});

Deno.test("tcp receiver: the window closes when the buffer fills, probes get window 0, reading reopens it", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({ recvBufferSize: 4000, windowScaling: false }, {
    mss: 1460,
  });
  let seq = peerSeq;
  for (let i = 0; i < 3; i++) {
    rig.inject({ flags: ".", seq, ack: ourSeq, payload: 1000 });
    seq += 1000;
  }
  rig.inject({ flags: "P.", seq, ack: ourSeq, payload: 1000 });
  seq += 1000;
  const last = rig.take().at(-1)!;
  assert.equal(last.ack, seq);
  assert.equal(last.window, 0, "buffer full");
  // A one-byte probe beyond the window is not accepted but answered.
  rig.inject({ flags: ".", seq, ack: ourSeq, payload: 1 });
  rig.expectOne({ ack: seq, window: 0 });
  assert.equal(conn.readableBytes, 4000);
  assert.equal(conn.recv(new Uint8Array(4000)), 4000);
  rig.poll();
  rig.expectOne({ ack: seq, window: 4000 }, "window update after the read");
});

Deno.test("tcp sender: with an offloading sink, data leaves as one TSO super-segment with gsoSize = MSS", () => {
  const rig = new TcpRig({}, true);
  const listener = rig.layer.listen(80);
  rig.inject({
    flags: "S",
    seq: 1000,
    window: 65535,
    options: { mss: 1460, ts: [1, 0], wscale: 7, sackOk: true },
  });
  const synAck = rig.take()[0];
  rig.inject({
    flags: ".",
    seq: 1001,
    ack: synAck.seq + 1,
    window: 8000,
    options: { ts: [2, synAck.ts![0]] },
  });
  const conn = listener.accept()!;
  assert.equal(conn.sendMss, 1448);
  conn.send(new Uint8Array(100_000));
  rig.poll();
  assert.deepEqual(rig.superSegments, [[14480, 1448]], "the initial window in one super-segment");
  const wire = rig.take();
  assert.equal(wire.length, 10);
  for (const s of wire) assert.equal(s.payload.length, 1448); // parseSegment verified each checksum
  assert.equal(wire[9].flags, ".", "PSH only when the queue empties");
});

Deno.test("tcp sender: after idling longer than the RTO, sending restarts from the initial window (RFC 5681 §4.1)", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({ congestionControl: "newreno" }, { mss: 1000 });
  // Grow cwnd well beyond 10 segments: acknowledge everything as it goes out.
  let acked = 0;
  // The send buffer is autotuned (at least 64 KiB, twice what is in flight): it takes what fits.
  const queued = conn.send(new Uint8Array(200_000));
  assert.ok(queued >= 64 * 1024);
  for (let round = 0; round < 20; round++) {
    rig.poll();
    const sent = rig.take();
    if (sent.length === 0) break;
    const last = sent.at(-1)!;
    acked = (last.seq - ourSeq + last.payload.length) >>> 0;
    rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + acked, window: 65535 });
  }
  rig.poll();
  rig.take();
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + queued, window: 65535 });
  assert.ok(conn.cwnd > 20 * 1000, `cwnd ${conn.cwnd}`);
  rig.advance(conn.rtt.rto + 1000);
  conn.send(new Uint8Array(100_000));
  rig.poll();
  assert.equal(rig.take().length, 10, "initial window after idle");
  assert.equal(conn.cwnd, 10 * 1000);
});

Deno.test("tcp receiver: SWS avoidance — the window reopens only by min(buffer/2, MSS) or more (RFC 9293 §3.8.6.2.2)", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({ recvBufferSize: 10_000, windowScaling: false }, {
    mss: 1460,
  });
  let seq = peerSeq;
  for (let i = 0; i < 10; i++) {
    rig.inject({ flags: ".", seq, ack: ourSeq, payload: 1000 });
    seq += 1000;
  }
  assert.equal(rig.take().at(-1)!.window, 0);
  conn.recv(new Uint8Array(500));
  rig.poll();
  rig.expectNone("500 bytes free: below the threshold, no update");
  rig.inject({ flags: ".", seq: seq - 1, ack: ourSeq }); // a probe
  rig.expectOne({ ack: seq, window: 0 }, "the probe's answer still offers no window");
  conn.recv(new Uint8Array(1000));
  rig.poll();
  rig.expectOne({ ack: seq, window: 1500 }, "1500 ≥ MSS: the window update goes out");
});

Deno.test("tcp sender: a tail loss probe after 2·SRTT retransmits the last segment; its SACK triggers early retransmit", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const mss = conn.sendMss;
  assert.equal(conn.rtt.srtt, 50);
  conn.send(new Uint8Array(10 * mss));
  rig.poll();
  assert.equal(rig.take().length, 10);
  // The first eight arrive; the last two are lost.
  rig.advance(50);
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + 8 * mss, window: 65535, options: { ts: [200, 0] } });
  rig.expectNone();
  const acked = rig.now;
  const srtt = conn.rtt.srtt;
  rig.advance(2 * srtt + 1);
  const probe = rig.expectOne({ seq: ourSeq + 9 * mss, len: mss }, "probe: the last segment again");
  assert.equal(probe.time, acked + 2 * srtt);
  assert.equal(rig.layer.stats().tailLossProbes, 1);
  // The probe arrives: its SACK with two segments outstanding lowers the duplicate threshold to one.
  rig.inject({
    flags: ".",
    seq: peerSeq,
    ack: ourSeq + 8 * mss,
    window: 65535,
    options: { ts: [201, 0], sack: [[ourSeq + 9 * mss, ourSeq + 10 * mss]] },
  });
  rig.expectOne({ seq: ourSeq + 8 * mss, len: mss }, "early retransmit of the hole (RFC 5827)");
  assert.equal(rig.layer.stats().rtoExpirations, 0);
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq + 10 * mss, window: 65535, options: { ts: [202, 0] } });
  rig.advance(5000);
  rig.expectNone("all acknowledged: no probe, no RTO");
});

Deno.test("tcp sender: an ACK echoing a timestamp older than the retransmission undoes the reduction (RFC 3522)", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const mss = conn.sendMss;
  conn.send(new Uint8Array(10 * mss));
  rig.poll();
  const originals = rig.take();
  const cwndBefore = conn.cwnd;
  rig.advance(5);
  // Reordering: segment 0 is late; the peer SACKs 1..3 → fast retransmit of segment 0.
  rig.inject({
    flags: ".",
    seq: peerSeq,
    ack: ourSeq,
    window: 65535,
    options: { ts: [200, originals[1].ts![0]], sack: [[ourSeq + mss, ourSeq + 4 * mss]] },
  });
  const rtx = rig.expectOne({ seq: ourSeq, len: mss });
  assert.ok(rtx.ts![0] > originals[0].ts![0], "the retransmission carries a newer TSval");
  assert.ok(conn.cwnd < cwndBefore, "reduced on entering recovery");
  // The original segment 0 arrives after all and fills the hole: the ACK echoes its (older) TSval.
  rig.inject({
    flags: ".",
    seq: peerSeq,
    ack: ourSeq + 10 * mss,
    window: 65535,
    options: { ts: [201, originals[0].ts![0]] },
  });
  assert.equal(rig.layer.stats().spuriousRecoveries, 1);
  assert.ok(conn.cwnd >= cwndBefore, `cwnd restored: ${conn.cwnd} vs ${cwndBefore}`);
  assert.equal(conn.stats().recovery, "none");
});

Deno.test("tcp sender: an ACK echoing the retransmission's timestamp keeps the reduction", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const mss = conn.sendMss;
  conn.send(new Uint8Array(10 * mss));
  rig.poll();
  const originals = rig.take();
  const cwndBefore = conn.cwnd;
  rig.advance(5);
  rig.inject({
    flags: ".",
    seq: peerSeq,
    ack: ourSeq,
    window: 65535,
    options: { ts: [200, originals[1].ts![0]], sack: [[ourSeq + mss, ourSeq + 4 * mss]] },
  });
  const rtx = rig.take()[0];
  rig.inject({
    flags: ".",
    seq: peerSeq,
    ack: ourSeq + 10 * mss,
    window: 65535,
    options: { ts: [201, rtx.ts![0]] },
  });
  assert.equal(rig.layer.stats().spuriousRecoveries, 0);
  assert.ok(conn.cwnd < cwndBefore);
});

Deno.test("tcp sender: when a whole flight is lost, the SACKed tail loss probe starts fast recovery (no RTO)", () => {
  const { rig, conn, peerSeq, ourSeq } = establish({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const mss = conn.sendMss;
  conn.send(new Uint8Array(30 * mss));
  rig.poll();
  assert.equal(rig.take().length, 10, "the initial window, all of it lost");
  rig.advance(2 * conn.rtt.srtt);
  const probe = rig.expectOne({ seq: ourSeq + 10 * mss, len: mss }, "probe with new data");
  rig.inject({
    flags: ".",
    seq: peerSeq,
    ack: ourSeq,
    window: 65535,
    options: { ts: [200, probe.ts![0]], sack: [[ourSeq + 10 * mss, ourSeq + 11 * mss]] },
  });
  const repair = rig.take();
  assert.ok(repair.length >= 1, "retransmissions start at once");
  assert.equal(repair[0].seq, ourSeq, "from the first lost segment");
  assert.equal(conn.stats().recovery, "fast");
  assert.equal(rig.layer.stats().rtoExpirations, 0);
});

/**
 * Packet-level conformance tests in the style of packetdrill: a scripted peer injects exact segments into
 * one TcpLayer and asserts the exact replies and their timing on a virtual clock.
 */

import assert from "node:assert/strict";
import { TcpConnection } from "../../lib/tcp/connection.ts";
import { IsnGenerator } from "../../lib/tcp/isn.ts";
import type { TcpLayerOptions } from "../../lib/tcp/config.ts";
import { IPV4_HEADER_LENGTH } from "../../lib/wire/ipv4.ts";
import { buildSegment, type OptionSpec, RIG_LOCAL, RIG_REMOTE, TcpRig } from "../helpers/tcp_packet.ts";

const PEER_ISN = 1000;

interface Established {
  rig: TcpRig;
  conn: TcpConnection;
  /** Our ISS. */
  iss: number;
  /** Next sequence number the peer will send. */
  peerSeq: number;
  /** Our next sequence (what the peer acks). */
  ourSeq: number;
}

/**
 * Passive open: the peer sends SYN (with `synOptions`), we answer SYN,ACK, the peer ACKs after `rttMs`.
 */
function establishPassive(
  options: TcpLayerOptions = {},
  synOptions: OptionSpec = { mss: 1460, sackOk: true, ts: [100, 0], wscale: 7 },
  peerWindow = 1000,
  rttMs = 50,
  peerIsn = PEER_ISN,
): Established {
  const rig = new TcpRig(options);
  const listener = rig.layer.listen(80);
  rig.inject({ flags: "S", seq: peerIsn, window: 65535, options: synOptions });
  const synAck = rig.expectOne(
    { flags: "S.", ack: (peerIsn + 1) >>> 0, srcPort: 80, dstPort: 40000 },
    "SYN,ACK",
  );
  rig.advance(rttMs);
  const ackOptions: OptionSpec = synOptions.ts ? { ts: [synOptions.ts[0] + 1, synAck.ts![0]] } : {};
  rig.inject({ flags: ".", seq: peerIsn + 1, ack: synAck.seq + 1, window: peerWindow, options: ackOptions });
  rig.expectNone("after handshake ACK");
  const conn = listener.accept();
  assert.ok(conn !== null);
  assert.equal(conn.state, "ESTABLISHED");
  return { rig, conn, iss: synAck.seq, peerSeq: (peerIsn + 1) >>> 0, ourSeq: (synAck.seq + 1) >>> 0 };
}

Deno.test("tcp conformance: SYN to a closed port gets <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>", () => {
  const rig = new TcpRig();
  rig.inject({ flags: "S", seq: 5000, dstPort: 81 });
  rig.expectOne({ flags: "R.", seq: 0, ack: 5001, window: 0, srcPort: 81, dstPort: 40000, len: 0 });
  // Data + FIN without ACK: ACK = SEG.SEQ + SEG.LEN (FIN counts).
  rig.inject({ flags: "FP", seq: 7000, dstPort: 81, payload: 10 });
  rig.expectOne({ flags: "R.", seq: 0, ack: 7011 });
  assert.equal(rig.layer.stats().drops["no-socket"], 2);
});

Deno.test("tcp conformance: ACK to a closed port gets <SEQ=SEG.ACK><CTL=RST>; RST gets nothing", () => {
  const rig = new TcpRig();
  rig.inject({ flags: "P.", seq: 5000, ack: 123456, dstPort: 81, payload: 5 });
  rig.expectOne({ flags: "R", seq: 123456, ack: 0 });
  rig.inject({ flags: "R", seq: 5000, dstPort: 81 });
  rig.inject({ flags: "R.", seq: 5000, ack: 1, dstPort: 81 });
  rig.expectNone("RST to a closed port");
});

Deno.test("tcp conformance: bad checksum, bad data offset and truncated segments are dropped and counted", () => {
  const rig = new TcpRig();
  rig.layer.listen(80);
  const syn = buildSegment({
    src: RIG_REMOTE,
    dst: RIG_LOCAL,
    srcPort: 40000,
    dstPort: 80,
    flags: "S",
    seq: 1,
    options: { mss: 1460 },
  });
  const corrupt = syn.slice();
  corrupt[corrupt.length - 1] ^= 0x55; // inside the MSS option
  rig.injectRaw(corrupt);
  rig.expectNone("bad checksum");
  assert.equal(rig.layer.stats().drops["bad-checksum"], 1);
  const badOffset = syn.slice();
  badOffset[IPV4_HEADER_LENGTH + 12] = 0xf0; // 60-byte header in a 24-byte segment
  rig.injectRaw(badOffset);
  assert.equal(rig.layer.stats().drops["bad-offset"], 1);
  const truncated = syn.slice(0, IPV4_HEADER_LENGTH + 12);
  truncated[3] = truncated.length; // consistent IP total length, short TCP header
  rig.injectRaw(truncated);
  assert.equal(rig.layer.stats().drops.truncated, 1);
  rig.expectNone("no replies to malformed segments");
  assert.equal(rig.layer.connectionCount, 0);
  // The intact SYN is answered.
  rig.injectRaw(syn);
  rig.expectOne({ flags: "S." });
});

Deno.test("tcp conformance: passive open advertises MSS from the MTU, SACK, timestamps and window scale", () => {
  const rig = new TcpRig({ mtu: 1500, recvBufferSize: 1 << 20 });
  rig.layer.listen(80);
  rig.inject({
    flags: "S",
    seq: 1000,
    window: 29200,
    options: { mss: 1400, sackOk: true, ts: [555, 0], wscale: 7 },
  });
  const synAck = rig.expectOne({ flags: "S.", ack: 1001, mss: 1460, sackOk: true, wscale: 5, window: 65535 });
  assert.equal(synAck.ts![1], 555, "TSecr echoes the SYN's TSval");
  // Without options from the peer we offer none of them back (RFC 7323 §2.2, RFC 2018 §2).
  const rig2 = new TcpRig();
  rig2.layer.listen(80);
  rig2.inject({ flags: "S", seq: 1000, window: 8192 });
  rig2.expectOne({ flags: "S.", ack: 1001, mss: 1460, sackOk: false, wscale: -1, ts: null });
});

Deno.test("tcp conformance: the handshake completes and data is acknowledged with delayed ACKs", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({}, { mss: 1460 }, 65535);
  // One small segment: ACK delayed by 40 ms.
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq, payload: 100, window: 65535 });
  rig.expectNone("first segment: ack is delayed");
  rig.advance(39);
  rig.expectNone("still delayed at 39 ms");
  rig.advance(1);
  rig.expectOne({ flags: ".", seq: ourSeq, ack: peerSeq + 100, time: rig.now }, "delayed ACK at 40 ms");
  // Two full-size segments: ACK at once on the second.
  rig.inject({ flags: ".", seq: peerSeq + 100, ack: ourSeq, payload: 1460, window: 65535 });
  rig.expectNone("first full segment");
  rig.inject({ flags: ".", seq: peerSeq + 1560, ack: ourSeq, payload: 1460, window: 65535 });
  rig.expectOne({ flags: ".", ack: peerSeq + 3020 }, "every second full segment");
  const buf = new Uint8Array(10000);
  assert.equal(conn.recv(buf), 3020);
});

Deno.test("tcp conformance: in-window RST off RCV.NXT gets a challenge ACK; exact RST resets (RFC 5961 §3.2)", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive();
  rig.inject({ flags: "R", seq: peerSeq + 100 });
  rig.expectOne({ flags: ".", seq: ourSeq, ack: peerSeq, len: 0 }, "challenge ACK");
  assert.equal(conn.state, "ESTABLISHED");
  assert.equal(rig.layer.stats().challengeAcks, 1);
  // Out of window: silently dropped.
  rig.inject({ flags: "R", seq: peerSeq + 5_000_000 });
  rig.expectNone("RST outside the window");
  assert.equal(rig.layer.stats().drops["rst-out-of-window"], 1);
  let events = 0;
  conn.onEvent = (_c, e) => (events |= e);
  rig.inject({ flags: "R", seq: peerSeq });
  rig.expectNone("no reply to an accepted RST");
  assert.equal(conn.state, "CLOSED");
  assert.equal(conn.error, "reset");
  assert.ok(events & 16, "CLOSED event fired");
  assert.equal(rig.layer.connectionCount, 0);
});

Deno.test("tcp conformance: SYN on an established connection gets a challenge ACK (RFC 5961 §4.2)", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({}, { mss: 1460 });
  rig.inject({ flags: "S", seq: peerSeq + 10 });
  rig.expectOne({ flags: ".", seq: ourSeq, ack: peerSeq }, "challenge ACK");
  assert.equal(conn.state, "ESTABLISHED");
});

Deno.test("tcp conformance: RTO doubles on each expiry and the connection times out after maxRetries", () => {
  const { rig, conn, ourSeq } = establishPassive({ maxRetries: 3 }, { mss: 1460 }, 65535, 50);
  // RTT sample 50 ms → RTO = max(200 ms min, 50 + 4·25) = 200 ms.
  assert.equal(conn.rtt.rto, 200);
  conn.send(new Uint8Array(100));
  rig.poll();
  const t0 = rig.now;
  rig.expectOne({ flags: "P.", seq: ourSeq, len: 100, time: t0 }, "original");
  const times: number[] = [];
  rig.advance(10_000);
  for (const s of rig.take()) {
    assert.equal(s.seq, ourSeq);
    assert.equal(s.payload.length, 100);
    times.push(s.time - t0);
  }
  assert.deepEqual(times, [200, 600, 1400], "retransmissions at 200, +400, +800 ms");
  assert.equal(conn.state, "CLOSED");
  assert.equal(conn.error, "timeout");
  assert.equal(rig.now - t0 >= 3000, true);
  assert.equal(rig.layer.stats().timeouts, 1);
});

Deno.test("tcp conformance: zero window → persist probes with backoff, data flows when the window opens", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({}, { mss: 1460 }, 0, 50);
  conn.send(new Uint8Array(3000).fill(9));
  rig.poll();
  rig.expectNone("window closed: no data");
  rig.advance(1000);
  const probes = rig.take();
  assert.ok(probes.length >= 2, `probes: ${probes.length}`);
  for (const p of probes) {
    assert.equal(p.flags, ".");
    assert.equal(p.seq, (ourSeq - 1) >>> 0, "probe uses SND.UNA − 1");
    assert.equal(p.payload.length, 0);
  }
  const gaps = probes.slice(1).map((p, i) => p.time - probes[i].time);
  for (let i = 1; i < gaps.length; i++) assert.equal(gaps[i], 2 * gaps[i - 1], `backoff ${gaps}`);
  assert.equal(conn.state, "ESTABLISHED");
  // The peer answers a probe with the window still closed, then opens it.
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq, window: 0 });
  rig.expectNone();
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq, window: 4000 });
  const data = rig.take();
  assert.deepEqual(data.map((s) => s.payload.length), [1460, 1460, 80]);
  assert.equal(data[0].seq, ourSeq);
});

Deno.test("tcp conformance: window scaling arithmetic on both sides (RFC 7323 §2)", () => {
  // We scale by 5 (1 MiB buffer); the peer by 7 with a window field of 100 → 12 800 bytes.
  const { rig, conn, peerSeq, ourSeq } = establishPassive(
    { recvBufferSize: 1 << 20 },
    { mss: 1460, wscale: 7 },
    100,
  );
  assert.equal(conn.sndScale, 7);
  assert.equal(conn.rcvScale, 5);
  assert.equal(conn.sndWnd, 12800);
  conn.send(new Uint8Array(20000));
  rig.poll();
  const sent = rig.take();
  const total = sent.reduce((n, s) => n + s.payload.length, 0);
  // 8 full segments fit in 12 800; the 1 120-byte rest waits (sender SWS avoidance: < MSS and < half
  // the largest window seen).
  assert.equal(total, 8 * 1460);
  // Our window field: 1 MiB free → 2^20 >> 5 = 32768 in the handshake ACK's successors.
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq + total, window: 100, payload: 1000 });
  rig.advance(40);
  const ack = rig.take().at(-1)!;
  // 1000 bytes arrived unread: the right edge must not move left (RFC 9293 §3.8.6.2.2), so the field
  // rounds the remaining (2^20 − 1000) bytes up to whole 2^5 units.
  assert.equal(ack.window, Math.ceil(((1 << 20) - 1000) / 32));
  assert.equal(conn.readableBytes, 1000);
  // After the application reads, the window opens again by a useful amount and is announced at once.
  conn.recv(new Uint8Array(1000));
  rig.poll();
  rig.expectNone("1000 bytes is less than the SWS threshold: no window update");
});

Deno.test("tcp conformance: SACK blocks describe the holes, most recent first (RFC 2018 §4)", () => {
  const { rig, peerSeq, ourSeq } = establishPassive({}, { mss: 1460, sackOk: true, ts: [100, 0] });
  const ts = { ts: [200, 0] as [number, number] };
  rig.inject({ flags: ".", seq: peerSeq + 1000, ack: ourSeq, payload: 500, options: ts });
  rig.expectOne({ flags: ".", ack: peerSeq, sack: [[peerSeq + 1000, peerSeq + 1500]] }, "first hole");
  rig.inject({ flags: ".", seq: peerSeq + 2000, ack: ourSeq, payload: 500, options: ts });
  rig.expectOne({ ack: peerSeq, sack: [[peerSeq + 2000, peerSeq + 2500], [peerSeq + 1000, peerSeq + 1500]] });
  rig.inject({ flags: ".", seq: peerSeq + 3000, ack: ourSeq, payload: 500, options: ts });
  rig.inject({ flags: ".", seq: peerSeq + 4000, ack: ourSeq, payload: 500, options: ts });
  // With timestamps only three blocks fit (RFC 2018 §3).
  const four = rig.take().at(-1)!;
  assert.deepEqual(four.sack, [
    [peerSeq + 4000, peerSeq + 4500],
    [peerSeq + 3000, peerSeq + 3500],
    [peerSeq + 2000, peerSeq + 2500],
  ]);
  // Filling the first hole acknowledges up to the next one at once.
  rig.inject({ flags: ".", seq: peerSeq, ack: ourSeq, payload: 1000, options: ts });
  const filled = rig.take().at(-1)!;
  assert.equal(filled.ack, peerSeq + 1500);
  assert.deepEqual(filled.sack[0], [peerSeq + 4000, peerSeq + 4500]);
  assert.equal(filled.sack.length, 3);
});

Deno.test("tcp conformance: PAWS drops a segment with an old timestamp and ACKs (RFC 7323 §5.3)", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({}, { mss: 1460, ts: [1000, 0] });
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq, payload: 10, options: { ts: [999, 0] } });
  rig.expectOne({ flags: ".", ack: peerSeq }, "ACK for the PAWS-rejected segment");
  assert.equal(rig.layer.stats().drops.paws, 1);
  assert.equal(conn.readableBytes, 0);
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq, payload: 10, options: { ts: [1002, 0] } });
  assert.equal(conn.readableBytes, 10);
});

Deno.test("tcp conformance: sequence numbers wrap around 2^32 on the receive side", () => {
  const isn = 0xffffff00;
  const { rig, conn, peerSeq, ourSeq } = establishPassive({}, { mss: 1460 }, 65535, 50, isn);
  const payload = Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff);
  rig.inject({ flags: ".", seq: peerSeq + 600, ack: ourSeq, payload: payload.subarray(600) });
  rig.expectOne({ ack: peerSeq }, "dup ACK for data past the wrap");
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq, payload: payload.subarray(0, 600) });
  rig.expectOne({ ack: (peerSeq + 1000) >>> 0 }, "cumulative ACK across the wrap");
  assert.equal((peerSeq + 1000) >>> 0 < peerSeq, true, "the ACK wrapped");
  const got = new Uint8Array(2000);
  assert.equal(conn.recv(got), 1000);
  assert.deepEqual(got.subarray(0, 1000), payload);
});

Deno.test("tcp conformance: SYN on TIME-WAIT reopens only with a higher sequence number (RFC 6191)", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({ timeWaitMs: 60_000 }, { mss: 1460 });
  conn.close();
  rig.poll();
  rig.expectOne({ flags: "F.", seq: ourSeq, ack: peerSeq }, "our FIN");
  rig.inject({ flags: "F.", seq: peerSeq, ack: ourSeq + 1 });
  rig.expectOne({ flags: ".", seq: ourSeq + 1, ack: peerSeq + 1 }, "ACK of the peer's FIN");
  assert.equal(conn.state, "TIME_WAIT");
  // An old SYN (below RCV.NXT) gets an ACK for the current incarnation.
  rig.inject({ flags: "S", seq: peerSeq - 10 });
  rig.expectOne({ flags: ".", seq: ourSeq + 1, ack: peerSeq + 1 });
  assert.equal(conn.state, "TIME_WAIT");
  // A SYN above RCV.NXT starts a new connection with an ISS above the old sequence space.
  rig.inject({ flags: "S", seq: peerSeq + 100000, options: { mss: 1460 } });
  const synAck = rig.expectOne({ flags: "S.", ack: peerSeq + 100001 });
  assert.equal(synAck.seq, (ourSeq + 1 + 65537) >>> 0);
  assert.equal(rig.layer.connectionCount, 1);
});

Deno.test("tcp conformance: TIME-WAIT lasts timeWaitMs, then the connection is gone", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({ timeWaitMs: 2000 }, { mss: 1460 });
  conn.close();
  rig.poll();
  rig.take();
  rig.inject({ flags: "F.", seq: peerSeq, ack: ourSeq + 1 });
  rig.take();
  assert.equal(conn.state, "TIME_WAIT");
  assert.equal(conn.nextDeadline(), rig.now + 2000);
  assert.ok(rig.deadline !== null && rig.deadline <= rig.now + 2000, "the layer never reports a later one");
  rig.advance(1999);
  assert.equal(conn.state, "TIME_WAIT");
  rig.advance(1);
  assert.equal(conn.state, "CLOSED");
  assert.equal(rig.layer.connectionCount, 0);
  // Now the port's listener answers a stray ACK with RST.
  rig.inject({ flags: ".", seq: peerSeq + 1, ack: ourSeq + 1 });
  rig.expectOne({ flags: "R", seq: ourSeq + 1 });
});

Deno.test("tcp conformance: active open, SYN retransmission with backoff, RST,ACK means refused", () => {
  const rig = new TcpRig({ rtoInitialMs: 1000 });
  const conn = rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now, 40001);
  rig.poll();
  const syn = rig.expectOne({ flags: "S", srcPort: 40001, dstPort: 80, mss: 1460, sackOk: true, wscale: 5 });
  assert.ok(syn.ts !== null && syn.ts[1] === 0);
  rig.advance(1000);
  rig.expectOne({ flags: "S", seq: syn.seq, time: 1000 }, "first SYN retransmission at 1 s");
  rig.advance(2000);
  rig.expectOne({ flags: "S", seq: syn.seq, time: 3000 }, "second at +2 s");
  // A RST with a wrong ACK is ignored; with the right one the connection is refused.
  rig.inject({ flags: "R.", seq: 0, ack: syn.seq + 5, srcPort: 80, dstPort: 40001 });
  assert.equal(conn.state, "SYN_SENT");
  rig.take();
  rig.inject({ flags: "R.", seq: 0, ack: syn.seq + 1, srcPort: 80, dstPort: 40001 });
  assert.equal(conn.state, "CLOSED");
  assert.equal(conn.error, "refused");
});

Deno.test("tcp conformance: active open against a scripted server, then peer FIN → CLOSE_WAIT → LAST_ACK", () => {
  const rig = new TcpRig();
  const conn = rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now, 40001);
  rig.poll();
  const syn = rig.take()[0];
  const p = { srcPort: 80, dstPort: 40001 };
  rig.advance(20);
  rig.inject({ ...p, flags: "S.", seq: 7000, ack: syn.seq + 1, window: 5000, options: { mss: 1000 } });
  rig.expectOne({ flags: ".", seq: syn.seq + 1, ack: 7001, ts: null, sack: [] }, "handshake ACK");
  assert.equal(conn.state, "ESTABLISHED");
  assert.equal(conn.sendMss, 1000);
  assert.equal(conn.rtt.srtt, 20);
  conn.send(new Uint8Array(2500));
  rig.poll();
  assert.deepEqual(rig.take().map((s) => s.payload.length), [1000, 1000, 500]);
  rig.inject({ ...p, flags: "F.", seq: 7001, ack: syn.seq + 2501, window: 5000 });
  rig.poll();
  // RFC 1122 §4.2.3.2: the FIN's ACK waits for the application's answer, which carries it.
  assert.deepEqual(rig.take(), [], "no pure ACK of the FIN");
  assert.equal(conn.state, "CLOSE_WAIT");
  assert.equal(conn.recv(new Uint8Array(10)), null, "EOF");
  conn.close();
  rig.poll();
  rig.expectOne({ flags: "F.", seq: syn.seq + 2501, ack: 7002 }, "our FIN carries the ACK of theirs");
  assert.equal(conn.state, "LAST_ACK");
  rig.inject({ ...p, flags: ".", seq: 7002, ack: syn.seq + 2502, window: 5000 });
  assert.equal(conn.state, "CLOSED");
  assert.equal(conn.error, null);
});

Deno.test("tcp conformance: the ACK of a FIN in ESTABLISHED is delayed, not withheld; in FIN-WAIT-2 it is at once", () => {
  const rig = new TcpRig();
  const conn = rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now, 40002);
  rig.poll();
  const syn = rig.take()[0];
  const p = { srcPort: 80, dstPort: 40002 };
  rig.inject({ ...p, flags: "S.", seq: 9000, ack: syn.seq + 1, window: 5000 });
  rig.take();
  rig.inject({ ...p, flags: "F.", seq: 9001, ack: syn.seq + 1, window: 5000 });
  rig.poll();
  assert.deepEqual(rig.take(), []);
  // The application does not answer: the delayed-ACK timer (40 ms by default, < 0.5 s) sends it alone.
  rig.advance(39);
  assert.deepEqual(rig.take(), []);
  rig.advance(1);
  rig.expectOne({ flags: ".", seq: syn.seq + 1, ack: 9002 }, "delayed ACK of the FIN");
  assert.equal(conn.state, "CLOSE_WAIT");
  // We close first on another connection: the peer's FIN in FIN-WAIT-2 is acknowledged at once.
  const other = rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now, 40003);
  rig.poll();
  const syn2 = rig.take()[0];
  const q = { srcPort: 80, dstPort: 40003 };
  rig.inject({ ...q, flags: "S.", seq: 5000, ack: syn2.seq + 1, window: 5000 });
  rig.take();
  other.shutdownWrite();
  rig.poll();
  rig.expectOne({ flags: "F.", seq: syn2.seq + 1 });
  rig.inject({ ...q, flags: ".", seq: 5001, ack: syn2.seq + 2, window: 5000 });
  assert.equal(other.state, "FIN_WAIT_2");
  rig.inject({ ...q, flags: "F.", seq: 5001, ack: syn2.seq + 2, window: 5000 });
  rig.expectOne({ flags: ".", ack: 5002 }, "ACK of the FIN in FIN-WAIT-2");
  assert.equal(other.state, "TIME_WAIT");
});

Deno.test("tcp conformance: ACK in SYN-RECEIVED that acknowledges nothing we sent gets a RST", () => {
  const rig = new TcpRig();
  rig.layer.listen(80);
  rig.inject({ flags: "S", seq: 1000 });
  const synAck = rig.take()[0];
  rig.inject({ flags: ".", seq: 1001, ack: synAck.seq + 10 });
  rig.expectOne({ flags: "R", seq: synAck.seq + 10 });
  // A retransmitted SYN makes us resend the SYN,ACK.
  rig.inject({ flags: "S", seq: 1000 });
  rig.expectOne({ flags: "S.", seq: synAck.seq, ack: 1001 });
});

Deno.test("tcp conformance: listener backlog bounds half-open connections", () => {
  const rig = new TcpRig({ synCookies: false });
  const listener = rig.layer.listen(80, 2);
  for (let i = 0; i < 3; i++) rig.inject({ flags: "S", seq: 1000, srcPort: 41000 + i });
  // Without cookies the oldest half-open connection gives its place (RFC 4987 §3.5).
  const synAcks = rig.take();
  assert.equal(synAcks.length, 3);
  assert.equal(rig.layer.stats().halfOpenEvicted, 1);
  assert.equal(rig.layer.connectionCount, 2);
  // The evicted peer's ACK finds no connection: RST.
  rig.inject({ flags: ".", seq: 1001, ack: synAcks[0].seq + 1, srcPort: 41000 });
  rig.expectOne({ flags: "R", seq: synAcks[0].seq + 1 });
  // The two kept complete their handshakes; unaccepted, they fill the backlog, which has nothing to evict.
  for (const i of [1, 2]) rig.inject({ flags: ".", seq: 1001, ack: synAcks[i].seq + 1, srcPort: 41000 + i });
  assert.equal(listener.halfOpen, 0);
  rig.inject({ flags: "S", seq: 1000, srcPort: 41003 });
  assert.equal(rig.take().length, 0);
  assert.equal(rig.layer.stats().drops["listen-overflow"], 1);
  assert.equal(rig.layer.stats().halfOpenEvicted, 1);
  // With SYN cookies (the default) the third SYN is answered too, but keeps no state.
  const cookies = new TcpRig();
  cookies.layer.listen(80, 2);
  for (let i = 0; i < 3; i++) cookies.inject({ flags: "S", seq: 1000, srcPort: 41000 + i });
  assert.equal(cookies.take().length, 3);
  assert.equal(cookies.layer.connectionCount, 2);
  assert.equal(cookies.layer.stats().syncookiesSent, 1);
});

Deno.test("tcp conformance: RFC 6528 ISNs are keyed by the 4-tuple and advance with a 4 µs clock", () => {
  const g = new IsnGenerator(new Uint8Array(16).fill(1));
  const a = g.isn(1, 2, 3, 4, 0);
  assert.equal(g.isn(1, 2, 3, 4, 1), (a + 250) >>> 0, "1 ms = 250 ticks");
  assert.notEqual(g.isn(1, 2, 3, 5, 0), a);
  assert.notEqual(new IsnGenerator(new Uint8Array(16).fill(2)).isn(1, 2, 3, 4, 0), a);
});

Deno.test("tcp conformance: challenge ACKs are rate-limited per second (RFC 5961 §7)", () => {
  const { rig, peerSeq } = establishPassive({ challengeAckLimit: 2 }, { mss: 1460 });
  for (let i = 1; i <= 3; i++) rig.inject({ flags: "R", seq: peerSeq + i });
  assert.equal(rig.take().length, 2);
  assert.equal(rig.layer.stats().drops["challenge-ack-limit"], 1);
  rig.advance(1000);
  rig.inject({ flags: "R", seq: peerSeq + 9 });
  assert.equal(rig.take().length, 1, "a new second, a new allowance");
});

Deno.test("tcp conformance: after a retransmitted SYN without an RTT sample, data starts with a 3 s RTO (RFC 6298 §5.7)", () => {
  const rig = new TcpRig({ timestamps: false });
  const conn = rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now, 40001);
  rig.poll();
  const syn = rig.take()[0];
  rig.advance(1000);
  rig.expectOne({ flags: "S" }, "retransmitted SYN");
  rig.inject({
    flags: "S.",
    seq: 7000,
    ack: syn.seq + 1,
    srcPort: 80,
    dstPort: 40001,
    options: { mss: 1460 },
  });
  assert.equal(conn.state, "ESTABLISHED");
  assert.equal(conn.rtt.srtt, -1, "Karn: no sample from a retransmitted SYN");
  assert.equal(conn.rtt.rto, 3000);
});

Deno.test("tcp conformance: a retransmitted SYN,ACK in ESTABLISHED is answered with an ACK", () => {
  const rig = new TcpRig();
  const conn = rig.layer.connect(RIG_LOCAL, RIG_REMOTE, 80, rig.now, 40001);
  rig.poll();
  const syn = rig.take()[0];
  const p = { srcPort: 80, dstPort: 40001 };
  rig.inject({ ...p, flags: "S.", seq: 7000, ack: syn.seq + 1, options: { mss: 1460 } });
  rig.expectOne({ flags: ".", ack: 7001 });
  rig.inject({ ...p, flags: "S.", seq: 7000, ack: syn.seq + 1, options: { mss: 1460 } });
  rig.expectOne({ flags: ".", seq: syn.seq + 1, ack: 7001 }, "our handshake ACK was lost: repeat it");
  assert.equal(conn.state, "ESTABLISHED");
});

Deno.test("tcp conformance: RST in SYN-RECEIVED of a passive open removes it silently (back to LISTEN)", () => {
  const rig = new TcpRig();
  const listener = rig.layer.listen(80);
  rig.inject({ flags: "S", seq: 1000 });
  rig.take();
  assert.equal(listener.halfOpen, 1);
  rig.inject({ flags: "R", seq: 1001 });
  rig.expectNone();
  assert.equal(listener.halfOpen, 0);
  assert.equal(rig.layer.connectionCount, 0);
  rig.inject({ flags: "S", seq: 5000 });
  rig.expectOne({ flags: "S.", ack: 5001 }, "the listener still answers");
});

Deno.test("tcp conformance: data entirely outside the receive window is dropped and ACKed", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({ recvBufferSize: 65535 }, { mss: 1460 });
  rig.inject({ flags: "P.", seq: peerSeq + 70_000, ack: ourSeq, payload: 100 });
  rig.expectOne({ flags: ".", ack: peerSeq }, "beyond the right edge");
  rig.inject({ flags: "P.", seq: peerSeq - 200, ack: ourSeq, payload: 100 });
  rig.expectOne({ flags: ".", ack: peerSeq }, "old duplicate");
  assert.equal(rig.layer.stats().drops["out-of-window"], 2);
  assert.equal(conn.readableBytes, 0);
});

Deno.test("tcp conformance: closing a listener resets its pending connections and frees the port", () => {
  const rig = new TcpRig();
  const listener = rig.layer.listen(80);
  rig.inject({ flags: "S", seq: 1000, srcPort: 41000 });
  const established = rig.take()[0];
  rig.inject({ flags: ".", seq: 1001, ack: established.seq + 1, srcPort: 41000 });
  rig.inject({ flags: "S", seq: 2000, srcPort: 41001 });
  const halfOpen = rig.take()[0];
  assert.equal(listener.acceptable, 1);
  assert.equal(listener.halfOpen, 1);
  listener.close();
  rig.poll();
  const resets = rig.take();
  assert.deepEqual(
    resets.map((s) => [s.flags, s.dstPort, s.seq]).sort(),
    [["R", 41000, established.seq + 1], ["R", 41001, halfOpen.seq + 1]],
  );
  assert.equal(rig.layer.connectionCount, 0);
  rig.inject({ flags: "S", seq: 3000, srcPort: 41002 });
  rig.expectOne({ flags: "R.", ack: 3001 }, "the port is closed now");
  assert.doesNotThrow(() => rig.layer.listen(80).close(), "the port can be listened on again");
});

Deno.test("tcp conformance: an exception from an onEvent callback resets only that connection", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive({}, { mss: 1460 });
  conn.onEvent = () => {
    throw new Error("application bug");
  };
  rig.inject({ flags: "P.", seq: peerSeq, ack: ourSeq, payload: 10 });
  rig.expectOne({ flags: "R", seq: ourSeq });
  assert.equal(conn.state, "CLOSED");
  assert.equal(rig.layer.stats().drops["internal-error"], 1);
  assert.equal(rig.layer.connectionCount, 0);
  rig.inject({ flags: "S", seq: 9000, srcPort: 41234 });
  rig.expectOne({ flags: "S.", ack: 9001 }, "the listener still works");
});

Deno.test("tcp conformance: a pure ACK exactly at the right edge of our window is processed (as Linux)", () => {
  const { rig, conn, peerSeq, ourSeq } = establishPassive(
    { recvBufferSize: 4000, windowScaling: false },
    { mss: 1460 },
    65535,
  );
  conn.send(new Uint8Array(500));
  rig.poll();
  rig.expectOne({ seq: ourSeq, len: 500 });
  // The peer filled our 4000-byte window; its first segment was lost.
  for (let k = 1; k < 4; k++) rig.inject({ flags: ".", seq: peerSeq + 1000 * k, ack: ourSeq, payload: 1000 });
  rig.take();
  // Its next pure ACK carries SEG.SEQ = its SND.NXT = our right edge.
  rig.inject({ flags: ".", seq: peerSeq + 4000, ack: ourSeq + 500 });
  assert.equal(conn.sndUna, ourSeq + 500, "the ACK was processed");
  assert.equal(rig.layer.stats().drops["out-of-window"], 0);
});

Deno.test("tcp conformance: ACKs answering unacceptable segments without data are rate-limited (ACK storms)", () => {
  const { rig, peerSeq, ourSeq } = establishPassive({ invalidAckIntervalMs: 500 }, { mss: 1460 });
  for (let i = 0; i < 3; i++) rig.inject({ flags: ".", seq: peerSeq - 5000, ack: ourSeq });
  assert.equal(rig.take().length, 1, "one ACK for three old pure ACKs");
  assert.equal(rig.layer.stats().invalidAcksSuppressed, 2);
  for (let i = 0; i < 3; i++) rig.inject({ flags: ".", seq: peerSeq - 5000, ack: ourSeq, payload: 100 });
  assert.equal(rig.take().length, 3, "old data is always answered (it cannot be an ACK loop)");
  rig.advance(500);
  rig.inject({ flags: ".", seq: peerSeq - 5000, ack: ourSeq });
  assert.equal(rig.take().length, 1, "allowed again after the interval");
});

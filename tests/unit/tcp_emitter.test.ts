/**
 * Unit tests of the segment emitter on its own: header and option layout, payload from the source, the
 * receiver's ACK/window/timestamp echo, checksums with and without offload, and queued RSTs. Also the
 * option negotiation and keepalive timer pieces.
 */

import assert from "node:assert/strict";
import { resolveTcpConfig } from "../../lib/tcp/config.ts";
import type { PayloadSource } from "../../lib/tcp/emitter.ts";
import { SegmentEmitter } from "../../lib/tcp/emitter.ts";
import { KeepaliveAction, KeepaliveTimer } from "../../lib/tcp/keepalive.ts";
import { negotiateOptions } from "../../lib/tcp/negotiate.ts";
import { TcpReceiver } from "../../lib/tcp/receiver.ts";
import { TcpStats } from "../../lib/tcp/stats.ts";
import { foldSum, ipv4PseudoHeaderSum } from "../../lib/wire/checksum.ts";
import { IpProtocol } from "../../lib/wire/ipv4.ts";
import { GsoType, TxFlags } from "../../lib/wire/offload.ts";
import { TcpFlags, TcpOptions } from "../../lib/wire/tcp.ts";
import { CaptureSink, halves } from "../helpers/tcp_halves.ts";
import { RIG_LOCAL, RIG_REMOTE } from "../helpers/tcp_packet.ts";

/** A payload source whose byte at sequence s is s & 0xff. */
function source(timestamps: boolean, sack: boolean, sendMss = 1000): PayloadSource {
  return {
    timestamps,
    sack,
    sendMss,
    tsNow: (now) => now + 7,
    copyPayload(seq, into, offset, length) {
      for (let i = 0; i < length; i++) into[offset + i] = (seq + i) & 0xff;
    },
  };
}

function emitter(timestamps: boolean, sack: boolean, sendMss = 1000) {
  const stats = new TcpStats();
  const receiver = new TcpReceiver(resolveTcpConfig({ recvBufferSize: 1 << 20 }), stats);
  const endpoints = { localAddress: RIG_LOCAL, localPort: 80, remoteAddress: RIG_REMOTE, remotePort: 4000 };
  const e = new SegmentEmitter(new Uint8Array(65536), stats, receiver, endpoints);
  e.source = source(timestamps, sack, sendMss);
  return { e, receiver, stats };
}

Deno.test("tcp emitter: a SYN carries MSS, SACK-permitted, timestamps and window scale, unscaled window", () => {
  const { e, receiver } = emitter(true, true);
  receiver.offerWindowScale = true;
  const sink = new CaptureSink();
  e.emit(sink, 100, 12345, TcpFlags.SYN, 0, false);
  const [{ segment: s, offload }] = sink.take();
  assert.equal(offload, null, "no descriptor for a link without offloads");
  assert.deepEqual(
    [s.src, s.dst, s.srcPort, s.dstPort, s.flags, s.seq, s.ack],
    [RIG_LOCAL, RIG_REMOTE, 80, 4000, "S", 12345, 0],
  );
  assert.equal(s.window, 65535, "RFC 7323 §2.2: a SYN's window is not scaled");
  assert.deepEqual([s.mss, s.sackOk, s.ts, s.wscale], [1460, true, [107, 0], 5]);
});

Deno.test("tcp emitter: a data segment acknowledges RCV.NXT, echoes TS.Recent and copies the payload", () => {
  const { e, receiver, stats } = emitter(true, false);
  receiver.start(4999);
  receiver.tsRecent = 77;
  receiver.ackNow = true;
  const sink = new CaptureSink();
  e.emit(sink, 10, 300, TcpFlags.ACK | TcpFlags.PSH, 5, true);
  const [{ segment: s }] = sink.take();
  assert.deepEqual([s.flags, s.seq, s.ack], ["P.", 300, 5000]);
  assert.deepEqual(s.ts, [17, 77]);
  assert.deepEqual([...s.payload], [44, 45, 46, 47, 48]);
  assert.equal(receiver.ackNow, false, "the ACK owed went out");
  assert.deepEqual([stats.segmentsOut, stats.bytesOut], [1, 5]);
  e.emit(sink, 10, 300, TcpFlags.ACK, 5, false);
  assert.equal(sink.take()[0].segment.payload.length, 0, "without withData no payload");
});

Deno.test("tcp emitter: SACK blocks only on ACKs, three next to timestamps", () => {
  const { e, receiver } = emitter(true, true);
  receiver.start(0);
  receiver.synWindow();
  for (let i = 0; i < 4; i++) receiver.receive(new Uint8Array(10), 101 + 100 * i, 0, 10, 0, false);
  const sink = new CaptureSink();
  e.emit(sink, 0, 1, TcpFlags.ACK, 0, false);
  assert.equal(sink.take()[0].segment.sack.length, 3);
  e.emit(sink, 0, 1, TcpFlags.RST, 0, false);
  assert.equal(sink.take()[0].segment.sack.length, 0);
});

Deno.test("tcp emitter: with offloads a descriptor says where the checksum and headers are, and asks TSO", () => {
  const { e } = emitter(true, false, 1000);
  const sink = new CaptureSink(true);
  e.emit(sink, 0, 1, TcpFlags.ACK, 3000, true);
  e.emit(sink, 0, 3001, TcpFlags.ACK, 1000, true);
  const [big, small] = sink.take();
  const d = big.offload!;
  assert.deepEqual(
    [d.flags, d.checksumStart, d.checksumOffset, d.headerLength, d.gsoType, d.gsoSize],
    [TxFlags.CHECKSUM_PARTIAL, 20, 16, 20 + 20 + 12, GsoType.TCPV4, 1000],
    "a super-segment of three MSS after IPv4, TCP and timestamp headers",
  );
  const s = small.offload!;
  assert.deepEqual([s.flags, s.headerLength, s.gsoType, s.gsoSize], [
    TxFlags.CHECKSUM_PARTIAL,
    52,
    GsoType.NONE,
    0,
  ]);
  const field = (big.raw[36] << 8) | big.raw[37];
  assert.equal(field, foldSum(ipv4PseudoHeaderSum(RIG_LOCAL, RIG_REMOTE, IpProtocol.TCP, 32 + 3000)));
  assert.equal(big.segment.payload.length, 3000, "the parsed copy carries a completed, valid checksum");
});

Deno.test("tcp emitter: a queued RST leaves once, at the next flush", () => {
  const { e, stats } = emitter(false, false);
  const sink = new CaptureSink();
  e.flushReset(sink);
  assert.equal(sink.take().length, 0);
  e.queueReset(900, 0, false);
  assert.equal(e.resetPending, true);
  e.flushReset(sink);
  e.flushReset(sink);
  const out = sink.take();
  assert.equal(out.length, 1);
  assert.deepEqual([out[0].segment.flags, out[0].segment.seq, out[0].segment.ack], ["R", 900, 0]);
  assert.equal(stats.resetsOut, 1);
  e.queueReset(1, 2, true);
  e.flushReset(sink);
  assert.deepEqual([sink.take()[0].segment.flags], ["R."]);
});

Deno.test("tcp negotiation: scaling only when both offer it; MSS bounded by ours, minus timestamps", () => {
  const h = halves({ recvBufferSize: 1 << 20 });
  const opts = new TcpOptions();
  opts.mss = 9000;
  opts.windowScale = 7;
  opts.hasTimestamps = true;
  opts.tsVal = 42;
  opts.sackPermitted = true;
  assert.equal(negotiateOptions(h.config, opts, h.sender, h.receiver), 9000);
  assert.deepEqual([h.sender.sndScale, h.receiver.rcvScale, h.receiver.offerWindowScale], [7, 5, true]);
  assert.deepEqual([h.sender.timestamps, h.receiver.timestamps, h.sender.sack, h.receiver.sack], [
    true,
    true,
    true,
    true,
  ]);
  assert.equal(h.receiver.tsRecent, 42);
  assert.equal(h.sender.sendMss, 1460 - 12);
  const bare = halves({});
  assert.equal(negotiateOptions(bare.config, new TcpOptions(), bare.sender, bare.receiver), 536);
  assert.deepEqual([bare.sender.sndScale, bare.receiver.rcvScale, bare.receiver.offerWindowScale], [
    0,
    0,
    false,
  ]);
  assert.deepEqual([bare.sender.timestamps, bare.sender.sack, bare.sender.sendMss], [false, false, 536]);
});

Deno.test("tcp keepalive timer: idle, probes at the interval, times out after the count", () => {
  const config = resolveTcpConfig({
    keepalive: true,
    keepaliveIdleMs: 1000,
    keepaliveIntervalMs: 100,
    keepaliveCount: 2,
  });
  const k = new KeepaliveTimer(config);
  k.arm(0);
  assert.equal(k.deadline, 1000);
  k.arm(500);
  assert.equal(k.deadline, 1000, "armed once");
  assert.equal(k.expire(1000, false), KeepaliveAction.None, "data in flight: no probe");
  k.arm(1000);
  assert.equal(k.expire(2000, true), KeepaliveAction.Probe);
  assert.equal(k.deadline, 2100);
  assert.equal(k.expire(2100, true), KeepaliveAction.Probe);
  assert.equal(k.expire(2200, true), KeepaliveAction.TimedOut);
  k.onSegment();
  assert.equal(k.deadline, Infinity);
  k.arm(3000);
  assert.equal(k.expire(4000, true), KeepaliveAction.Probe, "an answer resets the count");
  const off = new KeepaliveTimer(resolveTcpConfig({ keepalive: false }));
  off.arm(0);
  assert.equal(off.deadline, Infinity, "off unless configured");
});

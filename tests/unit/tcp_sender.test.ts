/**
 * Unit tests of the send side on its own (with a real emitter and receiver, no connection): segmentation,
 * Nagle, ACK processing, fast recovery, the retransmission, persist and probe timers, and the
 * lost-retransmission log.
 */

import assert from "node:assert/strict";
import type { TcpLayerOptions } from "../../lib/tcp/config.ts";
import { negotiateOptions } from "../../lib/tcp/negotiate.ts";
import { RetransmissionLog } from "../../lib/tcp/retransmission_log.ts";
import { SackScoreboard } from "../../lib/tcp/sack_scoreboard.ts";
import { AckResult, Recovery } from "../../lib/tcp/sender.ts";
import { TcpOptions } from "../../lib/wire/tcp.ts";
import { CaptureSink, type Halves, halves } from "../helpers/tcp_halves.ts";

const ISS = 1000;

/** A sender after the handshake (SYN at 0, SYN,ACK at 10 ms): MSS 1000, peer window 65535. */
function established(
  options: TcpLayerOptions,
  sack: boolean,
): Halves & { sink: CaptureSink; opts: TcpOptions } {
  const h = halves({ timestamps: false, ...options });
  const sink = new CaptureSink();
  const opts = new TcpOptions();
  opts.mss = 1000;
  opts.sackPermitted = sack;
  h.sender.start(ISS, 0);
  h.receiver.start(5000);
  negotiateOptions(h.config, opts, h.sender, h.receiver);
  h.sender.sendSyn(0, sink, false);
  assert.equal(sink.take()[0].segment.flags, "S");
  h.sender.onSynAcked(ISS + 1, opts, 10);
  h.sender.setWindow(65535, 5001, ISS + 1);
  h.sender.onEstablished();
  return { ...h, sink, opts };
}

const ack = (h: Halves, opts: TcpOptions, n: number, now: number, window = 65535) => {
  const result = h.sender.processAck(window, opts, ISS + 1 + n, 0, false, now);
  h.sender.updateWindow(window, 5001, ISS + 1 + n);
  return result;
};

Deno.test("tcp sender: segments the buffer into MSS-sized segments up to the initial window", () => {
  const h = established({}, true);
  assert.equal(h.sender.sendMss, 1000);
  assert.equal(h.sender.rtt.srtt, 10, "the SYN was timed");
  assert.equal(h.sender.buffer.write(new Uint8Array(15_000)), 15_000);
  assert.equal(h.sender.output(20, h.sink), true);
  const out = h.sink.take();
  assert.equal(out.length, 10, "IW10 (RFC 6928)");
  out.forEach((e, i) => {
    assert.equal(e.segment.seq, ISS + 1 + 1000 * i);
    assert.equal(e.segment.payload.length, 1000);
  });
  assert.equal(h.sender.sndNxt, ISS + 1 + 10_000);
  assert.equal(h.sender.unsentBytes(), 5000);
  assert.equal(h.sender.rtoDeadline, 20 + h.sender.rtt.rto);
  assert.equal(h.stats.segmentsOut, 11);
});

Deno.test("tcp sender: ACKs free the buffer and report it; the FIN's ACK is reported", () => {
  const h = established({}, true);
  h.sender.buffer.write(new Uint8Array(500));
  h.sender.finQueued = true;
  h.sender.output(20, h.sink);
  const [seg] = h.sink.take();
  assert.equal(seg.segment.flags, "FP.");
  assert.equal(h.sender.finSent, true);
  assert.equal(h.sender.finSeq, ISS + 501);
  assert.equal(ack(h, h.opts, 500, 30), AckResult.FREED, "data acknowledged, FIN not yet");
  assert.equal(h.sender.buffer.length, 0);
  assert.equal(ack(h, h.opts, 501, 31), AckResult.FIN_ACKED);
  assert.equal(h.sender.rtoDeadline, Infinity, "all acknowledged: timer stopped (RFC 6298 §5.2)");
});

Deno.test("tcp sender: Nagle holds a small segment while one is unacknowledged; noDelay does not", () => {
  const h = established({}, true);
  h.sender.buffer.write(new Uint8Array(100));
  h.sender.output(20, h.sink);
  assert.equal(h.sink.take().length, 1);
  h.sender.buffer.write(new Uint8Array(100));
  assert.equal(h.sender.output(21, h.sink), false);
  assert.equal(h.sink.take().length, 0, "held by Nagle");
  h.sender.noDelay = true;
  h.sender.output(22, h.sink);
  assert.equal(h.sink.take()[0].segment.seq, ISS + 101);
});

Deno.test("tcp sender: three duplicate ACKs enter fast recovery and retransmit (RFC 6582)", () => {
  const h = established({ congestionControl: "newreno" }, false);
  h.sender.buffer.write(new Uint8Array(10_000));
  h.sender.output(20, h.sink);
  h.sink.take();
  ack(h, h.opts, 1000, 30);
  for (let i = 0; i < 2; i++) ack(h, h.opts, 1000, 31 + i);
  assert.equal(h.sender.recovery, Recovery.None);
  ack(h, h.opts, 1000, 33);
  assert.equal(h.sender.recovery, Recovery.Fast);
  assert.equal(h.stats.fastRecoveries, 1);
  assert.equal(h.sender.congestion.ssthresh, 4500, "ssthresh = FlightSize / 2");
  h.sender.output(33, h.sink);
  const [rtx] = h.sink.take();
  assert.equal(rtx.segment.seq, ISS + 1001);
  assert.equal(h.stats.retransmissions, 1);
  ack(h, h.opts, 10_000, 40);
  assert.equal(h.sender.recovery, Recovery.None, "full acknowledgment ends recovery");
});

Deno.test("tcp sender: the RTO retransmits from SND.UNA with backoff and gives up after maxRetries", () => {
  const h = established({ maxRetries: 2 }, true);
  h.sender.buffer.write(new Uint8Array(5000));
  h.sender.output(20, h.sink);
  h.sink.take();
  const rto = h.sender.rtt.rto;
  assert.equal(h.sender.onRetransmissionTimeout(20 + rto, false), true);
  assert.equal(h.sender.recovery, Recovery.Timeout);
  assert.equal(h.sender.congestion.cwnd, 1000, "loss window: one segment (RFC 5681 §3.1)");
  assert.equal(h.sender.rtt.rto, 2 * rto, "backoff (RFC 6298 §5.5)");
  h.sender.output(20 + rto, h.sink);
  const out = h.sink.take();
  assert.equal(out.length, 1);
  assert.equal(out[0].segment.seq, ISS + 1);
  assert.equal(h.sender.onRetransmissionTimeout(100_000, false), true);
  assert.equal(h.sender.onRetransmissionTimeout(200_000, false), false, "third timeout exceeds 2 retries");
});

Deno.test("tcp sender: the persist timer probes a zero window with SND.UNA − 1 (RFC 9293 §3.8.6.1)", () => {
  const h = established({}, true);
  h.sender.setWindow(0, 5002, ISS + 1);
  h.sender.buffer.write(new Uint8Array(100));
  assert.equal(h.sender.output(20, h.sink), false);
  assert.equal(h.sink.take().length, 0);
  assert.ok(h.sender.persistDeadline > 20 && h.sender.persistDeadline < Infinity, "persist timer armed");
  assert.equal(h.sender.onPersistTimeout(h.sender.persistDeadline, h.sink, true), true);
  const [probe] = h.sink.take();
  assert.equal(probe.segment.seq, ISS, "an old sequence number forces an ACK");
  assert.equal(probe.segment.payload.length, 0);
  assert.equal(h.stats.windowProbes, 1);
  assert.equal(h.sender.onPersistTimeout(0, h.sink, false), true, "not in a sending state: nothing");
  assert.equal(h.sink.take().length, 0);
});

Deno.test("tcp sender: a tail loss probe resends the last segment after 2·SRTT (RFC 8985 §7)", () => {
  const h = established({}, true);
  h.sender.buffer.write(new Uint8Array(3000));
  h.sender.output(20, h.sink);
  assert.equal(h.sink.take().length, 3);
  assert.equal(h.sender.ptoDeadline, 20 + 2 * 10, "PTO = 2·SRTT");
  h.sender.onProbeTimeout(40, h.sink, true);
  const [probe] = h.sink.take();
  assert.equal(probe.segment.seq, ISS + 2001);
  assert.equal(probe.segment.payload.length, 1000);
  assert.equal(h.stats.tailLossProbes, 1);
  assert.equal(h.sender.rtoDeadline, 40 + h.sender.rtt.rto, "the RTO follows the probe");
});

Deno.test("tcp sender: acceptable ACK range (RFC 5961 §5.2)", () => {
  const h = established({}, true);
  h.sender.buffer.write(new Uint8Array(2000));
  h.sender.output(20, h.sink);
  assert.equal(h.sender.ackTooNew(ISS + 2001), false);
  assert.equal(h.sender.ackTooNew(ISS + 2002), true);
  assert.equal(h.sender.ackTooOld(ISS + 1 - 65535), false);
  assert.equal(h.sender.ackTooOld(ISS - 65535), true);
});

Deno.test("tcp retransmission log: a retransmission is lost once a full segment sent after it is SACKed", () => {
  const log = new RetransmissionLog();
  const board = new SackScoreboard();
  // Outstanding 0..10000; retransmitted 0..1000 when SND.NXT was 10000.
  log.record(0, 1000, 10_000);
  const blocks = new Uint32Array(8);
  blocks.set([2000, 10_500]);
  board.update(blocks, 1, 0, 11_000);
  log.detect(0, board, 1000);
  assert.equal(log.lost, false, "highest SACK 10500 < 10000 + MSS");
  blocks.set([2000, 11_000]);
  board.update(blocks, 1, 0, 11_000);
  log.detect(0, board, 1000);
  assert.equal(log.lost, true);
  assert.deepEqual([log.oldestStart, log.oldestEnd, log.count], [0, 1000, 1]);
  log.lost = false;
  log.resent(11_000);
  log.detect(0, board, 1000);
  assert.equal(log.lost, false, "resent after SND.NXT moved: not lost again yet");
  log.detect(1000, board, 1000);
  assert.equal(log.count, 0, "delivered retransmissions are forgotten");
});

Deno.test("tcp retransmission log: bounded; the oldest record is forgotten when full", () => {
  const log = new RetransmissionLog();
  for (let i = 0; i < 300; i++) log.record(i * 10, i * 10 + 10, 5000);
  assert.equal(log.count, 256);
  assert.equal(log.oldestStart, 440);
  log.clear();
  assert.equal(log.count, 0);
});

import assert from "node:assert/strict";
import { CubicCongestionControl } from "../../lib/tcp/cubic.ts";
import { sipHash24 } from "../../lib/tcp/isn.ts";
import { NewRenoCongestionControl } from "../../lib/tcp/new_reno.ts";
import { RttEstimator } from "../../lib/tcp/rtt.ts";

Deno.test("tcp rtt: RFC 6298 SRTT/RTTVAR, bounds and backoff", () => {
  const r = new RttEstimator(1000, 200, 60_000);
  assert.equal(r.rto, 1000, "initial RTO");
  r.sample(100);
  assert.equal(r.srtt, 100);
  assert.equal(r.rttvar, 50);
  assert.equal(r.rto, 300);
  r.sample(200);
  assert.equal(r.rttvar, 0.75 * 50 + 0.25 * 100);
  assert.equal(r.srtt, 0.875 * 100 + 0.125 * 200);
  assert.equal(r.rto, r.srtt + 4 * r.rttvar);
  const base = r.rto;
  r.onTimeout();
  r.onTimeout();
  assert.equal(r.rto, base * 4);
  for (let i = 0; i < 20; i++) r.onTimeout();
  assert.equal(r.rto, 60_000, "capped at the maximum");
  r.sample(1);
  assert.equal(r.backoff, 0, "a new sample resets the backoff");
  assert.equal(r.rto, r.baseRto);
  const fresh = new RttEstimator(1000, 200, 60_000);
  fresh.sample(1);
  assert.equal(fresh.rto, 200, "floor at the minimum");
});

Deno.test("tcp congestion: NewReno slow start, avoidance, loss and timeout", () => {
  const mss = 1000;
  const c = new NewRenoCongestionControl(mss);
  assert.equal(c.cwnd, 10 * mss);
  c.onAck(5 * mss, 0, 50, true);
  assert.equal(c.cwnd, 15 * mss, "slow start adds the acked bytes");
  c.onAck(5 * mss, 0, 50, false);
  assert.equal(c.cwnd, 15 * mss, "no growth when not cwnd-limited");
  c.onCongestionEvent(0, 16 * mss);
  assert.equal(c.ssthresh, 8 * mss);
  assert.equal(c.cwnd, 8 * mss);
  for (let i = 0; i < 8; i++) c.onAck(mss, 0, 50, true);
  assert.equal(c.cwnd, 9 * mss, "one MSS per window in avoidance");
  c.onRetransmissionTimeout(0, 10 * mss, true);
  assert.equal(c.cwnd, mss);
  assert.equal(c.ssthresh, 5 * mss);
  c.onRetransmissionTimeout(0, 2 * mss, false);
  assert.equal(c.ssthresh, 5 * mss, "held on a repeated timeout");
});

Deno.test("tcp congestion: CUBIC reduces by β = 0.7 and regrows along the cubic toward W_max", () => {
  const mss = 1000;
  const c = new CubicCongestionControl(mss);
  c.onAck(90 * mss, 0, 100, true); // slow start to 100 segments
  assert.equal(c.cwnd, 100 * mss);
  c.onCongestionEvent(0, 100 * mss);
  assert.equal(c.cwnd, 70 * mss);
  assert.equal(c.ssthresh, 70 * mss);
  assert.equal(c.wMax, 100);
  // Grow for a while: one ACK per segment per 100 ms RTT, with time advancing.
  let now = 0;
  const samples: number[] = [];
  for (let rtt = 0; rtt < 60; rtt++) {
    now += 100;
    const segments = Math.floor(c.cwnd / mss);
    for (let i = 0; i < segments; i++) c.onAck(mss, now, 100, true);
    samples.push(c.cwnd / mss);
  }
  // K = cbrt(100 × 0.3 / 0.4) ≈ 4.2 s: the window approaches W_max (concave), plateaus, then probes above.
  const k = Math.cbrt((100 * 0.3) / 0.4);
  assert.ok(Math.abs(c.k - k) < 1e-9);
  assert.ok(samples[10] > 80 && samples[10] < 100, `after 1 s: ${samples[10]}`);
  assert.ok(samples[40] > 98 && samples[40] < 110, `near K: ${samples[40]}`);
  assert.ok(samples[59] > samples[40], "convex growth beyond W_max");
  // Fast convergence: a loss below the previous W_max lowers W_max further.
  const before = c.cwnd / mss;
  c.onCongestionEvent(now, c.cwnd);
  assert.equal(c.wMax, before);
  c.onCongestionEvent(now, c.cwnd);
  assert.ok(c.wMax < before * 0.7, "W_max = cwnd (1 + β) / 2 when cwnd < W_max");
});

Deno.test("tcp isn: SipHash-2-4 matches the reference test vectors", () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  const hex = (n: number) => {
    const h = sipHash24(key, Uint8Array.from({ length: n }, (_, i) => i));
    return h[0].toString(16).padStart(8, "0") + h[1].toString(16).padStart(8, "0");
  };
  assert.equal(hex(0), "726fdb47dd0e0e31");
  assert.equal(hex(15), "a129ca6149be45e5");
  // Whole blocks, and many of them (carries across the 32-bit halves of every word).
  assert.equal(hex(8), "93f5f5799a932462");
  assert.equal(hex(63), "958a324ceb064572");
});

Deno.test("tcp congestion: undoReduction restores the window before the last reduction; idle restart caps at IW", () => {
  const mss = 1000;
  for (const c of [new NewRenoCongestionControl(mss), new CubicCongestionControl(mss)]) {
    c.onAck(30 * mss, 0, 50, true);
    const cwnd = c.cwnd, ssthresh = c.ssthresh;
    c.onCongestionEvent(0, cwnd);
    assert.ok(c.cwnd < cwnd, c.name);
    c.undoReduction();
    assert.equal(c.cwnd, cwnd, c.name);
    assert.equal(c.ssthresh, ssthresh, c.name);
    c.undoReduction(); // nothing saved any more: no change
    assert.equal(c.cwnd, cwnd, c.name);
    c.onIdleRestart(0);
    assert.equal(c.cwnd, 10 * mss, c.name);
  }
});

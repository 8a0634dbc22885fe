/**
 * Per-connection loss state is made on first use: until a connection receives an out-of-order segment, a
 * SACK block, or retransmits in fast recovery, it shares one empty queue, scoreboard and log with all
 * others. A lossy transfer exercises every path that takes its own; the shared ones must stay empty.
 */

import assert from "node:assert/strict";
import { runTransfer } from "../helpers/tcp_sim.ts";
import { NO_SACKS } from "../../lib/tcp/sack_scoreboard.ts";
import { NO_RETRANSMISSIONS } from "../../lib/tcp/retransmission_log.ts";
import { NO_OUT_OF_ORDER } from "../../lib/tcp/reassembly.ts";

Deno.test("tcp: lossy transfers take their own loss state; the shared empty ones stay empty", () => {
  for (const seed of [1, 2, 3]) {
    const result = runTransfer(seed, {
      aToB: 400_000,
      bToA: 400_000,
      link: { loss: 0.05, reorder: 0.03, delayMs: 5 },
    });
    assert.ok(result.ok, result.failure ?? "");
    const a = result.net.a.tcp.stats(), b = result.net.b.tcp.stats();
    assert.ok(a.fastRecoveries + b.fastRecoveries > 0, "losses were recovered with SACK");
    assert.ok(a.retransmissions + b.retransmissions > 0);
    assert.equal(NO_SACKS.rangeCount, 0);
    assert.equal(NO_SACKS.sackedBytes, 0);
    assert.equal(NO_RETRANSMISSIONS.count, 0);
    assert.equal(NO_RETRANSMISSIONS.lost, false);
    assert.equal(NO_OUT_OF_ORDER.rangeCount, 0);
  }
});

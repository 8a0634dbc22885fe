/**
 * Memory per connection, measured as the stack process's resident memory while the kernel's TCP holds
 * connections to it from the host side of a TUN device, in a namespace: 10,000 idle connections (discard,
 * nothing sent) cost less than 50 MiB above the baseline once the burst of handshakes has settled (the
 * stack collects its garbage then, see lib/stack/reclaim.ts), and once they close the memory is back within
 * 1.25 times the baseline within 10 s; 500 connections to chargen whose reader never reads cost less than
 * 384 MiB (the send buffers are bounded by autotuning and the memory budget). Issue 12's thresholds; the
 * full-size figures come from `deno task bench:abuse idle stalled`.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { startStack } from "../helpers/stack_process.ts";
import { addHostAddresses, holdConnections, rssKiB, stackStats } from "../helpers/abuse.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Source addresses on the host side: each gives its own range of ephemeral ports. */
const SOURCES = Array.from({ length: 8 }, (_, i) => `10.0.0.${101 + i}`);

/** A service's connection counters from `/stats`. */
async function serviceConnections(
  ns: Parameters<typeof stackStats>[0],
  service: string,
): Promise<{ active: number; refused: number }> {
  const stats = await stackStats(ns) as unknown as {
    services: Record<string, { connections: { active: number; refused: number } }>;
  };
  return stats.services[service].connections;
}

/** Waits (bounded) until `service` holds `count` connections; returns how many it holds. */
async function untilHeld(
  ns: Parameters<typeof stackStats>[0],
  service: string,
  count: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let active = 0;
  while (Date.now() < deadline) {
    active = (await serviceConnections(ns, service)).active;
    if (active >= count) break;
    await sleep(250);
  }
  return active;
}

privilegedTest(
  "memory: 10,000 idle connections cost < 50 MiB above the baseline, and it comes back within 1.25x in 10 s",
  async () => {
    await withNetns("ns-mem-idle", async (ns) => {
      const count = 10_000;
      const stack = await startStack(ns, ["--max-connections", String(count), "--services", "discard,http"]);
      try {
        await addHostAddresses(ns, "tun0", SOURCES);
        // The baseline is a stack that has served connections: the code paths of accepting, serving and
        // closing paged in and compiled (~6 MiB of the binary's pages), which are not the connections' cost.
        // 1,500 of them, so that the stack also gives back what the warm-up took (1,000 connections
        // opening or closing set off its reclaim, see lib/stack/reclaim.ts).
        const warmUp = await holdConnections(ns, 1500, "10.0.0.2", 9, SOURCES, 30);
        await sleep(3000);
        await warmUp.close();
        await sleep(4000);
        const baseline = rssKiB(stack.pid);
        // Bounded: the client gives up connecting after 60 s (the suite may be running beside it).
        const conns = await holdConnections(ns, count, "10.0.0.2", 9, SOURCES, 60);
        let closed = false;
        try {
          assert.equal(conns.connected, count, `only ${conns.connected} of ${count} connected`);
          const held = await untilHeld(ns, "discard", count, 20_000);
          assert.equal(held, count, "the discard service holds every connection (none refused)");
          // What the held connections cost once the burst of handshakes has settled (its garbage
          // collected): sampled for up to 10 s.
          let loaded = rssKiB(stack.pid);
          for (let i = 0; i < 20 && loaded - baseline >= 50 * 1024; i++) {
            await sleep(500);
            loaded = rssKiB(stack.pid);
          }
          const aboveMiB = (loaded - baseline) / 1024;
          console.log(
            `idle: baseline ${(baseline / 1024).toFixed(1)} MiB, ${count} connections +${
              aboveMiB.toFixed(1)
            } MiB ` +
              `(${((loaded - baseline) / count).toFixed(2)} KiB each)`,
          );
          assert.ok(aboveMiB < 50, `10,000 idle connections cost ${aboveMiB.toFixed(1)} MiB (limit 50)`);
          await conns.close();
          closed = true;
          // Memory comes back: sampled every 250 ms for 10 s after the close.
          const closedAt = Date.now();
          let rss = rssKiB(stack.pid);
          const samples: number[] = [];
          while (rss > 1.25 * baseline && Date.now() - closedAt < 10_000) {
            await sleep(250);
            rss = rssKiB(stack.pid);
            samples.push(Math.round(rss / 1024));
          }
          console.log(
            `idle: ${((Date.now() - closedAt) / 1000).toFixed(1)} s after closing ${
              (rss / 1024).toFixed(1)
            } MiB ` +
              `(${(rss / baseline).toFixed(2)}x baseline; MiB samples ${samples.join(" ")})`,
          );
          assert.ok(
            rss <= 1.25 * baseline,
            `10 s after closing: ${(rss / 1024).toFixed(1)} MiB, ${
              (rss / baseline).toFixed(2)
            }x the baseline`,
          );
          assert.equal((await serviceConnections(ns, "discard")).active, 0, "every connection ended");
        } finally {
          if (!closed) await conns.close();
        }
      } finally {
        await stack.stop();
      }
    });
  },
);

privilegedTest("memory: 500 connections to chargen whose reader never reads cost < 384 MiB", async () => {
  await withNetns("ns-mem-stalled", async (ns) => {
    const count = 500;
    const stack = await startStack(ns, ["--max-connections", String(count), "--services", "chargen,http"]);
    try {
      await addHostAddresses(ns, "tun0", SOURCES);
      await sleep(1000);
      const baseline = rssKiB(stack.pid);
      const conns = await holdConnections(ns, count, "10.0.0.2", 19, SOURCES, 60);
      try {
        assert.equal(conns.connected, count, `only ${conns.connected} of ${count} connected`);
        assert.equal(await untilHeld(ns, "chargen", count, 20_000), count, "chargen serves every connection");
        // Until the send buffers stop growing: the peers' windows closed, chargen waits on full buffers.
        let loaded = rssKiB(stack.pid);
        for (let i = 0; i < 16; i++) {
          await sleep(500);
          const now = rssKiB(stack.pid);
          if (now <= loaded + 1024 && i >= 4) {
            loaded = Math.max(loaded, now);
            break;
          }
          loaded = Math.max(loaded, now);
        }
        const memory = (await stackStats(ns)).tcp.memory as unknown as { used: number };
        const aboveMiB = (loaded - baseline) / 1024;
        console.log(
          `stalled: ${count} readers +${aboveMiB.toFixed(1)} MiB above ${(baseline / 1024).toFixed(1)} MiB ` +
            `(send buffers ${(memory.used / 2 ** 20).toFixed(1)} MiB)`,
        );
        assert.ok(memory.used > 0, "the send buffers hold the unread data");
        assert.ok(aboveMiB < 384, `500 stalled readers cost ${aboveMiB.toFixed(1)} MiB (limit 384)`);
      } finally {
        await conns.close();
      }
    } finally {
      await stack.stop();
    }
  });
});

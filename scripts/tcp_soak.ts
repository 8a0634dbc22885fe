/**
 * Long many-seed soak of the TCP core in the deterministic simulation. Every failure prints its seed
 * and profile; replay one with `--seed N --profile NAME`.
 *
 * Usage: deno run -A scripts/tcp_soak.ts [--seeds 200] [--first 1] [--mib 2] [--profile NAME]
 *        [--seed N] [--cc cubic|newreno]
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { TcpLayerOptions } from "../lib/tcp/config.ts";
import { type LinkProfile, runTransfer } from "../tests/helpers/tcp_sim.ts";

/** Link profiles of the soak (wider than the unit tests'). */
const PROFILES: Record<string, Partial<LinkProfile>> = {
  clean: { delayMs: 2 },
  loss1: { delayMs: 20, loss: 0.01 },
  loss5: { delayMs: 5, loss: 0.05 },
  reorderDup: { delayMs: 5, jitterMs: 4, reorder: 0.1, reorderDelayMs: 9, duplicate: 0.05 },
  mixed: { delayMs: 10, jitterMs: 2, loss: 0.03, duplicate: 0.01, reorder: 0.03, reorderDelayMs: 15 },
  bottleneck: { delayMs: 10, rateBytesPerMs: 12500, queuePackets: 30 },
  bottleneckLossy: { delayMs: 15, rateBytesPerMs: 5000, queuePackets: 20, loss: 0.01, jitterMs: 1 },
  heavyLoss: { delayMs: 3, loss: 0.15 },
};

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string", default: "200" },
    first: { type: "string", default: "1" },
    mib: { type: "string", default: "2" },
    profile: { type: "string" },
    seed: { type: "string" },
    cc: { type: "string", default: "cubic" },
  },
});

const bytes = Math.round(Number(values.mib) * (1 << 20));
const profiles = values.profile ? [values.profile] : Object.keys(PROFILES);
const seeds: number[] = values.seed !== undefined
  ? [Number(values.seed)]
  : Array.from({ length: Number(values.seeds) }, (_, i) => Number(values.first) + i);
const congestionControl = values.cc === "newreno" ? "newreno" : "cubic";

let failures = 0, runs = 0;
const t0 = performance.now();
for (const name of profiles) {
  const link = PROFILES[name];
  if (link === undefined) throw new Error(`unknown profile ${name}`);
  for (const seed of seeds) {
    // Vary the options with the seed: negotiated-away options (every 5th), small buffers and a small
    // out-of-order queue (every 7th), a TSO-offloading sender (every 11th), losing whole super-segments
    // (every 22nd).
    const plain = seed % 5 === 0;
    const small = seed % 7 === 0;
    const options: TcpLayerOptions = small
      ? { congestionControl, sendBufferSize: 64 << 10, recvBufferSize: 48 << 10, maxOutOfOrderRanges: 4 }
      : { congestionControl };
    const result = runTransfer(seed, {
      aToB: bytes,
      bToA: seed % 3 === 0 ? 0 : bytes >> 1,
      link,
      options,
      optionsB: plain ? { ...options, sack: false, timestamps: false, windowScaling: false } : undefined,
      offloadA: seed % 11 === 0,
      burstLossA: seed % 22 === 0,
      limitMs: 3_600_000,
    });
    runs++;
    if (!result.ok) {
      failures++;
      console.log(`FAIL profile=${name} ${result.failure}`);
    }
  }
  console.log(`${name}: done (${runs} runs, ${failures} failures so far)`);
}
console.log(`${runs} runs, ${failures} failures, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
if (failures > 0) Deno.exit(1);

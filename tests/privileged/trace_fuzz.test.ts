/**
 * The tracer's BPF parser fed the fuzz corpus (IPv4, IPv6, VLAN, ARP, mutated, truncated and lying
 * frames) on a veth in namespaces, at tcx and at XDP: the programs stay loaded, every frame is seen (the
 * trace's own counters), the printer prints each without failing, and an expression selects exactly what
 * tcpdump selects from the same frames. The long version: `deno task fuzz --trace`.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { traceCorpus, traceFuzzRounds } from "../helpers/fuzz/trace_corpus.ts";

privilegedTest("trace: the fuzz corpus through the BPF parser at tcx and XDP, every frame seen", async () => {
  const frames = traceCorpus(20261130, 1500);
  const rounds = await traceFuzzRounds(frames, ["tcx", "xdp"]);
  assert.deepEqual(rounds.map((r) => r.hook), ["tcx", "xdp"]);
  // XDP sees every frame; tc only those the kernel did not drop before it (a tag cut short).
  assert.equal(rounds[1].all.seen, 1500);
  assert.equal(rounds[0].all.seen, 1500 - rounds[0].beforeTc);
  assert.ok(rounds[0].filtered.matched > 100, "the expression matched IPv4, IPv6 and ARP frames");
});

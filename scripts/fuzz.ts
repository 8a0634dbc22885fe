/**
 * `deno task fuzz`: structure-aware fuzzing of every wire parser and the whole protocol core (IP, Ethernet
 * and DHCP setups), seeded and reproducible. Bounded by sessions and by time; on a failure it prints the
 * seed, the case, the input and the command that replays it, and exits 1.
 *
 *   deno task fuzz                         # 60 s from a random seed
 *   deno task fuzz --seed 7 --time 600     # ten minutes from seed 7
 *   deno task fuzz --seed 123 --sessions 1 --cases 57 --setup ip   # replay a reported failure
 *   deno task fuzz --trace --seed 7 --frames 50000   # the tracer's BPF parser on the corpus (root)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runFuzz } from "../tests/helpers/fuzz/run.ts";
import { type Setup, SETUPS } from "../tests/helpers/fuzz/core.ts";
import { traceCorpus, traceFuzzRounds } from "../tests/helpers/fuzz/trace_corpus.ts";

const USAGE =
  `usage: deno task fuzz [--seed N] [--time SECONDS] [--sessions N] [--cases N] [--setup ip|ethernet|dhcp|services]
  --seed      first session's seed (default: random; printed)
  --time      wall-clock budget in seconds (default 60)
  --sessions  most sessions, one fresh core each (default: unbounded within --time)
  --cases     cases per session (default 2000)
  --setup     only this setup (default: ip, ethernet, dhcp, services in turn)
  --trace     instead: send a seeded corpus of --frames frames through netstack trace on a veth in
              namespaces (tcx and XDP; needs root), assert every frame seen and the filter exact
  --frames    frames of the --trace corpus (default 20000)`;

function fail(message: string): never {
  console.error(`fuzz: ${message}\nhint: deno task fuzz --help`);
  Deno.exit(2);
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seed: { type: "string" },
    time: { type: "string", default: "60" },
    sessions: { type: "string" },
    cases: { type: "string", default: "2000" },
    setup: { type: "string" },
    trace: { type: "boolean" },
    frames: { type: "string", default: "20000" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const number = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) fail(`--${name} must be a non-negative number, not '${text}'`);
  return n;
};
const seed = number("seed", values.seed, crypto.getRandomValues(new Uint32Array(1))[0]) >>> 0;
const setups: Setup[] = values.setup === undefined ? [...SETUPS] : [values.setup as Setup];
if (!setups.every((s) => SETUPS.includes(s))) {
  fail(`unknown setup '${values.setup}'`);
}
if (values.trace) {
  const count = number("frames", values.frames, 20000);
  console.log(
    `fuzz --trace: seed ${seed}, ${count} frames (replay with --trace --seed ${seed} --frames ${count})`,
  );
  const started = performance.now();
  try {
    const rounds = await traceFuzzRounds(traceCorpus(seed, count), ["tcx", "xdp"]);
    for (const r of rounds) console.log(`fuzz --trace: ${JSON.stringify(r)}`);
  } catch (error) {
    console.error(`fuzz --trace: FAILED at seed ${seed}: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `fuzz --trace: no failure, ${seconds.toFixed(1)} s (${Math.round(2 * count / seconds)} frames/s)`,
  );
  Deno.exit(0);
}
const timeMs = number("time", values.time, 60) * 1000;
console.log(`fuzz: seed ${seed}, setups ${setups.join(",")}, up to ${timeMs / 1000} s`);
const started = performance.now();
let lastReport = started;
const result = await runFuzz({
  seed,
  cases: number("cases", values.cases, 2000),
  sessions: number("sessions", values.sessions, Number.MAX_SAFE_INTEGER),
  timeMs,
  setups,
  onSession: (s) => {
    if (performance.now() - lastReport < 5000) return;
    lastReport = performance.now();
    console.log(
      `fuzz: session seed ${s.seed} (${s.setup}): ${s.cases} cases, ${s.mutated} mutated, ${s.sent} sent`,
    );
  },
});
const seconds = (performance.now() - started) / 1000;
const mutated = result.sessions.reduce((n, s) => n + s.mutated, 0);
const parserRuns = result.sessions.reduce((n, s) => n + s.parserRuns, 0);
console.log(
  `fuzz: ${result.cases} cases (${mutated} mutated, ${parserRuns} parser runs) in ${result.sessions.length} ` +
    `sessions, ${seconds.toFixed(1)} s, ${Math.round(result.cases / seconds)} cases/s`,
);
if (result.failure !== null) {
  const f = result.failure;
  console.error(`fuzz: FAILED at seed ${f.seed} (${f.setup}), case ${f.caseIndex} (${f.kind})`);
  console.error(`fuzz: input ${f.inputHex}`);
  console.error(`fuzz: ${f.error}`);
  console.error(`fuzz: replay with: ${f.replay}`);
  Deno.exit(1);
}
const total = (key: "drops" | "reached") => {
  const sums = new Map<string, number>();
  for (const session of result.sessions) {
    for (const [name, n] of Object.entries(session[key])) sums.set(name, (sums.get(name) ?? 0) + n);
  }
  return [...sums].sort((a, b) => b[1] - a[1]);
};
const slowest = result.sessions.reduce((a, b) => b.slowest.ms > a.slowest.ms ? b : a, result.sessions[0]);
if (slowest !== undefined) {
  console.log(
    `fuzz: slowest case ${slowest.slowest.ms.toFixed(1)} ms (seed ${slowest.seed}, ${slowest.setup}, ` +
      `case ${slowest.slowest.caseIndex})`,
  );
}
console.log("fuzz: reached (all sessions):");
for (const [name, n] of total("reached")) console.log(`  ${name.padEnd(28)} ${n}`);
console.log("fuzz: drops by reason (all sessions):");
for (const [name, n] of total("drops")) console.log(`  ${name.padEnd(40)} ${n}`);
console.log("fuzz: no failure");

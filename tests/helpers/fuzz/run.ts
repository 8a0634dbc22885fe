/**
 * Fuzzing: the run. Sessions of a fixed number of cases, each on a fresh core with its own seed (seed,
 * seed + 1, …), so that any failure replays from its session seed alone: `deno task fuzz --seed S
 * --sessions 1 --cases N --setup X`. Each case: the peer makes an input, mutates it most of the time, every
 * wire parser reads it, the core takes it at a virtual time that sometimes jumps (timers fire), and then the
 * accounting equations must hold. Any exception, a malformed packet sent, or an unaccounted input fails the
 * case.
 *
 * @module
 */

import { Prng } from "../../../lib/prng.ts";
import { dropsByReason, unaccounted } from "./accounting.ts";
import { FuzzCore, type Setup } from "./core.ts";
import { Dice, mutate } from "./mutate.ts";
import { runParsers } from "./parsers.ts";
import { type Input, Peer } from "./peer.ts";

/** Options of {@link runFuzz}. */
export interface FuzzOptions {
  /** First session's seed. */
  seed: number;
  /** Cases per session (a fresh core each session). */
  cases: number;
  /** Most sessions; the run also stops at `timeMs`. */
  sessions: number;
  /** Wall-clock budget in ms (checked between cases). */
  timeMs: number;
  /** Setups to cycle through, one per session. */
  setups: readonly Setup[];
  /** Called after each session (progress). */
  onSession?: (summary: SessionSummary) => void;
}

/** What one session did. */
export interface SessionSummary {
  /** Its seed. */
  seed: number;
  /** Its setup. */
  setup: Setup;
  /** Cases run. */
  cases: number;
  /** Of which mutated. */
  mutated: number;
  /** Packets the core sent. */
  sent: number;
  /** Parser runs. */
  parserRuns: number;
  /** The core's drop counters at the end, `layer reason` → count. */
  drops: Record<string, number>;
  /** How deep inputs got: packets received by each layer, answers, connections. */
  reached: Record<string, number>;
  /** The slowest case (parsers and core), ms, and its index: a hang shows here first. */
  slowest: { ms: number; caseIndex: number };
}

/** A failing case, with what replays it. */
export interface FuzzFailure {
  /** The session's seed. */
  seed: number;
  /** The session's setup. */
  setup: Setup;
  /** Index of the failing case in the session (0-based). */
  caseIndex: number;
  /** Generator of the input. */
  kind: string;
  /** The input, hex. */
  inputHex: string;
  /** What went wrong. */
  error: string;
  /** The command line that replays it. */
  replay: string;
}

/** The result of a run. */
export interface FuzzResult {
  /** Sessions completed (or stopped by a failure). */
  sessions: SessionSummary[];
  /** The first failure, if any (the run stops there). */
  failure: FuzzFailure | null;
  /** Total cases. */
  cases: number;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Runs one session; returns its summary, or a failure. */
export async function runSession(
  seed: number,
  setup: Setup,
  cases: number,
): Promise<SessionSummary | FuzzFailure> {
  const prng = new Prng(seed);
  const dice = new Dice(() => prng.next());
  const peer = new Peer(setup, dice);
  let now = 1_000_000;
  let sent = 0;
  const core = new FuzzCore(setup, now, dice.random, (bytes) => {
    sent++;
    peer.observe(bytes);
  });
  const summary: SessionSummary = {
    seed,
    setup,
    cases: 0,
    mutated: 0,
    sent: 0,
    parserRuns: 0,
    drops: {},
    reached: {},
    slowest: { ms: 0, caseIndex: -1 },
  };
  let input: Input = { bytes: new Uint8Array(0), shape: "raw", kind: "none" };
  let bytes = input.bytes;
  for (let i = 0; i < cases; i++) {
    const started = performance.now();
    try {
      // Time moves mostly in small steps, sometimes far enough for every timer to fire.
      const r = dice.int(100);
      now += r < 70 ? dice.int(5) : r < 97 ? dice.int(500) : 1000 * (1 + dice.int(120));
      if (i === 5 || i === 200) core.connect(false);
      if (i === 10 || i === 300) core.connect(true);
      input = peer.next(now);
      bytes = input.bytes;
      if (dice.chance(0.7)) {
        bytes = mutate(bytes, input.shape, dice);
        summary.mutated++;
      }
      summary.parserRuns += runParsers(bytes);
      core.ingress(bytes, now, dice.chance(0.25));
      if (core.services !== null) await core.settle();
      const problems = unaccounted(core.stats());
      if (problems.length > 0) throw new Error(`unaccounted input: ${problems.join("; ")}`);
      summary.cases++;
      const ms = performance.now() - started;
      if (ms > summary.slowest.ms) summary.slowest = { ms, caseIndex: i };
    } catch (error) {
      return {
        seed,
        setup,
        caseIndex: i,
        kind: input.kind,
        inputHex: hex(bytes),
        error: error instanceof Error
          ? `${error.name}: ${error.message}\n${error.stack ?? ""}`
          : String(error),
        replay: `deno task fuzz --seed ${seed} --sessions 1 --cases ${i + 1} --setup ${setup}`,
      };
    }
  }
  summary.sent = sent;
  const c = core.stats();
  summary.drops = Object.fromEntries(dropsByReason(c));
  summary.reached = {
    "ipv4 rx": c.ipv4.rx,
    "ipv6 rx": c.ipv6.rx,
    "ipv4 reassembled": c.ipv4.reassembled,
    "ipv6 reassembled": c.ipv6.reassembled,
    "icmp rx": c.icmp.rx,
    "icmp6 rx": c.icmp6.rx,
    "icmp6 echo replies": c.icmp6.echoReplies,
    "ndp rx": c.ndp?.rx ?? 0,
    "udp rx": c.udp.rx,
    "tcp passive opens": c.tcp.passiveOpens,
    "tcp to connections": c.tcp.toConnections,
    "tcp ipv6 connections": core.ipv6Connections,
  };
  if (core.services !== null) {
    // Connections the services took (echo, discard, chargen), and the bytes they sent back.
    let accepted = 0;
    for (const service of Object.values(core.services.stats())) {
      accepted += (service as { connections: { accepted: number } }).connections.accepted;
    }
    summary.reached["services accepted"] = accepted;
    summary.reached["tcp bytes sent"] = core.core.tcp.stats().bytesOut ?? 0;
  }
  return summary;
}

/** Runs sessions until the count or the time budget is spent, or a case fails. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const started = performance.now();
  const result: FuzzResult = { sessions: [], failure: null, cases: 0 };
  for (let s = 0; s < options.sessions; s++) {
    if (performance.now() - started > options.timeMs) break;
    const setup = options.setups[s % options.setups.length];
    const outcome = await runSession((options.seed + s) >>> 0, setup, options.cases);
    if ("error" in outcome) {
      result.failure = outcome;
      result.cases += outcome.caseIndex + 1;
      break;
    }
    result.sessions.push(outcome);
    result.cases += outcome.cases;
    options.onSession?.(outcome);
  }
  return result;
}

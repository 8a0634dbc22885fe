/**
 * netstack trace EXPRESSION against tcpdump as the oracle. A corpus of varied frames (built with scapy:
 * tests/helpers/filter_corpus.py) is replayed from a namespace onto veth pairs; tcpdump captures it once,
 * unfiltered, on the receiving side; then for every expression the frames `netstack trace` captures
 * (filtered in its XDP program) must be exactly those `tcpdump -r full.pcap EXPRESSION` selects, and the
 * kernel counters must say so: seen = the corpus, matched = tcpdump's count (< seen: filtered in the
 * kernel), nothing lost.
 *
 * Efficiency: PAIRS veth pairs, one tracer per pair and expression, all tracers of a round attached at
 * once and fed by one replay.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { Netns, runOk } from "../helpers/netns.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";
import { TracerProcess } from "../helpers/trace_veth.ts";
import { EXPRESSIONS } from "../helpers/filter_expressions.ts";

const CORPUS_SCRIPT = new URL("../helpers/filter_corpus.py", import.meta.url).pathname;
const PAIRS = 12;

function hex(frame: Uint8Array): string {
  return Array.from(frame, (b) => b.toString(16).padStart(2, "0")).join("");
}

function framesOf(path: string): string[] {
  return parsePcap(Deno.readFileSync(path)).records.map((p) => hex(p.data)).sort();
}

/** Two namespaces with PAIRS veth pairs: `sN` (sender side) and `rN` (receiver side, no addresses). */
async function withPairs<T>(fn: (sender: Netns, receiver: Netns) => Promise<T>): Promise<T> {
  const sender = await Netns.create("ns-expr");
  let receiver: Netns | undefined;
  try {
    receiver = await Netns.create("ns-expr");
    for (const ns of [sender, receiver]) {
      // No addresses and no IPv6: the kernels send nothing of their own and answer nothing.
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    for (let i = 0; i < PAIRS; i++) {
      await runOk(
        ["ip", "link", "add", `s${i}`, "netns", sender.name, "type", "veth", "peer", "name", `r${i}`]
          .concat(["netns", receiver.name]),
      );
      await sender.exec(["ip", "link", "set", `s${i}`, "up"]);
      await receiver.exec(["ip", "link", "set", `r${i}`, "up"]);
    }
    // Frames sent before the link watcher has activated the device (carrier, qdisc) are dropped.
    const deadline = Date.now() + 10_000;
    for (const [ns, side] of [[sender, "s"], [receiver, "r"]] as const) {
      for (let i = 0; i < PAIRS; i++) {
        while ((await ns.exec(["cat", `/sys/class/net/${side}${i}/operstate`])).trim() !== "up") {
          if (Date.now() > deadline) throw new Error(`${side}${i} did not come up`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    return await fn(sender, receiver);
  } finally {
    await receiver?.delete();
    await sender.delete();
  }
}

function replay(sender: Netns, corpus: string, count: number): Promise<string> {
  const ifaces = Array.from({ length: count }, (_, i) => `s${i}`);
  return sender.exec(["/usr/bin/python3", CORPUS_SCRIPT, "send", corpus, ...ifaces], { timeoutMs: 20_000 });
}

interface Summary {
  seen: number;
  matched: number;
  captured: number;
  lost: number;
}

function summary(stderr: string): Summary {
  const match = /seen (\d+) matched (\d+) captured (\d+) lost (\d+)/.exec(stderr);
  assert.ok(match, `no summary in: ${stderr}`);
  const [seen, matched, captured, lost] = match.slice(1).map(Number);
  return { seen, matched, captured, lost };
}

privilegedTest("trace expressions: the kernel selects exactly what tcpdump -r selects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "netstack-expr-" });
  try {
    const corpus = `${dir}/corpus.pcap`;
    await runOk(["/usr/bin/python3", CORPUS_SCRIPT, "corpus", corpus], { timeoutMs: 30_000 });
    await withPairs(async (sender, receiver) => {
      // The reference: tcpdump, unfiltered, on the receiving side of the link.
      const full = `${dir}/full.pcap`;
      const tcpdump = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          receiver.name,
          "tcpdump",
          "-i",
          "r0",
          "-Q",
          "in",
          "--immediate-mode",
          "-U",
          "-w",
          full,
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const killer = setTimeout(() => tcpdump.kill("SIGKILL"), 20_000);
      const reader = tcpdump.stderr.getReader();
      let banner = "";
      while (!banner.includes("listening on")) {
        const { value, done } = await reader.read();
        if (done) break;
        banner += new TextDecoder().decode(value);
      }
      const sent = Number((await replay(sender, corpus, 1)).trim());
      await new Promise((r) => setTimeout(r, 300));
      tcpdump.kill("SIGINT");
      reader.releaseLock();
      await tcpdump.stderr.cancel();
      await tcpdump.status;
      clearTimeout(killer);
      const reference = framesOf(full);
      assert.equal(reference.length, sent, "tcpdump saw every frame of the corpus");
      assert.deepEqual(reference, framesOf(corpus), "the link delivers the corpus unchanged");

      let selective = 0;
      for (let start = 0; start < EXPRESSIONS.length; start += PAIRS) {
        const batch = EXPRESSIONS.slice(start, start + PAIRS);
        const tracers = await Promise.all(batch.map((expression, i) =>
          TracerProcess.start(
            receiver,
            [
              "-i",
              `r${i}`,
              "--direction",
              "ingress",
              "-q",
              "-s",
              "4096",
              "-w",
              `${dir}/t${i}.pcap`,
              expression,
            ],
            1,
            60_000,
          )
        ));
        await replay(sender, corpus, batch.length);
        await new Promise((r) => setTimeout(r, 300));
        for (const tracer of tracers) tracer.kill("SIGINT");
        for (const [i, tracer] of tracers.entries()) {
          const expression = batch[i];
          assert.equal(await tracer.wait(), 0, `${expression}: ${tracer.stderr}`);
          const expected =
            (await runOk(["tcpdump", "-r", full, "-w", `${dir}/e${i}.pcap`, expression]),
              framesOf(`${dir}/e${i}.pcap`));
          assert.deepEqual(
            framesOf(`${dir}/t${i}.pcap`),
            expected,
            `'${expression}' captures what tcpdump -r selects`,
          );
          const counts = summary(tracer.stderr);
          assert.deepEqual(counts, {
            seen: sent,
            matched: expected.length,
            captured: expected.length,
            lost: 0,
          }, expression);
          if (counts.matched < counts.seen) selective++;
        }
      }
      assert.equal(selective, EXPRESSIONS.length, "every expression filtered in the kernel: matched < seen");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

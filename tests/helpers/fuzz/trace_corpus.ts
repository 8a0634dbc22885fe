/**
 * Fuzzing the tracer: the fuzz corpus (the Ethernet peer's frames, IPv4 and IPv6, ARP, mutated most of
 * the time, some behind one or two VLAN tags, some cut short or with lying lengths) sent onto a veth pair
 * between two fresh namespaces (no addresses, IPv6 off: the kernels send nothing of their own) while
 * `netstack trace` is attached to the receiving end. One round per ingress hook: a printing tracer that
 * takes everything (text, through the printer) and a JSON one with an expression, side by side. The
 * round checks that both stay loaded, that each saw exactly the frames sent (its own counters), that the
 * printer printed a line per frame without failing, and that the expression selected exactly what tcpdump
 * selects from the same frames.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Prng } from "../../../lib/prng.ts";
import { LinkType, PcapWriter } from "../../../lib/pcap/writer.ts";
import { parsePcap } from "../../../lib/pcap/reader.ts";
import { Netns, runOk } from "../netns.ts";
import { attachedPrograms, TracerProcess } from "../trace_veth.ts";
import { Dice, mutate } from "./mutate.ts";
import { Peer } from "./peer.ts";

/** The largest frame a veth takes at MTU 1500 (the corpus cuts longer ones: a length that lies). */
const MAX_FRAME = 1514;

/** A seeded corpus of `count` Ethernet frames (14 to 1514 bytes). */
export function traceCorpus(seed: number, count: number): Uint8Array[] {
  const prng = new Prng(seed);
  const dice = new Dice(() => prng.next());
  const peer = new Peer("ethernet", dice);
  const frames: Uint8Array[] = [];
  for (let now = 1_000_000; frames.length < count; now += 1 + dice.int(50)) {
    const input = peer.next(now);
    let frame = dice.chance(0.7) ? mutate(input.bytes, input.shape, dice) : input.bytes;
    if (frame.length >= 14 && dice.chance(0.15)) {
      // One or two VLAN tags (802.1Q, 802.1ad outside) before the EtherType.
      const tags = dice.chance(0.7) ? [0x8100] : [0x88a8, 0x8100];
      const out = new Uint8Array(frame.length + 4 * tags.length);
      out.set(frame.subarray(0, 12));
      tags.forEach((tpid, i) => out.set([tpid >> 8, tpid & 0xff, dice.int(16), dice.int(256)], 12 + 4 * i));
      out.set(frame.subarray(12), 12 + 4 * tags.length);
      frame = out;
    }
    if (frame.length < 14) {
      const padded = new Uint8Array(14);
      padded.set(frame);
      frame = padded;
    }
    frames.push(frame.length > MAX_FRAME ? frame.slice(0, MAX_FRAME) : frame);
  }
  return frames;
}

/**
 * Frames the kernel drops before tc ingress: a VLAN-tagged frame with fewer than 6 bytes after its
 * Ethernet header (`skb_vlan_untag` needs the tag and the inner EtherType). XDP runs earlier and sees them.
 */
export function droppedBeforeTc(frames: Uint8Array[]): number {
  return frames.filter((f) => {
    const tpid = (f[12] << 8) | f[13];
    return (tpid === 0x8100 || tpid === 0x88a8) && f.length < 14 + 6;
  }).length;
}

/** What one round measured. */
export interface TraceRound {
  /** The ingress hook. */
  hook: "tcx" | "xdp";
  /** Frames sent. */
  sent: number;
  /** Frames the kernel dropped before tc (see {@link droppedBeforeTc}). */
  beforeTc: number;
  /** The printing tracer's counters and lines printed. */
  all: { seen: number; captured: number; lost: number; lines: number };
  /** The JSON tracer with the expression. */
  filtered: { seen: number; matched: number; captured: number; lost: number; records: number };
  /** What tcpdump selects from the corpus with the same expression. */
  tcpdump: number;
}

/** The expression the filtering tracer runs (over IPv4, IPv6, VLAN and ARP at once). */
export const TRACE_EXPRESSION = "udp or arp or (ip6 and tcp) or icmp6";

function summary(stderr: string) {
  const m = /seen (\d+) matched (\d+) captured (\d+) lost (\d+)/.exec(stderr);
  assert.ok(m, `no summary in: ${stderr}`);
  const [seen, matched, captured, lost] = m.slice(1).map(Number);
  return { seen, matched, captured, lost };
}

/**
 * Sends `frames` through a veth pair in fresh namespaces once per hook with the tracers attached, and
 * asserts what the module comment says. Bounded: the tracers' lives, the sender's, each wait.
 */
export async function traceFuzzRounds(frames: Uint8Array[], hooks: ("tcx" | "xdp")[]): Promise<TraceRound[]> {
  const dir = await Deno.makeTempDir({ prefix: "netstack-tracefuzz-" });
  const sender = await Netns.create("ns-tfz");
  let receiver: Netns | undefined;
  try {
    const corpus = `${dir}/corpus.pcap`;
    const file = Deno.openSync(corpus, { write: true, create: true, truncate: true });
    const writer = new PcapWriter(file, { linkType: LinkType.ETHERNET });
    for (const f of frames) writer.write(f, 0);
    writer.close();
    file.close();
    const selected = `${dir}/selected.pcap`;
    await runOk(["tcpdump", "-r", corpus, "-w", selected, TRACE_EXPRESSION], { timeoutMs: 30_000 });
    const tcpdump = parsePcap(Deno.readFileSync(selected)).records.length;
    const hex = `${dir}/frames.hex`;
    Deno.writeTextFileSync(
      hex,
      frames.map((f) => Array.from(f, (b) => b.toString(16).padStart(2, "0")).join("")).join("\n"),
    );

    receiver = await Netns.create("ns-tfz");
    for (const ns of [sender, receiver]) {
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
      await ns.exec(["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    }
    await runOk([
      "ip",
      "link",
      "add",
      "s0",
      "netns",
      sender.name,
      "type",
      "veth",
      "peer",
      "name",
      "r0",
      "netns",
      receiver.name,
    ]);
    await sender.exec(["ip", "link", "set", "s0", "up"]);
    await receiver.exec(["ip", "link", "set", "r0", "up"]);
    const deadline = Date.now() + 10_000;
    for (const [ns, name] of [[sender, "s0"], [receiver, "r0"]] as const) {
      while ((await ns.exec(["cat", `/sys/class/net/${name}/operstate`])).trim() !== "up") {
        if (Date.now() > deadline) throw new Error(`${name} did not come up`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const rounds: TraceRound[] = [];
    const limitMs = 60_000 + frames.length * 5;
    for (const hook of hooks) {
      const all = await TracerProcess.start(
        receiver,
        ["-i", "r0", "--direction", "ingress", "--ingress-hook", hook],
        1,
        limitMs,
      );
      // XDP takes one program per device: the filtering tracer is on tcx in both rounds.
      const filtered = await TracerProcess.start(
        receiver,
        ["-i", "r0", "--direction", "ingress", "--ingress-hook", "tcx", "--json", TRACE_EXPRESSION],
        1,
        limitMs,
      );
      try {
        // Paced so that the ring buffers keep up; bounded by the file's frames, once.
        const script = `import socket,time
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(("s0",0))
n=0
for line in open(${JSON.stringify(hex)}):
    try:
        s.send(bytes.fromhex(line.strip())); n+=1
    except OSError:
        pass
    if n % 50 == 0: time.sleep(0.002)
print(n)`;
        const sent = Number(
          (await sender.exec(["/usr/bin/python3", "-c", script], { timeoutMs: 30_000 + frames.length * 2 }))
            .trim(),
        );
        await new Promise((r) => setTimeout(r, 500));
        const attached = await attachedPrograms(receiver, "r0") as { xdp: boolean; tcxIngress?: number };
        if (hook === "xdp") assert.equal(attached.xdp, true, "the XDP program stays attached");
        assert.ok(
          (attached.tcxIngress ?? 0) >= 1,
          `the tcx program stays attached: ${JSON.stringify(attached)}`,
        );
        all.kill("SIGINT");
        filtered.kill("SIGINT");
        assert.equal(await all.wait(), 0, all.stderr);
        assert.equal(await filtered.wait(), 0, filtered.stderr);
        const a = summary(all.stderr), f = summary(filtered.stderr);
        const lines = all.stdout.split("\n").filter((l) => l !== "").length;
        const records = filtered.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
        const beforeTc = droppedBeforeTc(frames);
        const round: TraceRound = {
          hook,
          sent,
          beforeTc,
          all: { seen: a.seen, captured: a.captured, lost: a.lost, lines },
          filtered: {
            seen: f.seen,
            matched: f.matched,
            captured: f.captured,
            lost: f.lost,
            records: records.length,
          },
          tcpdump,
        };
        rounds.push(round);
        const label = `${hook}: ${JSON.stringify(round)}`;
        assert.equal(sent, frames.length, `every frame sent (${label})`);
        const reaching = hook === "xdp" ? sent : sent - beforeTc;
        assert.equal(a.seen, reaching, `the tracer saw every frame (${label})`);
        assert.equal(a.lost, 0, label);
        assert.equal(a.captured, reaching, label);
        assert.equal(lines, reaching, `the printer printed a line per frame (${label})`);
        assert.doesNotMatch(all.stderr + filtered.stderr, /error|exception|\n\s+at /i, "nothing failed");
        assert.equal(f.seen, sent - beforeTc, label);
        assert.equal(f.matched, tcpdump, `the expression selects what tcpdump selects (${label})`);
        assert.equal(f.captured, f.matched, label);
        assert.equal(records.length, f.matched, label);
        assert.ok(f.matched > 0 && f.matched < f.seen, `the expression filters (${label})`);
      } finally {
        all.kill("SIGKILL");
        filtered.kill("SIGKILL");
        await all.wait();
        await filtered.wait();
      }
    }
    return rounds;
  } finally {
    await receiver?.delete();
    await sender.delete();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The classic BPF side of tcpdump expressions: libpcap compiles (through FFI), netstack's interpreter
 * and its eBPF translation (run in a checking eBPF interpreter) must agree with libpcap's own
 * interpreter (`pcap_offline_filter`) on every frame of a corpus, including truncated and mutated ones;
 * and the `-d` text must be tcpdump's.
 */

import assert from "node:assert/strict";
import { FilterSyntaxError, pcapCompile, pcapOfflineFilter } from "../../lib/ffi/pcap_compile.ts";
import { Bpf, checkProgram, formatProgram, UnsupportedFilterError } from "../../lib/filter/cbpf.ts";
import { CbpfFilter } from "../../lib/filter/interpreter.ts";
import { translateToEbpf } from "../../lib/filter/to_ebpf.ts";
import { LinkType, PcapWriter } from "../../lib/pcap/writer.ts";
import { EXPRESSIONS, unitCorpus } from "../helpers/filter_expressions.ts";
import { assertAllReachable, runEbpf } from "../helpers/ebpf_vm.ts";

const ETHERNET = 1;
const corpus = unitCorpus();

Deno.test("filter: interpreter and eBPF translation agree with pcap_offline_filter on the corpus", () => {
  let matches = 0;
  for (const expression of EXPRESSIONS) {
    const program = pcapCompile(expression, ETHERNET);
    const filter = new CbpfFilter(program);
    const ebpf = translateToEbpf(program);
    assertAllReachable(ebpf);
    let selected = 0;
    for (const frame of corpus) {
      for (const wire of [frame.length, frame.length + 700]) {
        const reference = pcapOfflineFilter(program, frame, wire) !== 0;
        assert.equal(filter.matches(frame, wire), reference, `interpreter: '${expression}' on ${hex(frame)}`);
        assert.equal(runEbpf(ebpf, frame, wire) !== 0, reference, `eBPF: '${expression}' on ${hex(frame)}`);
        if (reference) selected++;
      }
    }
    // Every expression selects something and rejects something: the corpus exercises both branches.
    assert.ok(selected > 0 && selected < corpus.length * 2, `'${expression}' selects ${selected}`);
    matches += selected;
  }
  assert.ok(matches > 0);
});

Deno.test("filter: with the outer VLAN tag out of the frame (as tc sees it), eBPF matches as on the whole frame", () => {
  // The frame as the kernel holds it at tc: the outer tag removed, passed beside it (r4).
  const tagged = corpus.filter((f) => f.length >= 18 && (f[12] << 8 | f[13]) === 0x8100);
  assert.ok(tagged.length >= 2, "the corpus has VLAN-tagged frames");
  let checked = 0;
  for (const expression of [...EXPRESSIONS, "vlan 100", "ether[12:4] = 0x81000064", "ether[13:2] > 0"]) {
    const program = pcapCompile(expression, ETHERNET);
    const ebpf = translateToEbpf(program);
    for (const frame of tagged) {
      const tag = (frame[12] << 24 | frame[13] << 16 | frame[14] << 8 | frame[15]) >>> 0;
      const untagged = new Uint8Array([...frame.subarray(0, 12), ...frame.subarray(16)]);
      // Truncated copies too (never into the MAC addresses, which the tag follows): a load past the end
      // fails as it would on the whole frame.
      for (const cut of [untagged.length, 20, 14, 12]) {
        const packet = untagged.subarray(0, cut);
        const whole = frame.subarray(0, cut + 4);
        const reference = pcapOfflineFilter(program, whole, frame.length) !== 0;
        assert.equal(
          runEbpf(ebpf, packet, frame.length, 1e6, tag) !== 0,
          reference,
          `'${expression}' on ${hex(whole)} with its tag offloaded`,
        );
        checked++;
      }
    }
  }
  assert.ok(checked > 100);
});

Deno.test("filter: hand-written programs cover ALU, X shifts, division by zero and scratch memory", () => {
  const frame = new Uint8Array([0x40, 3, 0, 7, 0xff, 0xff, 0xff, 0xff, 33, 0, 0, 0]);
  const ld = (k: number) => ({ code: Bpf.LD | Bpf.B | Bpf.ABS, jt: 0, jf: 0, k });
  const ldx = (k: number) => ({ code: Bpf.LDX | Bpf.B | Bpf.MSH, jt: 0, jf: 0, k });
  const alu = (op: number, k = 0, x = false) => ({
    code: Bpf.ALU | op | (x ? Bpf.X : Bpf.K),
    jt: 0,
    jf: 0,
    k,
  });
  const retA = { code: Bpf.RET | Bpf.A, jt: 0, jf: 0, k: 0 };
  const programs = [
    [ld(1), { code: Bpf.LDX | Bpf.IMM, jt: 0, jf: 0, k: 0 }, alu(Bpf.DIV, 0, true), retA], // A / 0
    [ld(1), { code: Bpf.LDX | Bpf.IMM, jt: 0, jf: 0, k: 0 }, alu(Bpf.MOD, 0, true), retA],
    [ld(3), ldx(8), alu(Bpf.LSH, 0, true), retA], // X = 4 * (33 & 15) = 4
    [ld(3), { code: Bpf.LDX | Bpf.IMM, jt: 0, jf: 0, k: 40 }, alu(Bpf.LSH, 0, true), alu(Bpf.OR, 1), retA],
    [ld(3), { code: Bpf.LDX | Bpf.IMM, jt: 0, jf: 0, k: 33 }, alu(Bpf.RSH, 0, true), alu(Bpf.ADD, 5), retA],
    [{ code: Bpf.LD | Bpf.W | Bpf.ABS, jt: 0, jf: 0, k: 4 }, alu(Bpf.NEG), alu(Bpf.MUL, 0x10001), retA],
    [
      { code: Bpf.LD | Bpf.W | Bpf.ABS, jt: 0, jf: 0, k: 4 },
      { code: Bpf.ST, jt: 0, jf: 0, k: 15 },
      ld(3),
      { code: Bpf.MISC | Bpf.TAX, jt: 0, jf: 0, k: 0 },
      { code: Bpf.LD | Bpf.MEM, jt: 0, jf: 0, k: 15 },
      alu(Bpf.SUB, 0, true),
      { code: Bpf.STX, jt: 0, jf: 0, k: 2 },
      { code: Bpf.LDX | Bpf.MEM, jt: 0, jf: 0, k: 2 },
      { code: Bpf.MISC | Bpf.TXA, jt: 0, jf: 0, k: 0 },
      alu(Bpf.XOR, 0xf0f0),
      retA,
    ],
    [{ code: Bpf.LD | Bpf.W | Bpf.LEN, jt: 0, jf: 0, k: 0 }, alu(Bpf.MOD, 7), retA],
    [ldx(0), { code: Bpf.LD | Bpf.H | Bpf.IND, jt: 0, jf: 0, k: 0xffffff00 }, retA], // X + k past the end
    [ldx(0), { code: Bpf.LD | Bpf.W | Bpf.IND, jt: 0, jf: 0, k: 0xfffffff0 }, retA], // wraps in 32 bits
  ];
  for (const program of programs) {
    const reference = pcapOfflineFilter(program, frame, 100);
    assert.equal(new CbpfFilter(program).run(frame, 100), reference, formatProgram(program));
    assert.equal(
      runEbpf(translateToEbpf(program), frame, 100) !== 0,
      reference !== 0,
      formatProgram(program),
    );
  }
});

Deno.test("filter: libpcap's message for a wrong expression, and untranslatable constructs named", () => {
  assert.throws(() => pcapCompile("tcp port", ETHERNET), FilterSyntaxError);
  assert.throws(() => pcapCompile("host nosuch.host.invalid.", ETHERNET), FilterSyntaxError);
  try {
    pcapCompile("tcp and and", ETHERNET);
    assert.fail("compiled");
  } catch (error) {
    assert.ok(error instanceof FilterSyntaxError);
    assert.match(error.message, /syntax error/);
    assert.doesNotMatch(error.message, /\n/);
  }
  // `inbound` compiles to Linux's packet-type extension on a dead handle.
  const inbound = pcapCompile("inbound", ETHERNET);
  assert.throws(
    () => checkProgram(inbound),
    (e) => e instanceof UnsupportedFilterError && /packet type/.test(e.message),
  );
  assert.throws(() => translateToEbpf(inbound), UnsupportedFilterError);
  assert.throws(() => new CbpfFilter(inbound), UnsupportedFilterError);
  assert.throws(() => checkProgram(pcapCompile("ip6 protochain 6", ETHERNET)), /jumps backwards/);
  assert.throws(
    () =>
      checkProgram([{ code: Bpf.JMP | Bpf.JA, jt: 0, jf: 0, k: 5 }, { code: Bpf.RET, jt: 0, jf: 0, k: 0 }]),
    /jump out of the program/,
  );
});

Deno.test("filter: formatProgram prints what tcpdump -d prints", async () => {
  const path = await Deno.makeTempFile({ suffix: ".pcap" });
  try {
    const file = Deno.openSync(path, { write: true, truncate: true });
    const writer = new PcapWriter(file, { linkType: LinkType.ETHERNET, snaplen: 65535 });
    writer.close();
    file.close();
    const expressions = [...EXPRESSIONS, "ip[0] & 0xf != 5 and ip[4] - 1 > 3 and not ip[1] = 255"];
    for (const expression of expressions) {
      const tcpdump = new Deno.Command("tcpdump", { args: ["-d", "-r", path, expression], stderr: "null" });
      const output = await tcpdump.output();
      assert.equal(output.code, 0, expression);
      const expected = new TextDecoder().decode(output.stdout);
      assert.equal(formatProgram(pcapCompile(expression, ETHERNET)), expected, expression);
    }
  } finally {
    await Deno.remove(path);
  }
});

function hex(frame: Uint8Array): string {
  return [...frame].map((b) => b.toString(16).padStart(2, "0")).join("");
}

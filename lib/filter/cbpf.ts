/**
 * Classic BPF (cBPF) as libpcap's `pcap_compile` produces it: the instruction model, a check of what
 * netstack can run (forward jumps in range, scratch memory in range, no Linux ancillary loads), and the
 * text `tcpdump -d` prints.
 *
 * A program sees a packet from its link-layer header and returns 0 (drop) or non-zero (match; the value
 * is a snap length, which netstack ignores). Semantics follow libpcap's reference interpreter
 * (bpf_filter.c): A and X are unsigned 32-bit, loads are big-endian, any out-of-bounds load or division
 * by zero ends the program with 0.
 *
 * @module
 */

/** One classic BPF instruction (`struct bpf_insn`). */
export interface CbpfInstruction {
  /** Operation: class | size | mode, or class | op | source. */
  code: number;
  /** Jump-if-true offset (conditional jumps), relative to the next instruction. */
  jt: number;
  /** Jump-if-false offset. */
  jf: number;
  /** The constant operand, unsigned 32-bit. */
  k: number;
}

/** Instruction classes, sizes, modes, operations and sources (pcap/bpf.h). */
export const Bpf = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  W: 0x00,
  H: 0x08,
  B: 0x10,
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  K: 0x00,
  X: 0x08,
  A: 0x10,
  TAX: 0x00,
  TXA: 0x80,
} as const;

/** Words of scratch memory, M[0] to M[15] (BPF_MEMWORDS). */
export const BPF_MEMWORDS = 16;

/** The Linux ancillary-data offset (SKF_AD_OFF = -0x1000 as unsigned): loads at or above it are not packet loads. */
const SKF_AD_OFF = 0xfffff000;
/** Linux's "network header" and "link-layer header" relative offsets (SKF_NET_OFF, SKF_LL_OFF). */
const SKF_NET_OFF = 0xfff00000;

/**
 * The Linux socket-filter extensions libpcap's `bpf_image` knows, by offset from SKF_AD_OFF, with the
 * name `tcpdump -d` prints and the filter keyword that produces it.
 */
const ANCILLARY: Record<number, { symbol: string; from: string }> = {
  0: { symbol: "proto", from: "the skb protocol" },
  4: { symbol: "type", from: "inbound/outbound (packet type)" },
  8: { symbol: "ifidx", from: "ifindex" },
  12: { symbol: "nla", from: "a netlink attribute" },
  16: { symbol: "nlan", from: "a nested netlink attribute" },
  20: { symbol: "mark", from: "the skb mark" },
  24: { symbol: "queue", from: "the queue mapping" },
  28: { symbol: "hatype", from: "the device type" },
  32: { symbol: "rxhash", from: "the receive hash" },
  36: { symbol: "cpu", from: "the CPU number" },
  40: { symbol: "xor_x", from: "xor with X" },
  44: { symbol: "vlan_tci", from: "an offloaded VLAN tag" },
  48: { symbol: "vlanp", from: "an offloaded VLAN tag" },
  52: { symbol: "poff", from: "the payload offset" },
  56: { symbol: "random", from: "a random number" },
  60: { symbol: "vlan_tpid", from: "an offloaded VLAN protocol" },
};

/** A program netstack cannot run, with one line naming the construct. */
export class UnsupportedFilterError extends Error {
  /** Creates the error; `message` names the construct. */
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedFilterError";
  }
}

const OPS_WITH_OPERAND = new Set<number>([
  Bpf.ADD,
  Bpf.SUB,
  Bpf.MUL,
  Bpf.DIV,
  Bpf.OR,
  Bpf.AND,
  Bpf.LSH,
  Bpf.RSH,
  Bpf.MOD,
  Bpf.XOR,
]);

/** Whether `code` is an absolute load (the only kind that can reach Linux's ancillary offsets). */
function isAbsoluteLoad(code: number): boolean {
  return (code & 0x07) === Bpf.LD && (code & 0xe0) === Bpf.ABS;
}

/**
 * Checks that netstack's interpreter and eBPF translation can run `program` exactly: every opcode known,
 * every jump forward and inside the program, the last instruction a return, scratch memory in range, no
 * shift by 32 or more, and no Linux ancillary load (`inbound`, `ifindex`… compile to those on Linux).
 * Throws {@link UnsupportedFilterError} naming the first construct that is not.
 */
export function checkProgram(program: readonly CbpfInstruction[]): void {
  if (program.length === 0) throw new UnsupportedFilterError("the filter program is empty");
  if (program.length > 4096) {
    throw new UnsupportedFilterError(`the filter program has ${program.length} instructions (at most 4096)`);
  }
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc];
    const where = `instruction ${pc} (${
      formatInstruction(program[pc], pc).slice(6).replace(/\s+/g, " ").trim()
    })`;
    const cls = code & 0x07;
    if (isAbsoluteLoad(code) && k >= SKF_NET_OFF) {
      const extension = ANCILLARY[k - SKF_AD_OFF];
      throw new UnsupportedFilterError(
        extension !== undefined
          ? `the expression uses the Linux socket-filter extension '${extension.symbol}' (${extension.from}), which netstack cannot evaluate on XDP/TC or on stored packets`
          : `${where} loads a Linux-specific relative offset, which netstack cannot evaluate`,
      );
    }
    switch (cls) {
      case Bpf.LD:
      case Bpf.LDX: {
        const mode = code & 0xe0;
        const size = code & 0x18;
        const known = cls === Bpf.LD
          ? (mode === Bpf.IMM || mode === Bpf.MEM || mode === Bpf.LEN) && size === Bpf.W ||
            (mode === Bpf.ABS || mode === Bpf.IND) && size !== 0x18
          : (mode === Bpf.IMM || mode === Bpf.MEM || mode === Bpf.LEN) && size === Bpf.W ||
            mode === Bpf.MSH && size === Bpf.B;
        if (!known) throw new UnsupportedFilterError(`${where}: unknown load 0x${code.toString(16)}`);
        if (mode === Bpf.MEM && k >= BPF_MEMWORDS) {
          throw new UnsupportedFilterError(`${where}: scratch memory M[${k}] out of range`);
        }
        break;
      }
      case Bpf.ST:
      case Bpf.STX:
        if (code !== cls) throw new UnsupportedFilterError(`${where}: unknown store 0x${code.toString(16)}`);
        if (k >= BPF_MEMWORDS) {
          throw new UnsupportedFilterError(`${where}: scratch memory M[${k}] out of range`);
        }
        break;
      case Bpf.ALU: {
        const op = code & 0xf0;
        const src = code & 0x08;
        if (op === Bpf.NEG ? code !== (Bpf.ALU | Bpf.NEG) : !OPS_WITH_OPERAND.has(op)) {
          throw new UnsupportedFilterError(`${where}: unknown ALU operation 0x${code.toString(16)}`);
        }
        if ((op === Bpf.LSH || op === Bpf.RSH) && src === Bpf.K && k >= 32) {
          throw new UnsupportedFilterError(`${where}: shift by ${k} bits (at most 31)`);
        }
        break;
      }
      case Bpf.JMP: {
        const op = code & 0xf0;
        if (op === Bpf.JA) {
          if (code !== (Bpf.JMP | Bpf.JA)) throw new UnsupportedFilterError(`${where}: unknown jump`);
          if ((k | 0) < 0) {
            throw new UnsupportedFilterError(
              `${where} jumps backwards (a loop, as 'protochain' compiles to), which classic BPF in the kernel and netstack do not run`,
            );
          }
          if (k >= program.length - pc - 1) {
            throw new UnsupportedFilterError(`${where}: jump out of the program`);
          }
          break;
        }
        if (op !== Bpf.JEQ && op !== Bpf.JGT && op !== Bpf.JGE && op !== Bpf.JSET) {
          throw new UnsupportedFilterError(`${where}: unknown jump 0x${code.toString(16)}`);
        }
        if (pc + 1 + Math.max(jt, jf) >= program.length) {
          throw new UnsupportedFilterError(`${where}: jump out of the program`);
        }
        break;
      }
      case Bpf.RET:
        if (code !== (Bpf.RET | Bpf.K) && code !== (Bpf.RET | Bpf.A)) {
          throw new UnsupportedFilterError(`${where}: unknown return 0x${code.toString(16)}`);
        }
        break;
      case Bpf.MISC:
        if (code !== (Bpf.MISC | Bpf.TAX) && code !== (Bpf.MISC | Bpf.TXA)) {
          throw new UnsupportedFilterError(`${where}: unknown instruction 0x${code.toString(16)}`);
        }
        break;
    }
  }
  if ((program[program.length - 1].code & 0x07) !== Bpf.RET) {
    throw new UnsupportedFilterError("the filter program does not end with a return");
  }
}

/** `%d` of a C `int` for an unsigned 32-bit value. */
function signed(k: number): number {
  return k | 0;
}

function hex(k: number): string {
  return `#0x${(k >>> 0).toString(16)}`;
}

function absoluteOperand(k: number): string {
  const extension = k >= SKF_AD_OFF ? ANCILLARY[k - SKF_AD_OFF] : undefined;
  return extension !== undefined ? `[${extension.symbol}]` : `[${signed(k)}]`;
}

const ALU_NAMES: Record<number, string> = {
  [Bpf.ADD]: "add",
  [Bpf.SUB]: "sub",
  [Bpf.MUL]: "mul",
  [Bpf.DIV]: "div",
  [Bpf.MOD]: "mod",
  [Bpf.AND]: "and",
  [Bpf.OR]: "or",
  [Bpf.XOR]: "xor",
  [Bpf.LSH]: "lsh",
  [Bpf.RSH]: "rsh",
};
/** ALU operations whose constant `bpf_image` prints in hex (the others in decimal). */
const ALU_HEX = new Set<number>([Bpf.AND, Bpf.OR, Bpf.XOR]);
const JUMP_NAMES: Record<number, string> = {
  [Bpf.JEQ]: "jeq",
  [Bpf.JGT]: "jgt",
  [Bpf.JGE]: "jge",
  [Bpf.JSET]: "jset",
};
const SIZE_NAMES: Record<number, string> = { [Bpf.W]: "ld", [Bpf.H]: "ldh", [Bpf.B]: "ldb" };

/** Operation and operand of an instruction as libpcap's `bpf_image` names them. */
function image(insn: CbpfInstruction, n: number): [string, string] {
  const { code, k } = insn;
  const cls = code & 0x07;
  switch (code) {
    case Bpf.RET | Bpf.K:
      return ["ret", `#${signed(k)}`];
    case Bpf.RET | Bpf.A:
      return ["ret", ""];
    case Bpf.LD | Bpf.W | Bpf.LEN:
      return ["ld", "#pktlen"];
    case Bpf.LD | Bpf.IMM:
      return ["ld", hex(k)];
    case Bpf.LDX | Bpf.IMM:
      return ["ldx", hex(k)];
    case Bpf.LDX | Bpf.MSH | Bpf.B:
      return ["ldxb", `4*([${signed(k)}]&0xf)`];
    case Bpf.LD | Bpf.MEM:
      return ["ld", `M[${signed(k)}]`];
    case Bpf.LDX | Bpf.MEM:
      return ["ldx", `M[${signed(k)}]`];
    case Bpf.ST:
      return ["st", `M[${signed(k)}]`];
    case Bpf.STX:
      return ["stx", `M[${signed(k)}]`];
    case Bpf.JMP | Bpf.JA:
      return ["ja", `${n + 1 + signed(k)}`];
    case Bpf.ALU | Bpf.NEG:
      return ["neg", ""];
    case Bpf.MISC | Bpf.TAX:
      return ["tax", ""];
    case Bpf.MISC | Bpf.TXA:
      return ["txa", ""];
  }
  const size = code & 0x18;
  if (cls === Bpf.LD && (code & 0xe0) === Bpf.ABS && SIZE_NAMES[size]) {
    return [SIZE_NAMES[size], absoluteOperand(k)];
  }
  if (cls === Bpf.LD && (code & 0xe0) === Bpf.IND && SIZE_NAMES[size]) {
    return [SIZE_NAMES[size], `[x + ${signed(k)}]`];
  }
  const op = code & 0xf0;
  const fromX = (code & 0x08) === Bpf.X;
  if (cls === Bpf.JMP && JUMP_NAMES[op]) {
    return [JUMP_NAMES[op], fromX ? "x" : hex(k)];
  }
  if (cls === Bpf.ALU && ALU_NAMES[op]) {
    return [ALU_NAMES[op], fromX ? "x" : ALU_HEX.has(op) ? hex(k) : `#${signed(k)}`];
  }
  return ["unimp", `0x${code.toString(16)}`];
}

/** One instruction as `tcpdump -d` prints it (libpcap's `bpf_image`), e.g. `(002) jeq #0x800 jt 3 jf 5`. */
export function formatInstruction(insn: CbpfInstruction, n: number): string {
  const [op, operand] = image(insn, n);
  const index = String(n).padStart(3, "0");
  if ((insn.code & 0x07) === Bpf.JMP && (insn.code & 0xf0) !== Bpf.JA) {
    return `(${index}) ${op.padEnd(8)} ${operand.padEnd(16)} jt ${n + 1 + insn.jt}\tjf ${n + 1 + insn.jf}`;
  }
  return `(${index}) ${op.padEnd(8)} ${operand}`;
}

/** The whole program as `tcpdump -d` prints it: one line per instruction, each ending in a newline. */
export function formatProgram(program: readonly CbpfInstruction[]): string {
  return program.map((insn, n) => formatInstruction(insn, n) + "\n").join("");
}

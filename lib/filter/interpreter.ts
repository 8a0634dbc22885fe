/**
 * A classic BPF interpreter for filtering packets in user space (the stack's `--capture-filter`), with
 * libpcap's semantics (bpf_filter.c): A and X unsigned 32-bit, big-endian loads, an out-of-bounds load
 * or a division by zero ends the program with 0 ("no match"), a shift by X >= 32 gives 0.
 *
 * The program is decoded once into typed arrays; {@link CbpfFilter.run} allocates nothing per packet.
 *
 * @module
 */

import { Bpf, BPF_MEMWORDS, type CbpfInstruction, checkProgram } from "./cbpf.ts";

/** A checked cBPF program ready to run on packets. */
export class CbpfFilter {
  readonly #code: Uint16Array;
  readonly #jt: Uint8Array;
  readonly #jf: Uint8Array;
  readonly #k: Uint32Array;
  readonly #mem = new Uint32Array(BPF_MEMWORDS);

  /** Checks `program` (see {@link checkProgram}; throws UnsupportedFilterError) and decodes it. */
  constructor(program: readonly CbpfInstruction[]) {
    checkProgram(program);
    const n = program.length;
    this.#code = new Uint16Array(n);
    this.#jt = new Uint8Array(n);
    this.#jf = new Uint8Array(n);
    this.#k = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      this.#code[i] = program[i].code;
      this.#jt[i] = program[i].jt;
      this.#jf[i] = program[i].jf;
      this.#k[i] = program[i].k;
    }
  }

  /** Whether the program accepts `packet` (captured bytes from the link-layer header; `wireLength` for `len`). */
  matches(packet: Uint8Array, wireLength = packet.length): boolean {
    return this.run(packet, wireLength) !== 0;
  }

  /** Runs the program: its return value (0 = drop), as libpcap's `pcap_filter`. */
  run(p: Uint8Array, wireLength: number): number {
    const code = this.#code;
    const jt = this.#jt;
    const jf = this.#jf;
    const kk = this.#k;
    const mem = this.#mem;
    const buflen = p.length;
    let a = 0;
    let x = 0;
    for (let pc = 0;; pc++) {
      const k = kk[pc];
      switch (code[pc]) {
        case Bpf.RET | Bpf.K:
          return k;
        case Bpf.RET | Bpf.A:
          return a;
        case Bpf.LD | Bpf.W | Bpf.ABS:
          if (k > buflen || 4 > buflen - k) return 0;
          a = (p[k] << 24 | p[k + 1] << 16 | p[k + 2] << 8 | p[k + 3]) >>> 0;
          continue;
        case Bpf.LD | Bpf.H | Bpf.ABS:
          if (k > buflen || 2 > buflen - k) return 0;
          a = p[k] << 8 | p[k + 1];
          continue;
        case Bpf.LD | Bpf.B | Bpf.ABS:
          if (k >= buflen) return 0;
          a = p[k];
          continue;
        case Bpf.LD | Bpf.W | Bpf.LEN:
          a = wireLength >>> 0;
          continue;
        case Bpf.LDX | Bpf.W | Bpf.LEN:
          x = wireLength >>> 0;
          continue;
        case Bpf.LD | Bpf.W | Bpf.IND: {
          const at = x + k; // exact: both below 2^32, so no wrap-around as in C
          if (at + 4 > buflen) return 0;
          a = (p[at] << 24 | p[at + 1] << 16 | p[at + 2] << 8 | p[at + 3]) >>> 0;
          continue;
        }
        case Bpf.LD | Bpf.H | Bpf.IND: {
          const at = x + k;
          if (at + 2 > buflen) return 0;
          a = p[at] << 8 | p[at + 1];
          continue;
        }
        case Bpf.LD | Bpf.B | Bpf.IND: {
          const at = x + k;
          if (at >= buflen) return 0;
          a = p[at];
          continue;
        }
        case Bpf.LDX | Bpf.MSH | Bpf.B:
          if (k >= buflen) return 0;
          x = (p[k] & 0xf) << 2;
          continue;
        case Bpf.LD | Bpf.IMM:
          a = k;
          continue;
        case Bpf.LDX | Bpf.IMM:
          x = k;
          continue;
        case Bpf.LD | Bpf.MEM:
          a = mem[k];
          continue;
        case Bpf.LDX | Bpf.MEM:
          x = mem[k];
          continue;
        case Bpf.ST:
          mem[k] = a;
          continue;
        case Bpf.STX:
          mem[k] = x;
          continue;
        case Bpf.JMP | Bpf.JA:
          pc += k;
          continue;
        case Bpf.JMP | Bpf.JGT | Bpf.K:
          pc += a > k ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JGE | Bpf.K:
          pc += a >= k ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JEQ | Bpf.K:
          pc += a === k ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JSET | Bpf.K:
          pc += (a & k) !== 0 ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JGT | Bpf.X:
          pc += a > x ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JGE | Bpf.X:
          pc += a >= x ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JEQ | Bpf.X:
          pc += a === x ? jt[pc] : jf[pc];
          continue;
        case Bpf.JMP | Bpf.JSET | Bpf.X:
          pc += (a & x) !== 0 ? jt[pc] : jf[pc];
          continue;
        case Bpf.ALU | Bpf.ADD | Bpf.X:
          a = (a + x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.SUB | Bpf.X:
          a = (a - x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.MUL | Bpf.X:
          a = Math.imul(a, x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.DIV | Bpf.X:
          if (x === 0) return 0;
          a = Math.floor(a / x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.MOD | Bpf.X:
          if (x === 0) return 0;
          a = a % x;
          continue;
        case Bpf.ALU | Bpf.AND | Bpf.X:
          a = (a & x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.OR | Bpf.X:
          a = (a | x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.XOR | Bpf.X:
          a = (a ^ x) >>> 0;
          continue;
        case Bpf.ALU | Bpf.LSH | Bpf.X:
          a = x < 32 ? (a << x) >>> 0 : 0;
          continue;
        case Bpf.ALU | Bpf.RSH | Bpf.X:
          a = x < 32 ? a >>> x : 0;
          continue;
        case Bpf.ALU | Bpf.ADD | Bpf.K:
          a = (a + k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.SUB | Bpf.K:
          a = (a - k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.MUL | Bpf.K:
          a = Math.imul(a, k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.DIV | Bpf.K:
          if (k === 0) return 0;
          a = Math.floor(a / k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.MOD | Bpf.K:
          if (k === 0) return 0;
          a = a % k;
          continue;
        case Bpf.ALU | Bpf.AND | Bpf.K:
          a = (a & k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.OR | Bpf.K:
          a = (a | k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.XOR | Bpf.K:
          a = (a ^ k) >>> 0;
          continue;
        case Bpf.ALU | Bpf.LSH | Bpf.K:
          a = (a << k) >>> 0; // k < 32: checkProgram refuses more
          continue;
        case Bpf.ALU | Bpf.RSH | Bpf.K:
          a = a >>> k;
          continue;
        case Bpf.ALU | Bpf.NEG:
          a = (0 - a) >>> 0;
          continue;
        case Bpf.MISC | Bpf.TAX:
          x = a;
          continue;
        case Bpf.MISC | Bpf.TXA:
          a = x;
          continue;
        default:
          return 0; // unreachable: checkProgram knows every opcode
      }
    }
  }
}

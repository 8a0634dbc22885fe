/**
 * A small eBPF interpreter for the unit tests of lib/filter/to_ebpf.ts: it runs the translated
 * subprogram on a packet with the stub's calling convention (r1 = packet, r2 = packet end, r3 = wire
 * length, r4 = an offloaded VLAN tag or 0) and, like the verifier would, refuses anything outside the packet or the stack: a packet load
 * not preceded by a bounds check that covers it throws, as does a read of a register or stack slot
 * never written. It knows only the instructions the translator emits.
 *
 * @module
 */

type Value =
  | { kind: "scalar"; v: bigint }
  | { kind: "pkt"; off: number }
  | { kind: "end" }
  | { kind: "fp" }
  | { kind: "uninit" };

const MASK64 = (1n << 64n) - 1n;
const MASK32 = (1n << 32n) - 1n;

const ALU_OPS: Record<number, (a: bigint, b: bigint, bits: bigint) => bigint> = {
  0x00: (a, b) => a + b,
  0x10: (a, b) => a - b,
  0x20: (a, b) => a * b,
  0x30: (a, b) => b === 0n ? 0n : a / b,
  0x90: (a, b) => b === 0n ? a : a % b,
  0x40: (a, b) => a | b,
  0x50: (a, b) => a & b,
  0xa0: (a, b) => a ^ b,
  0x60: (a, b, bits) => a << (b % bits),
  0x70: (a, b, bits) => a >> (b % bits),
};

const JUMP_OPS: Record<number, (a: bigint, b: bigint) => boolean> = {
  0x10: (a, b) => a === b,
  0x50: (a, b) => a !== b,
  0x20: (a, b) => a > b,
  0x30: (a, b) => a >= b,
  0xa0: (a, b) => a < b,
  0xb0: (a, b) => a <= b,
  0x40: (a, b) => (a & b) !== 0n,
};

function scalar(v: bigint): Value {
  return { kind: "scalar", v: v & MASK64 };
}

/**
 * Runs `insns` (8 bytes each) on `packet`, with `vlan` (TPID << 16 | TCI) as the tag the kernel took out
 * of it (0: none); returns r0. Throws on an unsafe access or unknown opcode.
 */
export function runEbpf(
  insns: Uint8Array,
  packet: Uint8Array,
  wireLength: number,
  maxSteps = 1e6,
  vlan = 0,
): number {
  const view = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const regs: Value[] = Array.from({ length: 11 }, () => ({ kind: "uninit" }) as Value);
  regs[1] = { kind: "pkt", off: 0 };
  regs[2] = { kind: "end" };
  regs[3] = scalar(BigInt(wireLength));
  regs[4] = scalar(BigInt(vlan));
  regs[10] = { kind: "fp" };
  const stack = new Map<number, bigint>();
  const get = (r: number): bigint => {
    const value = regs[r];
    if (value.kind !== "scalar") throw new Error(`r${r} is ${value.kind}, not a number`);
    return value.v;
  };
  const count = insns.length / 8;
  for (let pc = 0, steps = 0; pc < count; pc++) {
    if (++steps > maxSteps) throw new Error("too many steps");
    const code = view.getUint8(pc * 8);
    const dst = view.getUint8(pc * 8 + 1) & 0xf;
    const src = view.getUint8(pc * 8 + 1) >> 4;
    const off = view.getInt16(pc * 8 + 2, true);
    const imm = view.getInt32(pc * 8 + 4, true);
    const cls = code & 0x07;
    const op = code & 0xf0;
    const fromX = (code & 0x08) !== 0;
    switch (cls) {
      case 0x04: // ALU (32-bit)
      case 0x07: { // ALU64
        const wide = cls === 0x07;
        if (op === 0xd0) { // END (to big-endian): byte swap of the low 16 or 32 bits
          const v = get(dst);
          let out = 0n;
          for (let i = 0; i < imm / 8; i++) out = (out << 8n) | ((v >> BigInt(i * 8)) & 0xffn);
          regs[dst] = scalar(out);
          break;
        }
        const operand: Value = fromX ? regs[src] : scalar(wide ? BigInt(imm) : BigInt(imm >>> 0));
        if (op === 0xb0) { // MOV
          if (operand.kind === "uninit") throw new Error(`pc ${pc}: read of uninitialised r${src}`);
          regs[dst] = wide ? operand : scalar((operand.kind === "scalar" ? operand.v : 0n) & MASK32);
          if (!wide && operand.kind !== "scalar") throw new Error(`pc ${pc}: 32-bit move of a pointer`);
          break;
        }
        const target = regs[dst];
        if (wide && op === 0x00 && (target.kind === "pkt" || operand.kind === "pkt")) {
          // pointer arithmetic: pkt + scalar
          const [pointer, add] = target.kind === "pkt" ? [target, operand] : [operand, target];
          if (pointer.kind !== "pkt" || add.kind !== "scalar") throw new Error(`pc ${pc}: bad pointer add`);
          regs[dst] = { kind: "pkt", off: pointer.off + Number(add.v) };
          break;
        }
        if (op === 0x80) { // NEG
          regs[dst] = scalar(wide ? -get(dst) : (-(get(dst) & MASK32)) & MASK32);
          break;
        }
        let a = get(dst);
        if (operand.kind !== "scalar") throw new Error(`pc ${pc}: ALU on ${operand.kind}`);
        let b = operand.v;
        if (!wide) [a, b] = [a & MASK32, b & MASK32];
        const bits = wide ? 64n : 32n;
        const mask = wide ? MASK64 : MASK32;
        const alu = ALU_OPS[op];
        if (alu === undefined) throw new Error(`pc ${pc}: unknown ALU op 0x${code.toString(16)}`);
        const r = alu(a, b, bits);
        regs[dst] = scalar(r & mask);
        break;
      }
      case 0x01: { // LDX MEM
        const size = [4, 2, 1, 8][(code >> 3) & 3];
        const base = regs[src];
        if (base.kind === "pkt") {
          const at = base.off + off;
          if (at < 0 || at + size > packet.length) {
            throw new Error(`pc ${pc}: packet load [${at}, +${size}) outside ${packet.length} bytes`);
          }
          let v = 0n;
          for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(packet[at + i]); // little-endian
          regs[dst] = scalar(v);
        } else if (base.kind === "fp") {
          if (size !== 4 || !stack.has(off)) throw new Error(`pc ${pc}: read of uninitialised stack ${off}`);
          regs[dst] = scalar(stack.get(off)!);
        } else {
          throw new Error(`pc ${pc}: load through ${base.kind}`);
        }
        break;
      }
      case 0x02: // ST MEM
      case 0x03: { // STX MEM
        if (regs[dst].kind !== "fp" || (code & 0x18) !== 0) throw new Error(`pc ${pc}: store not to stack`);
        if (off < -512 || off > -4) throw new Error(`pc ${pc}: stack store out of the frame`);
        stack.set(off, cls === 0x02 ? BigInt(imm >>> 0) : get(src) & MASK32);
        break;
      }
      case 0x05: // JMP
      case 0x06: { // JMP32
        if (op === 0x90) { // EXIT
          return Number(get(0));
        }
        if (op === 0x00) { // JA
          pc += off;
          break;
        }
        const left = regs[dst];
        const right: Value = fromX ? regs[src] : scalar(BigInt(imm));
        let a: bigint;
        let b: bigint;
        if (left.kind === "pkt" && right.kind === "end") {
          [a, b] = [BigInt(left.off), BigInt(packet.length)];
        } else {
          if (left.kind !== "scalar" || right.kind !== "scalar") {
            throw new Error(`pc ${pc}: compare ${left.kind} with ${right.kind}`);
          }
          [a, b] = cls === 0x06 ? [left.v & MASK32, right.v & MASK32] : [left.v, right.v];
        }
        const compare = JUMP_OPS[op];
        if (compare === undefined) throw new Error(`pc ${pc}: unknown jump 0x${code.toString(16)}`);
        const taken = compare(a, b);
        if (taken) pc += off;
        break;
      }
      default:
        throw new Error(`pc ${pc}: unknown class 0x${code.toString(16)}`);
    }
  }
  throw new Error("ran off the end of the program");
}

/** Throws unless every instruction is reachable from the first (the verifier refuses dead code). */
export function assertAllReachable(insns: Uint8Array): void {
  const view = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const count = insns.length / 8;
  const seen = new Array<boolean>(count).fill(false);
  const stack = [0];
  while (stack.length > 0) {
    const pc = stack.pop()!;
    if (pc < 0 || pc >= count) throw new Error(`jump to ${pc}, outside the program`);
    if (seen[pc]) continue;
    seen[pc] = true;
    const code = view.getUint8(pc * 8);
    const cls = code & 0x07;
    const off = view.getInt16(pc * 8 + 2, true);
    if (cls === 0x05 || cls === 0x06) {
      if ((code & 0xf0) === 0x90) continue; // exit
      if ((code & 0xf0) === 0x00) { // ja
        stack.push(pc + 1 + off);
        continue;
      }
      stack.push(pc + 1 + off);
    }
    stack.push(pc + 1);
  }
  const dead = seen.indexOf(false);
  if (dead >= 0) throw new Error(`unreachable instruction ${dead}`);
}

/**
 * Classic BPF to eBPF: the body of a BPF-to-BPF subprogram that runs a tcpdump expression on a packet
 * inside the XDP and TC programs (bpf/trace.bpf.c's `trace_expr` stub is replaced by this code before
 * load, see lib/trace/splice.ts).
 *
 * Calling convention of the generated function (that of the C stub):
 *   r1 = packet start (the link-layer header), r2 = packet end (data_end), r3 = wire length (u32),
 *   r4 = a VLAN tag the kernel took out of the frame (TPID << 16 | TCI), or 0;
 *   returns r0 = 1 when the expression matches, 0 otherwise.
 *
 * The offloaded tag: by the time the tc hooks run, the kernel has moved an Ethernet frame's outer VLAN
 * tag out of the packet into the skb (skb_vlan_untag, before tcx ingress), and a VLAN device may hand
 * one down out of band on egress. The expression was compiled for the frame as it is on the wire, so
 * when r4 is not 0 the loads see that frame: bytes 12..15 are the tag, and what follows them is read 4
 * bytes earlier in the packet (r3 is then the length with the tag). Loads wholly inside the MAC addresses
 * are the same either way and pay nothing; the others test r4 first (the verifier removes the tagged
 * path from programs that pass a constant 0, XDP's).
 *
 * Translation, in the spirit of cloudflare's cbpfc (written from the semantics, not copied):
 * - A is w4, X is w5; both start at 0 as in classic BPF. r6 and r7 are temporaries. Scratch memory
 *   M[k] is the 32-bit stack slot at r10 - 64 + 4k; the slots the program uses are zeroed first, because
 *   the verifier refuses reads of uninitialised stack.
 * - Every packet load is bounds-checked against data_end in the shape the verifier tracks (a pointer
 *   copy advanced by offset + size compared with r2), as xdp-tools' filter did for xdpdump: when the
 *   load would pass the end, the function returns 0, which is what classic BPF does on an
 *   out-of-bounds load. Indirect loads ([x + k]) first bound X + k below 64 KiB so that the pointer
 *   arithmetic has a known range.
 * - ALU operations become 32-bit eBPF ALU operations (the opcodes coincide); division and modulo by
 *   X = 0 return 0; shifts by X >= 32 give 0 (eBPF would mask the count); loads are byte-swapped to host
 *   order with `be16`/`be32`.
 * - Conditional jumps become 32-bit eBPF jumps (JMP32) to the true target followed, when the false
 *   target is not the next instruction, by a `ja`. Classic BPF only jumps forward, so the result has no
 *   loops and the verifier walks it once per path.
 *
 * @module
 */

import { Bpf, BPF_MEMWORDS, type CbpfInstruction, checkProgram, UnsupportedFilterError } from "./cbpf.ts";

/** Bytes of one eBPF instruction. */
export const EBPF_INSN_BYTES = 8;

// eBPF opcode parts (linux/bpf.h, linux/bpf_common.h).
const LDX = 0x01;
const ST = 0x02;
const STX = 0x03;
const ALU = 0x04;
const JMP = 0x05;
const JMP32 = 0x06;
const ALU64 = 0x07;
const MEM = 0x60;
const SIZE_W = 0x00;
const SIZE_H = 0x08;
const SIZE_B = 0x10;
const SRC_K = 0x00;
const SRC_X = 0x08;
const OP_ADD = 0x00;
const OP_AND = 0x50;
const OP_LSH = 0x60;
const OP_MOV = 0xb0;
const OP_END = 0xd0;
const TO_BE = 0x08;
const OP_JA = 0x00;
const OP_JEQ = 0x10;
const OP_JGT = 0x20;
const OP_JLT = 0xa0;
const OP_JNE = 0x50;
const OP_JLE = 0xb0;
const OP_EXIT = 0x90;

// Registers.
const R0 = 0;
const R_DATA = 1;
const R_END = 2;
const R_LEN = 3;
const R_A = 4;
const R_X = 5;
const R_T = 6;
const R_U = 7;
/** The offloaded VLAN tag (r4 at entry; r4 becomes A). */
const R_TAG = 8;
/** The logical offset of an indirect load when a tag is offloaded. */
const R_L = 9;
const R_FP = 10;
/** Bytes before the tag: destination and source MAC addresses. */
const MAC_BYTES = 12;
/** Bytes of an 802.1Q/802.1ad tag (TPID, TCI). */
const TAG_BYTES = 4;

/** Largest packet offset the verifier tracks (MAX_PACKET_OFF). */
const MAX_PACKET_OFFSET = 0xffff;
/** Stack offset of M[0] from the frame pointer. */
const SCRATCH_BASE = -4 * BPF_MEMWORDS;

/** A place in the generated code, fixed once the code there is emitted. */
interface Label {
  at: number;
}

/** A jump target: a classic instruction index, the shared "return 0" block, or a label. */
type Target = number | "fail" | Label;

interface Emitted {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** For jumps: where to, resolved once every instruction is placed. */
  target?: Target;
}

/** eBPF jumps on the opposite condition of classic JEQ/JGT/JGE (JSET has none). */
const INVERSE: Record<number, number> = { [Bpf.JEQ]: OP_JNE, [Bpf.JGT]: OP_JLE, [Bpf.JGE]: OP_JLT };

const SIZE_BYTES: Record<number, number> = { [Bpf.W]: 4, [Bpf.H]: 2, [Bpf.B]: 1 };
const EBPF_SIZE: Record<number, number> = { [Bpf.W]: SIZE_W, [Bpf.H]: SIZE_H, [Bpf.B]: SIZE_B };

/** Whether an instruction always ends the program with 0: a load past any packet, a division by 0. */
function alwaysFails({ code, k }: CbpfInstruction): boolean {
  const cls = code & 0x07;
  const mode = code & 0xe0;
  if ((cls === Bpf.LD && (mode === Bpf.ABS || mode === Bpf.IND)) || (cls === Bpf.LDX && mode === Bpf.MSH)) {
    return k + SIZE_BYTES[code & 0x18] > MAX_PACKET_OFFSET;
  }
  const op = code & 0xf0;
  return cls === Bpf.ALU && (code & 0x08) === Bpf.K && (op === Bpf.DIV || op === Bpf.MOD) && k === 0;
}

/** Which instructions some path from the first reaches (classic BPF jumps only forward). */
function reachableInstructions(program: readonly CbpfInstruction[]): boolean[] {
  const reachable = new Array<boolean>(program.length).fill(false);
  reachable[0] = true;
  for (let pc = 0; pc < program.length; pc++) {
    if (!reachable[pc]) continue;
    const insn = program[pc];
    const cls = insn.code & 0x07;
    if (cls === Bpf.RET || alwaysFails(insn)) continue;
    if (cls === Bpf.JMP && (insn.code & 0xf0) === Bpf.JA) {
      reachable[pc + 1 + insn.k] = true;
    } else if (cls === Bpf.JMP) {
      reachable[pc + 1 + insn.jt] = true;
      reachable[pc + 1 + insn.jf] = true;
    } else {
      reachable[pc + 1] = true;
    }
  }
  return reachable;
}

/**
 * Translates a classic BPF program into the body of the `trace_expr` subprogram (see the module
 * comment for its calling convention). Throws UnsupportedFilterError for what cannot be run (see
 * checkProgram). Returns the instructions as bytes, 8 per instruction, host (little-endian) order.
 */
export function translateToEbpf(program: readonly CbpfInstruction[]): Uint8Array<ArrayBuffer> {
  checkProgram(program);
  const out: Emitted[] = [];
  const emit = (code: number, dst: number, src: number, off: number, imm: number, target?: Target) =>
    out.push({ code, dst, src, off, imm: imm | 0, target });
  const jump = (code: number, dst: number, src: number, imm: number, target: Target) =>
    emit(code, dst, src, 0, imm, target);

  // Prologue: the tag saved (r4 is A), A = X = 0, and the scratch words the program uses zeroed.
  emit(ALU64 | OP_MOV | SRC_X, R_TAG, R_A, 0, 0);
  emit(ALU | OP_MOV | SRC_K, R_A, 0, 0, 0);
  emit(ALU | OP_MOV | SRC_K, R_X, 0, 0, 0);
  const slots = new Set<number>();
  for (const { code, k } of program) {
    const cls = code & 0x07;
    if (
      (cls === Bpf.LD || cls === Bpf.LDX) && (code & 0xe0) === Bpf.MEM || cls === Bpf.ST || cls === Bpf.STX
    ) {
      slots.add(k);
    }
  }
  for (const slot of [...slots].sort((a, b) => a - b)) {
    emit(ST | MEM | SIZE_W, R_FP, 0, SCRATCH_BASE + 4 * slot, 0);
  }

  /** r_T = data + end; if r_T > data_end: return 0. Leaves r_T pointing `end` bytes into the packet. */
  const checkedPointer = (end: number) => {
    emit(ALU64 | OP_MOV | SRC_X, R_T, R_DATA, 0, 0);
    emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, end);
    jump(JMP | OP_JGT | SRC_X, R_T, R_END, 0, "fail");
  };
  const swap = (dst: number, size: number) => {
    if (size !== Bpf.B) emit(ALU | OP_END | TO_BE, dst, 0, 0, SIZE_BYTES[size] * 8);
  };
  const label = (): Label => ({ at: -1 });
  const place = (l: Label) => l.at = out.length;
  /** dst = (dst << 8) | r_U: appends one byte (in r_U) to a value composed byte by byte. */
  const appendByte = (dst: number) => {
    emit(ALU | OP_LSH | SRC_K, dst, 0, 0, 8);
    emit(ALU | 0x40 /* OR */ | SRC_X, dst, R_U, 0, 0);
  };
  /** r_U = byte `index` (0..3) of the tag, counted from the TPID's first byte. */
  const tagByte = (index: number) => {
    emit(ALU64 | OP_MOV | SRC_X, R_U, R_TAG, 0, 0);
    emit(ALU64 | 0x70 /* RSH */ | SRC_K, R_U, 0, 0, (3 - index) * 8);
    emit(ALU | OP_AND | SRC_K, R_U, 0, 0, 0xff);
  };
  /** r_U = the packet byte at constant offset `at` (bounds-checked). */
  const packetByte = (at: number) => {
    checkedPointer(at + 1);
    emit(LDX | MEM | SIZE_B, R_U, R_T, -1, 0);
  };
  /**
   * An absolute load of the frame with its tag restored (r_TAG != 0), for a load that does not lie
   * wholly in the MAC addresses: past the tag it is the packet 4 bytes earlier; across the tag it is
   * composed byte by byte.
   */
  const taggedAbsolute = (dst: number, k: number, size: number) => {
    const bytes = SIZE_BYTES[size];
    if (k >= MAC_BYTES + TAG_BYTES) {
      checkedPointer(k - TAG_BYTES + bytes);
      emit(LDX | MEM | EBPF_SIZE[size], dst, R_T, -bytes, 0);
      swap(dst, size);
      return;
    }
    emit(ALU | OP_MOV | SRC_K, dst, 0, 0, 0);
    for (let i = k; i < k + bytes; i++) {
      if (i < MAC_BYTES) packetByte(i);
      else if (i < MAC_BYTES + TAG_BYTES) tagByte(i - MAC_BYTES);
      else packetByte(i - TAG_BYTES);
      appendByte(dst);
    }
  };
  /**
   * An indirect load of the frame with its tag restored, at logical offset r_L (bounded): past the tag,
   * the packet at r_L - 4; before its end, composed byte by byte with run-time tests per byte.
   */
  const taggedIndirect = (size: number) => {
    const bytes = SIZE_BYTES[size];
    const early = label();
    const done = label();
    jump(JMP | OP_JLT | SRC_K, R_L, 0, MAC_BYTES + TAG_BYTES, early);
    emit(ALU64 | OP_ADD | SRC_K, R_L, 0, 0, -TAG_BYTES);
    emit(ALU64 | OP_MOV | SRC_X, R_U, R_DATA, 0, 0);
    emit(ALU64 | OP_ADD | SRC_X, R_U, R_L, 0, 0);
    emit(ALU64 | OP_MOV | SRC_X, R_T, R_U, 0, 0);
    emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, bytes);
    jump(JMP | OP_JGT | SRC_X, R_T, R_END, 0, "fail");
    emit(LDX | MEM | EBPF_SIZE[size], R_A, R_U, 0, 0);
    swap(R_A, size);
    jump(JMP | OP_JA, 0, 0, 0, done);
    place(early);
    emit(ALU | OP_MOV | SRC_K, R_A, 0, 0, 0);
    for (let j = 0; j < bytes; j++) {
      // r_T = i = r_L + j; then r_U = frame[i].
      const inTag = label();
      const fromPacket = label();
      const next = label();
      emit(ALU64 | OP_MOV | SRC_X, R_T, R_L, 0, 0);
      emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, j);
      jump(JMP | OP_JLT | SRC_K, R_T, 0, MAC_BYTES, fromPacket);
      jump(JMP | OP_JLT | SRC_K, R_T, 0, MAC_BYTES + TAG_BYTES, inTag);
      emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, -TAG_BYTES);
      jump(JMP | OP_JA, 0, 0, 0, fromPacket);
      place(inTag);
      // r_U = tag >> ((15 - i) * 8) & 0xff
      emit(ALU64 | OP_MOV | SRC_K, R_U, 0, 0, MAC_BYTES + TAG_BYTES - 1);
      emit(ALU64 | 0x10 /* SUB */ | SRC_X, R_U, R_T, 0, 0);
      emit(ALU64 | OP_LSH | SRC_K, R_U, 0, 0, 3);
      emit(ALU64 | OP_MOV | SRC_X, R_T, R_TAG, 0, 0);
      emit(ALU64 | 0x70 /* RSH */ | SRC_X, R_T, R_U, 0, 0);
      emit(ALU | OP_AND | SRC_K, R_T, 0, 0, 0xff);
      emit(ALU | OP_MOV | SRC_X, R_U, R_T, 0, 0);
      jump(JMP | OP_JA, 0, 0, 0, next);
      place(fromPacket);
      emit(ALU64 | OP_MOV | SRC_X, R_U, R_DATA, 0, 0);
      emit(ALU64 | OP_ADD | SRC_X, R_U, R_T, 0, 0);
      emit(ALU64 | OP_MOV | SRC_X, R_T, R_U, 0, 0);
      emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, 1);
      jump(JMP | OP_JGT | SRC_X, R_T, R_END, 0, "fail");
      emit(LDX | MEM | SIZE_B, R_U, R_U, 0, 0);
      place(next);
      appendByte(R_A);
    }
    place(done);
  };

  const reachable = reachableInstructions(program);
  const starts: number[] = [];
  for (let pc = 0; pc < program.length; pc++) {
    starts.push(out.length);
    // The verifier refuses unreachable instructions, so only what some path reaches is translated.
    if (!reachable[pc]) continue;
    const { code, jt, jf, k } = program[pc];
    const cls = code & 0x07;
    const size = code & 0x18;
    const mode = code & 0xe0;
    const next = pc + 1;
    switch (cls) {
      case Bpf.LD:
      case Bpf.LDX: {
        const dst = cls === Bpf.LD ? R_A : R_X;
        if (mode === Bpf.IMM) {
          emit(ALU | OP_MOV | SRC_K, dst, 0, 0, k);
        } else if (mode === Bpf.LEN) {
          emit(ALU | OP_MOV | SRC_X, dst, R_LEN, 0, 0);
        } else if (mode === Bpf.MEM) {
          emit(LDX | MEM | SIZE_W, dst, R_FP, SCRATCH_BASE + 4 * k, 0);
        } else if (mode === Bpf.ABS || mode === Bpf.MSH) {
          const bytes = SIZE_BYTES[size];
          if (k + bytes > MAX_PACKET_OFFSET) {
            jump(JMP | OP_JA, 0, 0, 0, "fail"); // past any packet the hooks see
            break;
          }
          const tagged = label();
          const done = label();
          // Wholly inside the MAC addresses, a restored tag changes nothing.
          if (k + bytes > MAC_BYTES) jump(JMP | OP_JNE | SRC_K, R_TAG, 0, 0, tagged);
          checkedPointer(k + bytes);
          emit(LDX | MEM | EBPF_SIZE[size], dst, R_T, -bytes, 0);
          swap(dst, size);
          if (k + bytes > MAC_BYTES) {
            jump(JMP | OP_JA, 0, 0, 0, done);
            place(tagged);
            taggedAbsolute(dst, k, size);
            place(done);
          }
          if (mode === Bpf.MSH) {
            emit(ALU | OP_AND | SRC_K, R_X, 0, 0, 0xf);
            emit(ALU | OP_LSH | SRC_K, R_X, 0, 0, 2);
          }
        } else if (mode === Bpf.IND) {
          const bytes = SIZE_BYTES[size];
          if (k + bytes > MAX_PACKET_OFFSET) {
            jump(JMP | OP_JA, 0, 0, 0, "fail");
            break;
          }
          // r_T = X + k as a 64-bit sum (no wrap-around, as libpcap checks), bounded for the verifier.
          emit(ALU | OP_MOV | SRC_X, R_T, R_X, 0, 0);
          emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, k);
          jump(JMP | OP_JGT | SRC_K, R_T, 0, MAX_PACKET_OFFSET - bytes, "fail");
          const tagged = label();
          const done = label();
          jump(JMP | OP_JNE | SRC_K, R_TAG, 0, 0, tagged);
          emit(ALU64 | OP_MOV | SRC_X, R_U, R_DATA, 0, 0);
          emit(ALU64 | OP_ADD | SRC_X, R_U, R_T, 0, 0);
          emit(ALU64 | OP_MOV | SRC_X, R_T, R_U, 0, 0);
          emit(ALU64 | OP_ADD | SRC_K, R_T, 0, 0, bytes);
          jump(JMP | OP_JGT | SRC_X, R_T, R_END, 0, "fail");
          emit(LDX | MEM | EBPF_SIZE[size], R_A, R_U, 0, 0);
          swap(R_A, size);
          jump(JMP | OP_JA, 0, 0, 0, done);
          place(tagged);
          emit(ALU64 | OP_MOV | SRC_X, R_L, R_T, 0, 0);
          taggedIndirect(size);
          place(done);
        }
        break;
      }
      case Bpf.ST:
      case Bpf.STX:
        emit(STX | MEM | SIZE_W, R_FP, cls === Bpf.ST ? R_A : R_X, SCRATCH_BASE + 4 * k, 0);
        break;
      case Bpf.ALU: {
        const op = code & 0xf0;
        if (op === Bpf.NEG) {
          emit(ALU | Bpf.NEG, R_A, 0, 0, 0);
          break;
        }
        if ((code & 0x08) === Bpf.K) {
          if ((op === Bpf.DIV || op === Bpf.MOD) && k === 0) {
            jump(JMP | OP_JA, 0, 0, 0, "fail");
            break;
          }
          emit(ALU | op | SRC_K, R_A, 0, 0, k);
          break;
        }
        if (op === Bpf.DIV || op === Bpf.MOD) {
          jump(JMP32 | OP_JEQ | SRC_K, R_X, 0, 0, "fail");
        }
        if (op === Bpf.LSH || op === Bpf.RSH) {
          // if X < 32 goto shift; A = 0; skip the shift
          emit(JMP32 | OP_JLT | SRC_K, R_X, 0, 2, 32);
          emit(ALU | OP_MOV | SRC_K, R_A, 0, 0, 0);
          emit(JMP | OP_JA, 0, 0, 1, 0);
        }
        emit(ALU | op | SRC_X, R_A, R_X, 0, 0);
        break;
      }
      case Bpf.JMP: {
        const op = code & 0xf0;
        if (op === Bpf.JA) {
          jump(JMP | OP_JA, 0, 0, 0, next + k);
          break;
        }
        if (jt === jf) {
          if (jt !== 0) jump(JMP | OP_JA, 0, 0, 0, next + jt);
          break;
        }
        const fromX = (code & 0x08) === Bpf.X;
        const [src, imm] = fromX ? [R_X, 0] : [0, k];
        const inverse = INVERSE[op];
        if (jt === 0 && inverse !== undefined) {
          // Falls through when true: jump on the opposite condition instead of jumping twice.
          jump(JMP32 | inverse | (fromX ? SRC_X : SRC_K), R_A, src, imm, next + jf);
          break;
        }
        jump(JMP32 | op | (fromX ? SRC_X : SRC_K), R_A, src, imm, next + jt);
        if (jf !== 0) jump(JMP | OP_JA, 0, 0, 0, next + jf);
        break;
      }
      case Bpf.RET:
        if ((code & 0x18) === Bpf.A) emit(ALU | OP_MOV | SRC_X, R0, R_A, 0, 0);
        else emit(ALU | OP_MOV | SRC_K, R0, 0, 0, k === 0 ? 0 : 1);
        emit(JMP | OP_EXIT, 0, 0, 0, 0);
        break;
      case Bpf.MISC:
        if (code === (Bpf.MISC | Bpf.TAX)) emit(ALU | OP_MOV | SRC_X, R_X, R_A, 0, 0);
        else emit(ALU | OP_MOV | SRC_X, R_A, R_X, 0, 0);
        break;
    }
  }
  const fail = out.length;
  if (out.some((insn) => insn.target === "fail")) {
    emit(ALU | OP_MOV | SRC_K, R0, 0, 0, 0);
    emit(JMP | OP_EXIT, 0, 0, 0, 0);
  }

  const bytes = new Uint8Array(out.length * EBPF_INSN_BYTES);
  const view = new DataView(bytes.buffer);
  out.forEach((insn, i) => {
    let off = insn.off;
    if (insn.target !== undefined) {
      const to = insn.target === "fail"
        ? fail
        : typeof insn.target === "number"
        ? starts[insn.target]
        : insn.target.at;
      off = to - (i + 1);
      if (off > 0x7fff) throw new UnsupportedFilterError("the translated filter is too large for eBPF jumps");
    }
    view.setUint8(i * 8, insn.code);
    view.setUint8(i * 8 + 1, (insn.src << 4) | insn.dst);
    view.setInt16(i * 8 + 2, off, true);
    view.setInt32(i * 8 + 4, insn.imm, true);
  });
  return bytes;
}

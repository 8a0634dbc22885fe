/**
 * Splicing a translated tcpdump expression into the loaded programs (the approach of pwru and
 * ptcpdump, done with libbpf's C API): bpf/trace.bpf.c calls a `__noinline` stub, `trace_expr`; libbpf
 * appends a copy of it after each program's own code when it relocates BPF-to-BPF calls. Before the
 * program goes to the kernel, {@link spliceExpression} finds the stub as the target of the program's
 * calls, checks its marker, and replaces it, from its first instruction to the end, with the
 * expression's eBPF (lib/filter/to_ebpf.ts). The calls keep their offsets because the stub starts where
 * it did; nothing follows it because it is the programs' only subprogram, which is checked too.
 *
 * @module
 */

/** TRACE_EXPR_MAGIC of bpf/trace_record.h: the immediate in the stub's placeholder body. */
export const TRACE_EXPR_MAGIC = 0x6e737478;

const BPF_JMP_CALL = 0x85;
const BPF_PSEUDO_CALL = 1;
const BPF_LD_IMM64 = 0x18;
const BPF_PSEUDO_FUNC = 4;
/** How far into the stub the marker may sit (clang emits `r0 = MAGIC; exit`). */
const MARKER_WINDOW = 4;

/** The stub could not be found or is not where splicing is safe: netstack's BPF object and this disagree. */
export class SpliceError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SpliceError";
  }
}

/**
 * Returns `insns` (a relocated program, 8 bytes per instruction) with the `trace_expr` stub replaced
 * by `body`. Throws {@link SpliceError} when the program does not call exactly one subprogram, when
 * that subprogram is not last, or when it lacks the marker.
 */
export function spliceExpression(insns: Uint8Array, body: Uint8Array): Uint8Array<ArrayBuffer> {
  if (insns.length % 8 !== 0 || body.length % 8 !== 0) throw new SpliceError("instructions are 8 bytes each");
  const view = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const count = insns.length / 8;
  let stub = -1;
  for (let i = 0; i < count; i++) {
    const code = view.getUint8(i * 8);
    const src = view.getUint8(i * 8 + 1) >> 4;
    if (code === BPF_LD_IMM64 && src === BPF_PSEUDO_FUNC) {
      throw new SpliceError(`instruction ${i} takes a function's address: more than one subprogram`);
    }
    if (code !== BPF_JMP_CALL || src !== BPF_PSEUDO_CALL) continue;
    const target = i + 1 + view.getInt32(i * 8 + 4, true);
    if (stub !== -1 && target !== stub) throw new SpliceError("the program calls more than one subprogram");
    stub = target;
  }
  if (stub <= 0 || stub >= count) throw new SpliceError("the program has no call to trace_expr");
  for (let i = 0; i < stub; i++) {
    const code = view.getUint8(i * 8);
    if (code === BPF_JMP_CALL && view.getUint8(i * 8 + 1) >> 4 === BPF_PSEUDO_CALL) continue;
    // Nothing in the main program may jump past its own end into the stub.
    const cls = code & 0x07;
    if ((cls === 0x05 || cls === 0x06) && code !== BPF_JMP_CALL && (code & 0xf0) !== 0x90) {
      const target = i + 1 + view.getInt16(i * 8 + 2, true);
      if (target >= stub) throw new SpliceError(`instruction ${i} jumps into the stub`);
    }
  }
  let marked = false;
  for (let i = stub; i < Math.min(count, stub + MARKER_WINDOW); i++) {
    const code = view.getUint8(i * 8);
    if ((code === 0xb7 || code === 0xb4) && view.getInt32(i * 8 + 4, true) === TRACE_EXPR_MAGIC) {
      marked = true;
    }
  }
  if (!marked) throw new SpliceError("the subprogram the program calls is not the trace_expr stub");
  const result = new Uint8Array(stub * 8 + body.length);
  result.set(insns.subarray(0, stub * 8));
  result.set(body, stub * 8);
  return result;
}

/**
 * Splicing the expression into a relocated program: the stub is found as the call target, checked by its
 * marker, and replaced to the end; anything else is refused rather than loaded wrongly.
 */

import assert from "node:assert/strict";
import { SpliceError, spliceExpression, TRACE_EXPR_MAGIC } from "../../lib/trace/splice.ts";
import { TRACE_OBJECT } from "../../lib/trace/trace_object.generated.ts";

function insn(code: number, dst: number, src: number, off: number, imm: number): number[] {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, code);
  view.setUint8(1, (src << 4) | dst);
  view.setInt16(2, off, true);
  view.setInt32(4, imm, true);
  return [...bytes];
}

const EXIT = insn(0x95, 0, 0, 0, 0);
const MOV_R0 = (imm: number) => insn(0xb7, 0, 0, 0, imm);
const CALL = (imm: number) => insn(0x85, 0, 1, 0, imm);

Deno.test("splice: replaces the called stub from its start to the end", () => {
  // 0: call +2 -> 3; 1: r0 = 1; 2: exit; 3: r0 = MAGIC; 4: exit
  const program = new Uint8Array([...CALL(2), ...MOV_R0(1), ...EXIT, ...MOV_R0(TRACE_EXPR_MAGIC), ...EXIT]);
  const body = new Uint8Array([...MOV_R0(7), ...MOV_R0(8), ...EXIT]);
  const result = spliceExpression(program, body);
  assert.deepEqual(result, new Uint8Array([...program.subarray(0, 24), ...body]));
});

Deno.test("splice: refuses a program without the stub, with two subprograms, or a wrong marker", () => {
  const body = new Uint8Array([...MOV_R0(1), ...EXIT]);
  assert.throws(() => spliceExpression(new Uint8Array([...MOV_R0(1), ...EXIT]), body), SpliceError);
  const unmarked = new Uint8Array([...CALL(2), ...MOV_R0(1), ...EXIT, ...MOV_R0(5), ...EXIT]);
  assert.throws(() => spliceExpression(unmarked, body), /not the trace_expr stub/);
  const two = new Uint8Array([
    ...CALL(3),
    ...CALL(4),
    ...MOV_R0(1),
    ...EXIT,
    ...MOV_R0(TRACE_EXPR_MAGIC),
    ...EXIT,
    ...MOV_R0(TRACE_EXPR_MAGIC),
    ...EXIT,
  ]);
  assert.throws(() => spliceExpression(two, body), /more than one subprogram/);
});

Deno.test("splice: the embedded object's stub carries TRACE_EXPR_MAGIC", () => {
  // The marker must be in the object as an immediate (little-endian bytes of the magic).
  const magic = new Uint8Array(new Uint32Array([TRACE_EXPR_MAGIC]).buffer);
  const haystack = TRACE_OBJECT;
  let found = false;
  for (let i = 0; i + 8 <= haystack.length && !found; i++) {
    if (haystack[i] === 0xb7 && magic.every((b, j) => haystack[i + 4 + j] === b)) found = true;
  }
  assert.ok(found);
});

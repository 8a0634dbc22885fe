/**
 * The tracer's TypeScript layouts (lib/trace/layout.ts) against the BTF of the embedded BPF object: the
 * member names, offsets and sizes come from the compiled object, never from a copy in this file, so a
 * change of bpf/trace_record.h without the TypeScript side (or the reverse) fails here.
 */

import assert from "node:assert/strict";
import { Btf, BtfError, BtfKind, type BtfStruct, elfSection } from "../../lib/trace/btf.ts";
import {
  type StructLayout,
  TRACE_CONFIG_LAYOUT,
  TRACE_COUNTER_KEY_LAYOUT,
  TRACE_COUNTERS_LAYOUT,
  TRACE_LAYOUTS,
  TRACE_OBJECT_NAMES,
  TRACE_RECORD_LAYOUT,
} from "../../lib/trace/layout.ts";
import { TRACE_OBJECT } from "../../lib/trace/trace_object.generated.ts";
import { decodeRecord, encodeRecord, RECORD_VERSION } from "../../lib/trace/record.ts";
import { encodeFilter, parseHostPrefix, TRACE_MAX_SNAPLEN, TRACE_PROTOCOLS } from "../../lib/trace/filter.ts";
import { encodeCounterKey, sumCounters } from "../../lib/trace/counters.ts";

const btf = Btf.fromElf(TRACE_OBJECT);

/** Every way `layout` disagrees with the compiled struct; empty when they are the same. */
function layoutDifferences(compiled: BtfStruct, layout: StructLayout): string[] {
  const where = `struct ${compiled.name}`;
  const out: string[] = [];
  if (compiled.size !== layout.bytes) {
    out.push(`${where} is ${compiled.size} bytes, TypeScript says ${layout.bytes}`);
  }
  const names = new Set(compiled.members.map((m) => m.name));
  for (const member of compiled.members) {
    const field = layout.fields[member.name];
    if (field === undefined) {
      out.push(
        `${where} has member ${member.name} (@${member.offset}, ${member.size} bytes) unknown to TypeScript`,
      );
    } else if (field.offset !== member.offset || field.size !== member.size) {
      out.push(
        `${where}.${member.name} is @${member.offset}, ${member.size} bytes; TypeScript says @${field.offset}, ` +
          `${field.size} bytes`,
      );
    }
  }
  for (const name of Object.keys(layout.fields)) {
    if (!names.has(name)) out.push(`${where} has no member ${name}, which TypeScript declares`);
  }
  const order = Object.keys(layout.fields).filter((n) => names.has(n));
  const compiledOrder = compiled.members.map((m) => m.name).filter((n) => n in layout.fields);
  if (order.join() !== compiledOrder.join()) out.push(`${where}: members declared in another order`);
  return out;
}

/** The little-endian unsigned integer of `size` bytes at `offset`, as a bigint. */
function readLe(bytes: Uint8Array, offset: number, size: number): bigint {
  let value = 0n;
  for (let i = size - 1; i >= 0; i--) value = value << 8n | BigInt(bytes[offset + i]);
  return value;
}

function writeLe(bytes: Uint8Array, offset: number, size: number, value: bigint): void {
  for (let i = 0; i < size; i++) bytes[offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}

/**
 * Checks every member of the compiled struct in `bytes` against `expected`, by the member's C name: a
 * member the test does not know fails (a field added in C must be given a value here and in the
 * encoder). Members named reserved* must be zero. Arrays compare as byte lists.
 */
function assertMembers(compiled: BtfStruct, bytes: Uint8Array, expected: Record<string, bigint | number[]>) {
  assert.equal(bytes.length >= compiled.size, true, `${bytes.length} bytes hold no struct ${compiled.name}`);
  for (const member of compiled.members) {
    const want = expected[member.name] ?? (member.name.startsWith("reserved") ? 0n : undefined);
    assert.notEqual(
      want,
      undefined,
      `struct ${compiled.name}.${member.name}: no expected value (new field?)`,
    );
    if (Array.isArray(want)) {
      assert.deepEqual([...bytes.subarray(member.offset, member.offset + member.size)], want, member.name);
    } else {
      assert.equal(readLe(bytes, member.offset, member.size), want, `struct ${compiled.name}.${member.name}`);
    }
  }
}

Deno.test("trace layout: the BTF reader finds the object's structs, variables, maps and programs", () => {
  assert.ok(elfSection(TRACE_OBJECT, ".BTF") !== undefined);
  assert.equal(elfSection(TRACE_OBJECT, ".no-such-section"), undefined);
  const functions = btf.types.filter((t) => t?.kind === BtfKind.FUNC).map((t) => t!.name);
  assert.ok(functions.includes(TRACE_OBJECT_NAMES.xdp), `programs: ${functions}`);
  assert.ok(functions.includes(TRACE_OBJECT_NAMES.tc), `programs: ${functions}`);
  const maps = btf.sectionVariables(".maps");
  assert.ok(maps.includes(TRACE_OBJECT_NAMES.ring), `maps: ${maps}`);
  assert.ok(maps.includes(TRACE_OBJECT_NAMES.counters), `maps: ${maps}`);
  // The filter is the whole of .rodata: user space writes TRACE_CONFIG_LAYOUT.bytes bytes into it.
  assert.deepEqual(btf.sectionVariables(".rodata"), [TRACE_OBJECT_NAMES.config]);
  assert.equal(btf.variable(TRACE_OBJECT_NAMES.config).name, TRACE_CONFIG_LAYOUT.struct);
  const key = btf.mapAttribute(TRACE_OBJECT_NAMES.counters, "key").type!;
  const value = btf.mapAttribute(TRACE_OBJECT_NAMES.counters, "value").type!;
  assert.equal(btf.struct(key).name, TRACE_COUNTER_KEY_LAYOUT.struct);
  assert.equal(btf.struct(value).name, TRACE_COUNTERS_LAYOUT.struct);
  // A ring buffer's size is a power of two (the reader masks positions with it).
  const ring = btf.mapAttribute(TRACE_OBJECT_NAMES.ring, "max_entries").value!;
  assert.equal(ring & (ring - 1), 0, `ring of ${ring} bytes`);
  assert.throws(() => btf.struct("no_such_struct"), BtfError);
  assert.throws(() => Btf.fromElf(new Uint8Array(64)), BtfError);
});

Deno.test("trace layout: every TypeScript layout equals its struct in the object's BTF", () => {
  const differences = TRACE_LAYOUTS.flatMap((layout) => layoutDifferences(btf.struct(layout.struct), layout));
  assert.deepEqual(differences, [], "lib/trace/layout.ts disagrees with bpf/trace_record.h as compiled");
});

Deno.test("trace layout: the check fails when either side changes", () => {
  const record = btf.struct(TRACE_RECORD_LAYOUT.struct);
  const ifindex = record.members.find((m) => m.name === "ifindex")!;
  const moved = {
    ...TRACE_RECORD_LAYOUT,
    fields: { ...TRACE_RECORD_LAYOUT.fields, ifindex: { offset: ifindex.offset + 4, size: ifindex.size } },
  };
  const expected = `struct trace_record.ifindex is @${ifindex.offset}, ${ifindex.size} bytes; ` +
    `TypeScript says @${ifindex.offset + 4}, ${ifindex.size} bytes`;
  assert.ok(layoutDifferences(record, moved).includes(expected), expected);
  const { reserved: _, ...withoutReserved } = TRACE_RECORD_LAYOUT.fields;
  assert.match(
    layoutDifferences(record, { ...TRACE_RECORD_LAYOUT, fields: withoutReserved }).join("\n"),
    /member reserved .* unknown to TypeScript/,
  );
  assert.match(
    layoutDifferences(record, { ...TRACE_RECORD_LAYOUT, bytes: record.size + 8 }).join("\n"),
    new RegExp(`is ${record.size} bytes, TypeScript says ${record.size + 8}`),
  );
  // The C side renamed a member: patch the name in a copy of the object's BTF string table.
  const object = TRACE_OBJECT.slice();
  const section = elfSection(object, ".BTF")!;
  const name = new TextEncoder().encode("\0wire_len\0");
  let at = -1;
  for (let i = 0; i + name.length <= section.length && at < 0; i++) {
    if (name.every((b, j) => section[i + j] === b)) at = i;
  }
  assert.ok(at >= 0, "wire_len in the BTF strings");
  section.set(new TextEncoder().encode("wire_lx_"), at + 1); // same length: only the name changes
  const renamed = layoutDifferences(
    Btf.fromElf(object).struct(TRACE_RECORD_LAYOUT.struct),
    TRACE_RECORD_LAYOUT,
  );
  assert.match(renamed.join("\n"), /has member wire_lx_/);
  assert.match(renamed.join("\n"), /has no member wire_len/);
});

Deno.test("trace layout: records are encoded and decoded where the object's BTF puts each member", () => {
  const compiled = btf.struct(TRACE_RECORD_LAYOUT.struct);
  const data = new Uint8Array([9, 8, 7]);
  const encoded = encodeRecord({
    timestampNs: 0x1_0000_0002,
    ifindex: 3,
    direction: "egress",
    wireLength: 60,
    data,
  });
  const values = {
    timestamp_ns: 0x1_0000_0002n,
    ifindex: 3n,
    wire_len: 60n,
    cap_len: 3n,
    direction: 1n,
    version: BigInt(RECORD_VERSION),
  };
  assertMembers(compiled, encoded, values);
  assert.deepEqual([...encoded.subarray(compiled.size)], [...data], "the frame follows the header");
  // The kernel's side: a record written at the BTF offsets decodes to the same values.
  const kernel = new Uint8Array(compiled.size + data.length);
  for (const member of compiled.members) {
    writeLe(kernel, member.offset, member.size, values[member.name as keyof typeof values] ?? 0n);
  }
  kernel.set(data, compiled.size);
  const record = decodeRecord(kernel);
  assert.equal(record.timestampNs, 0x1_0000_0002);
  assert.equal(record.ifindex, 3);
  assert.equal(record.wireLength, 60);
  assert.equal(record.capturedLength, 3);
  assert.equal(record.direction, "egress");
  assert.deepEqual([...record.data], [...data]);
});

Deno.test("trace layout: the filter is encoded where the object's BTF puts each member of trace_config", () => {
  const compiled = btf.struct(btf.variable(TRACE_OBJECT_NAMES.config).id);
  const bytes = encodeFilter({
    snaplen: 256,
    proto: "udp",
    host: parseHostPrefix("192.168.7.9/20")!,
    port: 5353,
    expression: { text: "udp", ebpf: () => new Uint8Array(8) },
  }, true);
  assert.equal(bytes.length, compiled.size);
  assertMembers(compiled, bytes, {
    snaplen: 256n,
    proto: BigInt(TRACE_PROTOCOLS.udp),
    host_family: 4n,
    port_set: 1n,
    link_raw: 1n,
    expr: 1n,
    port: 5353n,
    host_addr: [192, 168, 0, 0, ...new Array(12).fill(0)],
    host_mask: [255, 255, 240, 0, ...new Array(12).fill(0)],
  });
});

Deno.test("trace layout: counter keys and per-CPU values follow the counters map's BTF", () => {
  const keyType = btf.struct(btf.mapAttribute(TRACE_OBJECT_NAMES.counters, "key").type!);
  assertMembers(keyType, encodeCounterKey(7, "egress"), { ifindex: 7n, direction: 1n });
  assertMembers(keyType, encodeCounterKey(0x8000_0001, "ingress"), { ifindex: 0x8000_0001n, direction: 0n });
  const valueType = btf.struct(btf.mapAttribute(TRACE_OBJECT_NAMES.counters, "value").type!);
  const cpus = 3;
  const value = new Uint8Array(cpus * valueType.size);
  const base: Record<string, bigint> = { seen: 1000n, matched: 100n, submitted: 10n, lost: 1n };
  for (let cpu = 0; cpu < cpus; cpu++) {
    for (const member of valueType.members) {
      assert.ok(member.name in base, `struct ${valueType.name}.${member.name}: not summed by TypeScript`);
      writeLe(value, cpu * valueType.size + member.offset, member.size, base[member.name] * BigInt(cpu + 1));
    }
  }
  assert.deepEqual(sumCounters(value, cpus), { seen: 6000, matched: 600, submitted: 60, lost: 6 });
});

Deno.test("trace layout: the constants of bpf/trace_record.h match the TypeScript side", async () => {
  const header = await Deno.readTextFile(new URL("../../bpf/trace_record.h", import.meta.url));
  const defines = new Map<string, number>();
  for (const [, name, value] of header.matchAll(/^#define (TRACE_\w+) (\d+)\b/gm)) {
    defines.set(name, Number(value));
  }
  assert.equal(defines.get("TRACE_RECORD_VERSION"), RECORD_VERSION);
  assert.equal(defines.get("TRACE_MAX_SNAPLEN"), TRACE_MAX_SNAPLEN);
  assert.equal(defines.get("TRACE_DIR_INGRESS"), 0);
  assert.equal(defines.get("TRACE_DIR_EGRESS"), 1);
  const protocols = Object.fromEntries(
    [...defines].filter(([name]) => name.startsWith("TRACE_PROTO_")).map(([name, value]) => [
      name.slice("TRACE_PROTO_".length).toLowerCase(),
      value,
    ]),
  );
  assert.deepEqual(protocols, { ...TRACE_PROTOCOLS });
});

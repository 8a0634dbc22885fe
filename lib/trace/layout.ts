/**
 * The layouts of the structs the tracer shares with its BPF programs (bpf/trace_record.h), as the
 * TypeScript side reads and writes them: every member by its C name, with byte offset and size, and the
 * struct's size. record.ts, filter.ts and counters.ts take their offsets from here and nowhere else.
 *
 * tests/unit/trace_layout.test.ts reads the BTF of the embedded object (lib/trace/btf.ts) and requires
 * each layout below to equal the compiled struct member for member: a field added, removed, moved or
 * resized in C without the same change here (or the reverse) fails the tests. All multi-byte fields are
 * in the host's byte order (little-endian) unless the C header marks them "network order".
 *
 * @module
 */

/** Where one member lies in its struct. */
export interface FieldLayout {
  /** Byte offset from the start of the struct. */
  readonly offset: number;
  /** Size in bytes (arrays: the whole array). */
  readonly size: number;
}

/** A C struct as the TypeScript side uses it. */
export interface StructLayout {
  /** The C struct's name (`struct NAME`), as in the object's BTF. */
  readonly struct: string;
  /** sizeof(struct NAME). */
  readonly bytes: number;
  /** Every member, by its C name, in declaration order. */
  readonly fields: Readonly<Record<string, FieldLayout>>;
}

/** struct trace_record: the fixed header of one ring-buffer record; the captured frame follows it. */
export const TRACE_RECORD_LAYOUT = {
  struct: "trace_record",
  bytes: 24,
  fields: {
    timestamp_ns: { offset: 0, size: 8 },
    ifindex: { offset: 8, size: 4 },
    wire_len: { offset: 12, size: 4 },
    cap_len: { offset: 16, size: 2 },
    direction: { offset: 18, size: 1 },
    version: { offset: 19, size: 1 },
    reserved: { offset: 20, size: 4 },
  },
} as const satisfies StructLayout;

/** struct trace_config: the filter, the object's `.rodata`, written before load. */
export const TRACE_CONFIG_LAYOUT = {
  struct: "trace_config",
  bytes: 48,
  fields: {
    snaplen: { offset: 0, size: 4 },
    proto: { offset: 4, size: 1 },
    host_family: { offset: 5, size: 1 },
    port_set: { offset: 6, size: 1 },
    link_raw: { offset: 7, size: 1 },
    port: { offset: 8, size: 2 },
    expr: { offset: 10, size: 1 },
    reserved1: { offset: 11, size: 1 },
    reserved2: { offset: 12, size: 4 },
    host_addr: { offset: 16, size: 16 },
    host_mask: { offset: 32, size: 16 },
  },
} as const satisfies StructLayout;

/** struct trace_counter_key: the key of the per-CPU counters map, one per (interface, hook). */
export const TRACE_COUNTER_KEY_LAYOUT = {
  struct: "trace_counter_key",
  bytes: 8,
  fields: {
    ifindex: { offset: 0, size: 4 },
    direction: { offset: 4, size: 4 },
  },
} as const satisfies StructLayout;

/** struct trace_counters: the value of the counters map, per CPU (four u64). */
export const TRACE_COUNTERS_LAYOUT = {
  struct: "trace_counters",
  bytes: 32,
  fields: {
    seen: { offset: 0, size: 8 },
    matched: { offset: 8, size: 8 },
    submitted: { offset: 16, size: 8 },
    lost: { offset: 24, size: 8 },
  },
} as const satisfies StructLayout;

/** Every layout shared with the BPF object; the layout test checks each against the object's BTF. */
export const TRACE_LAYOUTS: readonly StructLayout[] = [
  TRACE_RECORD_LAYOUT,
  TRACE_CONFIG_LAYOUT,
  TRACE_COUNTER_KEY_LAYOUT,
  TRACE_COUNTERS_LAYOUT,
];

/** The object's names user space looks up: the `.rodata` variable and the maps, and the programs. */
export const TRACE_OBJECT_NAMES = {
  /** The one variable of `.rodata`, of type struct trace_config. */
  config: "trace_config",
  /** The ring buffer of records. */
  ring: "trace_ring",
  /** The per-CPU counters map: key struct trace_counter_key, value struct trace_counters. */
  counters: "trace_counters",
  /** Counter slots: which interface owns each (array of u32 ifindex). */
  slotOwner: "trace_slot_owner",
  /** Counter slots: the owners' counters (per-CPU array of struct trace_counters, slot * 2 + direction). */
  slotCounters: "trace_slot_counters",
  /** The XDP (ingress) program. */
  xdp: "trace_xdp",
  /** The TC egress program. */
  tc: "trace_tc",
  /** The tcx ingress program, used when another program holds the XDP hook. */
  tcIngress: "trace_tc_ingress",
} as const;

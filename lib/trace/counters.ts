/**
 * The tracer's per-CPU counters map in bytes: its key (struct trace_counter_key) and the sum over CPUs
 * of its values (struct trace_counters), laid out as lib/trace/layout.ts says.
 *
 * @module
 */

import type { Direction } from "./record.ts";
import { TRACE_COUNTER_KEY_LAYOUT, TRACE_COUNTERS_LAYOUT } from "./layout.ts";

/** sizeof(struct trace_counters): the bytes of one CPU's value. */
export const COUNTERS_BYTES = TRACE_COUNTERS_LAYOUT.bytes;

/** The kernel's counters of one (interface, hook), summed over CPUs. */
export interface KernelCounters {
  /** Every packet the hook ran for. */
  seen: number;
  /** Passed the filters. */
  matched: number;
  /** Written to the ring buffer. */
  submitted: number;
  /** Matched but dropped because the ring buffer was full. */
  lost: number;
}

/** TRACE_COUNTER_SLOTS: how many interfaces can have their counters in the array maps (a power of two). */
export const TRACE_COUNTER_SLOTS = 64;

/** The counter slot an interface may own (bpf/trace_record.h, TRACE_COUNTER_SLOTS). */
export function counterSlot(ifindex: number): number {
  return ifindex & (TRACE_COUNTER_SLOTS - 1);
}

/** A u32 map key or value (host order). */
export function u32Bytes(value: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

/** Encodes the counters map's key of one interface and hook. */
export function encodeCounterKey(ifindex: number, direction: Direction): Uint8Array<ArrayBuffer> {
  const { bytes, fields } = TRACE_COUNTER_KEY_LAYOUT;
  const key = new Uint8Array(bytes);
  const view = new DataView(key.buffer);
  view.setUint32(fields.ifindex.offset, ifindex, true);
  view.setUint32(fields.direction.offset, direction === "ingress" ? 0 : 1, true);
  return key;
}

/** Sums a per-CPU value (`cpus` consecutive struct trace_counters, as a map lookup returns it). */
export function sumCounters(value: Uint8Array, cpus: number): KernelCounters {
  const { fields } = TRACE_COUNTERS_LAYOUT;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const sum: KernelCounters = { seen: 0, matched: 0, submitted: 0, lost: 0 };
  for (let cpu = 0; cpu < cpus; cpu++) {
    const base = cpu * COUNTERS_BYTES;
    for (const name of ["seen", "matched", "submitted", "lost"] as const) {
      sum[name] += Number(view.getBigUint64(base + fields[name].offset, true));
    }
  }
  return sum;
}

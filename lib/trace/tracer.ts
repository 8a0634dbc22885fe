/**
 * The tracer: loads the embedded BPF object with the filter in its `.rodata`, attaches it to the
 * interfaces, reads the ring buffer and the per-CPU counters, and detaches on {@link Tracer.close}.
 *
 * The read loop never blocks the event loop and allocates no Promise per record: it drains the mmapped
 * ring in batches (a `setImmediate` yield between full batches); while records keep coming it pauses
 * 2 ms between drains, and when a drain finds the ring empty it awaits one nonblocking `poll` on the
 * ring's fd and an eventfd (for {@link Tracer.stop}) with a 10 ms timeout. The BPF side wakes the reader
 * only when 64 KiB are pending (BPF_RB_NO_WAKEUP otherwise), so under load the reader runs in large
 * batches and at low rates it finds records within the poll timeout.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import { AttachType, BpfObject, mapLookup, mapUpdate, possibleCpus, routeLibbpfLog } from "../ffi/libbpf.ts";
import { interfaceIndex, isRoot, lastError, Libc, libc } from "../ffi/libc.ts";
import { Errno, SystemError } from "../ffi/errno.ts";
import { RuntimeError } from "../cli/errors.ts";
import { logger } from "../log.ts";
import {
  attachEgress,
  type Attachment,
  attachXdp,
  type EgressHookOption,
  explainError,
  type XdpModeOption,
} from "./attach.ts";
import { describeFilter, encodeFilter, type TraceFilter } from "./filter.ts";
import { RingBufferReader, type SampleHandler } from "./ring_buffer_reader.ts";
import { TRACE_OBJECT } from "./trace_object.generated.ts";
import { RECORD_HEADER_BYTES, RECORD_OFFSETS } from "./record.ts";
import type { Direction } from "./record.ts";
import { COUNTERS_BYTES, encodeCounterKey, sumCounters } from "./counters.ts";
import { TRACE_OBJECT_NAMES } from "./layout.ts";

const log = logger("trace");

/** How long the reader sleeps in poll when the ring is empty and no wake-up comes. */
const POLL_TIMEOUT_MS = 10;
/** Pause between drains while records keep arriving. */
const BUSY_SLEEP_MS = 2;
/** Records handled per drain before yielding to the event loop. */
const DRAIN_BATCH = 8192;

/** Which hooks to attach. */
export type DirectionOption = "ingress" | "egress" | "both";

/** What {@link Tracer.open} attaches and filters. */
export interface TracerOptions {
  interfaces: string[];
  direction: DirectionOption;
  mode: XdpModeOption;
  egressHook: EgressHookOption;
  filter: TraceFilter;
}

/** Counters of one (interface, hook): the kernel's, summed over CPUs, plus what user space read. */
export interface HookCounters {
  iface: string;
  ifindex: number;
  direction: Direction;
  hook: string;
  seen: number;
  matched: number;
  /** Written to the ring buffer by the kernel. */
  submitted: number;
  /** Matched but dropped because the ring buffer was full. */
  lost: number;
  /** Records read by this process. */
  captured: number;
}

/** Microseconds to add to a CLOCK_MONOTONIC reading to get wall-clock time (CLOCK_REALTIME). */
export function monotonicToWallMicros(): number {
  const spec = new Uint8Array(16);
  const view = new DataView(spec.buffer);
  const read = (clock: number) => {
    if (libc().clock_gettime(clock, spec) !== 0) throw lastError("clock_gettime");
    return Number(view.getBigInt64(0, true)) * 1e6 + Math.floor(Number(view.getBigInt64(8, true)) / 1000);
  };
  const monotonic = read(1);
  const realtime = read(0);
  return realtime - monotonic;
}

/** Attempts at loading when the verifier is interrupted by a signal (it then fails with EAGAIN). */
const LOAD_ATTEMPTS = 5;

/**
 * Opens the embedded object, writes the filter into its `.rodata`, sets the TC program's expected attach
 * type (tcx egress: needed at load for a tcx link, ignored by kernels without tcx) and loads it. The
 * verifier gives up with EAGAIN when a signal arrives during its run (a profiler's SIGPROF, say); the
 * object is then reopened and loaded again. Failures become one-line RuntimeErrors.
 */
function loadObject(filter: TraceFilter, ifaces: string): BpfObject {
  routeLibbpfLog();
  const config = encodeFilter(filter);
  for (let attempt = 1;; attempt++) {
    const object = BpfObject.openMemory(TRACE_OBJECT, "netstack_trace");
    try {
      const rodata = object.map(".rodata");
      if (object.valueSize(rodata) !== config.length) {
        throw new Error(
          `.rodata is ${object.valueSize(rodata)} bytes, expected ${config.length}: rebuild bpf/`,
        );
      }
      object.setInitialValue(rodata, config);
      object.setExpectedAttachType(object.program(TRACE_OBJECT_NAMES.tc), AttachType.TCX_EGRESS);
      object.load();
      return object;
    } catch (error) {
      object.close();
      if (!(error instanceof SystemError)) throw error;
      if (error.errno === Errno.EAGAIN && attempt < LOAD_ATTEMPTS) {
        log.debug("BPF load interrupted (EAGAIN), attempt {attempt}", { attempt });
        continue;
      }
      const denied = error.errno === Errno.EPERM || error.errno === Errno.EACCES;
      if (denied && !(isRoot() && error.errno === Errno.EACCES)) {
        throw explainError(error, ifaces, "loading the BPF programs");
      }
      // EACCES as root is the verifier rejecting a program, not missing privileges.
      throw new RuntimeError(
        `loading the BPF programs failed: ${error.message} (--log-level debug shows libbpf's and the verifier's log)`,
        { cause: error },
      );
    }
  }
}

/** A loaded and attached tracer. */
export class Tracer {
  readonly #object: BpfObject;
  readonly #attachments: Attachment[];
  readonly #reader: RingBufferReader;
  readonly #countersFd: number;
  readonly #cpus: number;
  readonly #stopFd: number;
  readonly #pollFds: Uint8Array<ArrayBuffer>;
  /** captured records per counter slot (ifindex * 2 + direction) */
  readonly #captured = new Map<number, number>();
  #stopping = false;
  #closed = false;

  private constructor(
    object: BpfObject,
    attachments: Attachment[],
    reader: RingBufferReader,
    ringFd: number,
    countersFd: number,
  ) {
    this.#object = object;
    this.#attachments = attachments;
    this.#reader = reader;
    this.#countersFd = countersFd;
    this.#cpus = possibleCpus();
    this.#stopFd = libc().eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
    if (this.#stopFd < 0) throw lastError("eventfd");
    this.#pollFds = new Uint8Array(16);
    const view = new DataView(this.#pollFds.buffer);
    view.setInt32(0, ringFd, true);
    view.setInt16(4, Libc.POLLIN, true);
    view.setInt32(8, this.#stopFd, true);
    view.setInt16(12, Libc.POLLIN, true);
  }

  /**
   * Loads the programs with `options.filter`, attaches them and maps the ring. Any failure undoes what
   * was done and throws a RuntimeError with one clear line (missing interface, privileges, busy XDP…).
   */
  static open(options: TracerOptions): Tracer {
    const interfaces = [...new Set(options.interfaces)];
    const indexes = interfaces.map((name) => {
      const ifindex = interfaceIndex(name);
      if (ifindex === 0) throw new RuntimeError(`interface ${name} not found`);
      return ifindex;
    });
    const object = loadObject(options.filter, interfaces.join(","));
    const attachments: Attachment[] = [];
    let reader: RingBufferReader | undefined;
    try {
      const xdp = object.program(TRACE_OBJECT_NAMES.xdp);
      const tc = object.program(TRACE_OBJECT_NAMES.tc);
      log.debug("loaded BPF programs: {filter}", { filter: describeFilter(options.filter) });
      const countersMap = object.map(TRACE_OBJECT_NAMES.counters);
      const countersFd = object.mapFd(countersMap);
      const zeros = new Uint8Array(possibleCpus() * COUNTERS_BYTES);
      const ring = object.map(TRACE_OBJECT_NAMES.ring);
      const ringFd = object.mapFd(ring);
      reader = new RingBufferReader(ringFd, object.maxEntries(ring));
      const onFallback = (reason: string) => log.warn(reason);
      for (let i = 0; i < interfaces.length; i++) {
        const [name, ifindex] = [interfaces[i], indexes[i]];
        if (options.direction !== "egress") {
          mapUpdate(countersFd, encodeCounterKey(ifindex, "ingress"), zeros);
          attachments.push(attachXdp(object.programFd(xdp), name, ifindex, options.mode, onFallback));
        }
        if (options.direction !== "ingress") {
          mapUpdate(countersFd, encodeCounterKey(ifindex, "egress"), zeros);
          attachments.push(attachEgress(object.programFd(tc), name, ifindex, options.egressHook, onFallback));
        }
      }
      for (const a of attachments) log.info("attached {iface} {direction} {hook}", { ...a });
      return new Tracer(object, attachments, reader, ringFd, countersFd);
    } catch (error) {
      for (const attachment of attachments) attachment.detach();
      reader?.close();
      object.close();
      throw error;
    }
  }

  /** The hooks attached, in order. */
  get attachments(): readonly Attachment[] {
    return this.#attachments;
  }

  /** Asks {@link Tracer.run} to return; safe from signal handlers and timers. */
  stop(): void {
    if (this.#stopping || this.#closed) return;
    this.#stopping = true;
    const one = new Uint8Array(8);
    one[0] = 1;
    libc().write(this.#stopFd, one, 8n);
  }

  /** Whether {@link Tracer.stop} was called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /**
   * Reads records until {@link Tracer.stop} or until `onSample` returns false. `onSample` gets the ring's
   * memory, the offset and length of one record (see record.ts); `onIdle` runs each time the ring is
   * empty, before waiting (a place to flush output).
   */
  async run(onSample: SampleHandler, onIdle?: () => void): Promise<void> {
    const captured = this.#captured;
    const handler: SampleHandler = (bytes, offset, length) => {
      if (length >= RECORD_HEADER_BYTES) {
        const at = offset + RECORD_OFFSETS.ifindex;
        const ifindex = (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | bytes[at + 3] << 24) >>> 0;
        const slot = ifindex * 2 + (bytes[offset + RECORD_OFFSETS.direction] & 1);
        captured.set(slot, (captured.get(slot) ?? 0) + 1);
      }
      if (onSample(bytes, offset, length) === false) {
        this.#stopping = true;
        return false;
      }
    };
    while (!this.#stopping) {
      const count = this.#reader.drain(handler, DRAIN_BATCH);
      if (this.#stopping) break;
      if (count === DRAIN_BATCH) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      onIdle?.();
      if (count > 0) {
        // Traffic is flowing: let records accumulate for a moment rather than poll, which would return at
        // once for the next record and cost a thread hand-off (~60 µs) per handful of records.
        await new Promise<void>((resolve) => setTimeout(resolve, BUSY_SLEEP_MS));
        continue;
      }
      await libc().poll_nb(this.#pollFds, 2n, POLL_TIMEOUT_MS);
    }
  }

  /** The counters of every attached hook (kernel counters summed over CPUs). */
  counters(): HookCounters[] {
    const value = new Uint8Array(this.#cpus * COUNTERS_BYTES);
    return this.#attachments.map((a) => {
      mapLookup(this.#countersFd, encodeCounterKey(a.ifindex, a.direction), value);
      const sum = sumCounters(value, this.#cpus);
      const slot = a.ifindex * 2 + (a.direction === "ingress" ? 0 : 1);
      return {
        iface: a.iface,
        ifindex: a.ifindex,
        direction: a.direction,
        hook: a.hook,
        seen: sum.seen,
        matched: sum.matched,
        submitted: sum.submitted,
        lost: sum.lost,
        captured: this.#captured.get(slot) ?? 0,
      };
    });
  }

  /** Detaches every hook, unmaps the ring and unloads the programs. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopping = true;
    const errors: unknown[] = [];
    for (const attachment of this.#attachments) {
      try {
        attachment.detach();
      } catch (error) {
        errors.push(error);
      }
    }
    this.#reader.close();
    this.#object.close();
    libc().close(this.#stopFd);
    log.debug("detached {count} hooks", { count: this.#attachments.length });
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * The tracer: loads the embedded BPF object with the filter in its `.rodata`, attaches it to the
 * interfaces, reads the ring buffer and the per-CPU counters, and detaches on {@link Tracer.close}.
 *
 * Where frames start is a constant of the loaded programs (trace_config.link_raw), so interfaces of
 * different link types (Ethernet, raw IP) get one object each; every object after the first reuses the
 * first one's ring buffer and counters map, so that one reader sees every interface.
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
import {
  AttachType,
  BpfObject,
  mapLookup,
  mapUpdate,
  openAndLoadRewritten,
  possibleCpus,
  ProgType,
  routeLibbpfLog,
} from "../ffi/libbpf.ts";
import { interfaceIndex, isRoot, lastError, Libc, libc } from "../ffi/libc.ts";
import { Errno, SystemError } from "../ffi/errno.ts";
import { RuntimeError } from "../errors.ts";
import { logger } from "../log.ts";
import {
  attachEgress,
  attachIngress,
  type Attachment,
  type AttachTarget,
  type EgressHookOption,
  explainError,
  type IngressHookOption,
  type XdpModeOption,
} from "./attach.ts";
import { interfaceLink } from "./link_type.ts";
import { describeFilter, encodeFilter, type TraceFilter } from "./filter.ts";
import { RingBufferReader, type SampleHandler } from "./ring_buffer_reader.ts";
import { SpliceError, spliceExpression } from "./splice.ts";
import { TRACE_OBJECT } from "./trace_object.generated.ts";
import { RECORD_HEADER_BYTES, RECORD_OFFSETS } from "./record.ts";
import type { Direction } from "./record.ts";
import {
  COUNTERS_BYTES,
  counterSlot,
  encodeCounterKey,
  sumCounters,
  TRACE_COUNTER_SLOTS,
  u32Bytes,
} from "./counters.ts";
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
  /** Ingress hook; absent = `auto`. */
  ingressHook?: IngressHookOption;
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

/**
 * What to add to a CLOCK_MONOTONIC reading (the records' clock) to get wall-clock time
 * (CLOCK_REALTIME), as whole seconds and nanoseconds (0..999,999,999): kept apart because wall-clock
 * nanoseconds exceed 2^53.
 */
export function monotonicToWall(): { seconds: number; nanos: number } {
  const spec = new Uint8Array(16);
  const view = new DataView(spec.buffer);
  const read = (clock: number): [number, number] => {
    if (libc().clock_gettime(clock, spec) !== 0) throw lastError("clock_gettime");
    return [Number(view.getBigInt64(0, true)), Number(view.getBigInt64(8, true))];
  };
  const monotonic = read(1);
  const realtime = read(0);
  let seconds = realtime[0] - monotonic[0];
  let nanos = realtime[1] - monotonic[1];
  if (nanos < 0) {
    nanos += 1e9;
    seconds -= 1;
  }
  return { seconds, nanos };
}

/** libbpf's definitions of the programs' sections (SEC("xdp"), SEC("tc")), for the splicing handlers. */
const EXPRESSION_SECTIONS = {
  xdp: { progType: ProgType.XDP, attachType: AttachType.XDP },
  tc: { progType: ProgType.SCHED_CLS, attachType: 0 },
};

/** Attempts at loading when the verifier is interrupted by a signal (it then fails with EAGAIN). */
const LOAD_ATTEMPTS = 5;

/**
 * Opens the embedded object, writes the filter into its `.rodata`, sets the TC program's expected attach
 * type (tcx egress: needed at load for a tcx link, ignored by kernels without tcx) and loads it. The
 * verifier gives up with EAGAIN when a signal arrives during its run (a profiler's SIGPROF, say); the
 * object is then reopened and loaded again. Failures become one-line RuntimeErrors.
 */
function loadObject(filter: TraceFilter, raw: boolean, ifaces: string, shared?: SharedMaps): BpfObject {
  routeLibbpfLog();
  const config = encodeFilter(filter, raw);
  const open = () => BpfObject.openMemory(TRACE_OBJECT, "netstack_trace");
  const configure = (object: BpfObject) => {
    const rodata = object.map(".rodata");
    if (object.valueSize(rodata) !== config.length) {
      throw new Error(
        `.rodata is ${object.valueSize(rodata)} bytes, expected ${config.length}: rebuild bpf/`,
      );
    }
    object.setInitialValue(rodata, config);
    object.setExpectedAttachType(object.program(TRACE_OBJECT_NAMES.tc), AttachType.TCX_EGRESS);
    object.setExpectedAttachType(object.program(TRACE_OBJECT_NAMES.tcIngress), AttachType.TCX_INGRESS);
    const owners = object.map(TRACE_OBJECT_NAMES.slotOwner);
    if (object.maxEntries(owners) !== TRACE_COUNTER_SLOTS) {
      throw new Error(`${TRACE_OBJECT_NAMES.slotOwner} has ${object.maxEntries(owners)} slots: rebuild bpf/`);
    }
    if (shared !== undefined) {
      object.reuseMapFd(object.map(TRACE_OBJECT_NAMES.ring), shared.ringFd);
      object.reuseMapFd(object.map(TRACE_OBJECT_NAMES.counters), shared.countersFd);
      object.reuseMapFd(owners, shared.slotOwnerFd);
      object.reuseMapFd(object.map(TRACE_OBJECT_NAMES.slotCounters), shared.slotCountersFd);
    }
  };
  // Compiled for where these programs' frames start (an Ethernet header or the IP header).
  const body = filter.expression?.ebpf(raw);
  for (let attempt = 1;; attempt++) {
    let object: BpfObject | undefined;
    try {
      if (body === undefined) {
        object = open();
        configure(object);
        object.load();
        return object;
      }
      // The expression's eBPF replaces the trace_expr stub in every program as libbpf loads them.
      return openAndLoadRewritten(open, EXPRESSION_SECTIONS, configure, (name, insns) => {
        const spliced = spliceExpression(insns, body);
        log.debug("spliced the expression into {name}: {count} instructions", {
          name,
          count: spliced.length / 8,
        });
        return spliced;
      });
    } catch (error) {
      object?.close();
      if (error instanceof SpliceError) {
        throw new RuntimeError(`cannot put the expression into the BPF programs: ${error.message}`);
      }
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

/** The maps every loaded object shares: the first object's. */
interface SharedMaps {
  ringFd: number;
  countersFd: number;
  slotOwnerFd: number;
  slotCountersFd: number;
}

/** Where the counters of one (interface, hook) are: a map and the key in it. */
interface CounterPlace {
  fd: number;
  key: Uint8Array<ArrayBuffer>;
}

/** One loaded object: the programs for interfaces of one link layout. */
interface LoadedPrograms {
  object: BpfObject;
  xdpFd: number;
  tcEgressFd: number;
  tcIngressFd: number;
}

function programsOf(object: BpfObject): LoadedPrograms {
  return {
    object,
    xdpFd: object.programFd(object.program(TRACE_OBJECT_NAMES.xdp)),
    tcEgressFd: object.programFd(object.program(TRACE_OBJECT_NAMES.tc)),
    tcIngressFd: object.programFd(object.program(TRACE_OBJECT_NAMES.tcIngress)),
  };
}

/** Resolves an interface name to what attaching needs; RuntimeError when it is missing or unsupported. */
function resolveTarget(name: string): AttachTarget & { raw: boolean } {
  const ifindex = interfaceIndex(name);
  const link = interfaceLink(name);
  if (ifindex === 0 || link === undefined) throw new RuntimeError(`interface ${name} not found`);
  if (link === null) {
    throw new RuntimeError(
      `${name}: link type ${Deno.readTextFileSync(`/sys/class/net/${name}/type`).trim()} (ARPHRD) is ` +
        "neither Ethernet nor raw IP, which trace cannot decode; trace another interface",
    );
  }
  return { iface: name, ifindex, linkType: link.linkType, raw: link.raw };
}

/** A loaded and attached tracer. */
export class Tracer {
  readonly #options: TracerOptions;
  /** Loaded objects by layout: `raw` (raw IP) and `ether`. The first one owns the shared maps. */
  readonly #programs = new Map<"raw" | "ether", LoadedPrograms>();
  readonly #shared: SharedMaps;
  readonly #attachments: Attachment[] = [];
  readonly #reader: RingBufferReader;
  readonly #countersFd: number;
  /** The counters of each attachment, by counter slot (ifindex * 2 + direction). */
  readonly #counterPlaces = new Map<number, CounterPlace>();
  readonly #cpus: number;
  readonly #stopFd: number;
  readonly #pollFds: Uint8Array<ArrayBuffer>;
  /** captured records per counter slot (ifindex * 2 + direction) */
  readonly #captured = new Map<number, number>();
  #stopping = false;
  #closed = false;

  private constructor(options: TracerOptions, first: LoadedPrograms, raw: boolean) {
    this.#options = options;
    this.#programs.set(raw ? "raw" : "ether", first);
    const object = first.object;
    const ring = object.map(TRACE_OBJECT_NAMES.ring);
    const ringFd = object.mapFd(ring);
    this.#countersFd = object.mapFd(object.map(TRACE_OBJECT_NAMES.counters));
    this.#shared = {
      ringFd,
      countersFd: this.#countersFd,
      slotOwnerFd: object.mapFd(object.map(TRACE_OBJECT_NAMES.slotOwner)),
      slotCountersFd: object.mapFd(object.map(TRACE_OBJECT_NAMES.slotCounters)),
    };
    this.#reader = new RingBufferReader(ringFd, object.maxEntries(ring));
    this.#cpus = possibleCpus();
    this.#stopFd = libc().eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
    if (this.#stopFd < 0) {
      this.#reader.close();
      throw lastError("eventfd");
    }
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
    const targets = interfaces.map(resolveTarget);
    const firstRaw = targets.length > 0 && targets[0].raw;
    const first = loadObject(options.filter, firstRaw, interfaces.join(","));
    let tracer: Tracer;
    try {
      tracer = new Tracer(options, programsOf(first), firstRaw);
    } catch (error) {
      first.close();
      throw error;
    }
    log.debug("loaded BPF programs: {filter}", { filter: describeFilter(options.filter) });
    try {
      for (const target of targets) tracer.#attach(target);
    } catch (error) {
      tracer.close();
      throw error;
    }
    return tracer;
  }

  /**
   * Attaches the hooks of `options.direction` to one more interface while running (used by `-i any`
   * for interfaces that appear later). Returns the new attachments (none when it is traced already).
   */
  addInterface(name: string): Attachment[] {
    if (this.#closed) throw new Error("tracer is closed");
    const target = resolveTarget(name);
    // Already traced, unless it is a new device under an old name (deleted and created again).
    if (this.#attachments.some((a) => a.ifindex === target.ifindex)) return [];
    return this.#attach(target);
  }

  #programsFor(target: AttachTarget & { raw: boolean }): LoadedPrograms {
    const key = target.raw ? "raw" : "ether";
    let programs = this.#programs.get(key);
    if (programs === undefined) {
      programs = programsOf(loadObject(this.#options.filter, target.raw, target.iface, this.#shared));
      this.#programs.set(key, programs);
    }
    return programs;
  }

  #attach(target: AttachTarget & { raw: boolean }): Attachment[] {
    const programs = this.#programsFor(target);
    const zeros = new Uint8Array(this.#cpus * COUNTERS_BYTES);
    const onFallback = (reason: string) => log.warn(reason);
    const added: Attachment[] = [];
    const { direction, mode, ingressHook, egressHook } = this.#options;
    const counters = (hook: Direction) => {
      const place = this.#counterPlace(target.ifindex, hook);
      mapUpdate(place.fd, place.key, zeros);
      this.#counterPlaces.set(target.ifindex * 2 + (hook === "ingress" ? 0 : 1), place);
    };
    try {
      if (direction !== "egress") {
        counters("ingress");
        added.push(
          attachIngress(programs.xdpFd, programs.tcIngressFd, target, mode, onFallback, ingressHook),
        );
      }
      if (direction !== "ingress") {
        counters("egress");
        added.push(attachEgress(programs.tcEgressFd, target, egressHook, onFallback));
      }
    } catch (error) {
      for (const attachment of added) attachment.detach();
      throw error;
    }
    for (const a of added) log.info("attached {iface} {direction} {hook}", { ...a });
    this.#attachments.push(...added);
    return added;
  }

  /**
   * Where the counters of (ifindex, direction) go: the interface's counter slot when it owns it or the
   * slot is free (then claimed: its counters zeroed before the owner is written, so the programs never
   * count into stale values), else the hash map.
   */
  #counterPlace(ifindex: number, direction: Direction): CounterPlace {
    const slot = counterSlot(ifindex);
    const owner = new Uint8Array(4);
    mapLookup(this.#shared.slotOwnerFd, u32Bytes(slot), owner);
    const ownerIndex = new DataView(owner.buffer).getUint32(0, true);
    if (ownerIndex !== 0 && ownerIndex !== ifindex) {
      return { fd: this.#countersFd, key: encodeCounterKey(ifindex, direction) };
    }
    if (ownerIndex === 0) {
      const zeros = new Uint8Array(this.#cpus * COUNTERS_BYTES);
      for (const index of [slot * 2, slot * 2 + 1]) {
        mapUpdate(this.#shared.slotCountersFd, u32Bytes(index), zeros);
      }
      mapUpdate(this.#shared.slotOwnerFd, u32Bytes(slot), u32Bytes(ifindex));
    }
    return { fd: this.#shared.slotCountersFd, key: u32Bytes(slot * 2 + (direction === "ingress" ? 0 : 1)) };
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
  stats(): HookCounters[] {
    const value = new Uint8Array(this.#cpus * COUNTERS_BYTES);
    return this.#attachments.map((a) => {
      const place = this.#counterPlaces.get(a.ifindex * 2 + (a.direction === "ingress" ? 0 : 1))!;
      mapLookup(place.fd, place.key, value);
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
    for (const programs of this.#programs.values()) programs.object.close();
    libc().close(this.#stopFd);
    log.debug("detached {count} hooks", { count: this.#attachments.length });
    if (errors.length > 0) throw errors[0];
  }
}

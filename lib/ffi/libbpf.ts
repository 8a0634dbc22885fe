/**
 * libbpf 1.1 (`libbpf.so.1`) through Deno FFI: the calls netstack trace needs to open a BPF object from
 * memory, configure and load it, create links, and read and write maps.
 *
 * Conventions of libbpf 1.x kept here: functions returning a pointer return NULL and set errno; functions
 * returning an int return `-errno`. Both become a {@link SystemError} naming the call. libbpf's own
 * messages (including the verifier log of a failed load) go to LogTape at debug level, category
 * `["netstack", "libbpf"]`, once {@link routeLibbpfLog} has been called.
 *
 * Structure layouts (x86-64, libbpf 1.1.2 headers):
 * - `bpf_object_open_opts`: `sz` at 0, `object_name` at 8; we pass `sz = 16` (libbpf accepts a shorter
 *   struct from an older caller and treats the rest as zero).
 * - `bpf_link_create_opts`: `sz` at 0, `flags` at 8; 64 bytes.
 * - `bpf_tc_hook`: `sz` 0, `ifindex` 8, `attach_point` 12, `parent` 16; 24 bytes.
 * - `bpf_tc_opts`: `sz` 0, `prog_fd` 8, `flags` 12, `prog_id` 16, `handle` 20, `priority` 24; 32 bytes.
 *
 * @module
 */

import { cString, errno, libc, strerror } from "./libc.ts";
import { SystemError } from "./errno.ts";
import { logger } from "../log.ts";

const SYMBOLS = {
  libbpf_set_print: { parameters: ["function"], result: "pointer" },
  libbpf_strerror: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  bpf_object__open_mem: { parameters: ["buffer", "usize", "buffer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_program__set_expected_attach_type: { parameters: ["pointer", "u32"], result: "i32" },
  bpf_program__fd: { parameters: ["pointer"], result: "i32" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_map__value_size: { parameters: ["pointer"], result: "u32" },
  bpf_map__max_entries: { parameters: ["pointer"], result: "u32" },
  bpf_map__set_initial_value: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  bpf_map__reuse_fd: { parameters: ["pointer", "i32"], result: "i32" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_link_create: { parameters: ["i32", "i32", "u32", "buffer"], result: "i32" },
  bpf_prog_query: { parameters: ["i32", "u32", "u32", "buffer", "buffer", "buffer"], result: "i32" },
  bpf_tc_hook_create: { parameters: ["buffer"], result: "i32" },
  bpf_tc_hook_destroy: { parameters: ["buffer"], result: "i32" },
  bpf_tc_attach: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_tc_detach: { parameters: ["buffer", "buffer"], result: "i32" },
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  bpf_program__insns: { parameters: ["pointer"], result: "pointer" },
  bpf_program__insn_cnt: { parameters: ["pointer"], result: "usize" },
  bpf_program__set_insns: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  libbpf_register_prog_handler: { parameters: ["buffer", "u32", "u32", "buffer"], result: "i32" },
  libbpf_unregister_prog_handler: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libbpf symbols. */
export type LibbpfSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** Loads `libbpf.so.1` on first call and returns its symbols; a missing library becomes a SystemError. */
export function libbpf(): LibbpfSymbols {
  if (library === undefined) {
    try {
      library = Deno.dlopen("libbpf.so.1", SYMBOLS);
    } catch (error) {
      throw new SystemError(`dlopen(libbpf.so.1): ${(error as Error).message}`, 2, "install libbpf1");
    }
  }
  return library.symbols;
}

/** BPF attach types (enum bpf_attach_type) netstack uses. */
export const AttachType = {
  XDP: 37,
  /** tcx ingress, kernel 6.6+. Not in libbpf 1.1's headers. */
  TCX_INGRESS: 46,
  /** tcx egress, kernel 6.6+. Not in libbpf 1.1's headers. */
  TCX_EGRESS: 47,
} as const;

/** XDP attach flags (linux/if_link.h). */
export const XdpFlags = {
  SKB_MODE: 1 << 1,
  DRV_MODE: 1 << 2,
} as const;

/** `enum bpf_tc_attach_point`. */
export const TcAttachPoint = { INGRESS: 1, EGRESS: 2 } as const;

/** The text libbpf gives for an error number (positive or negative). */
export function libbpfStrerror(code: number): string {
  const buffer = new Uint8Array(256);
  if (libbpf().libbpf_strerror(code, buffer, BigInt(buffer.length)) !== 0) return strerror(Math.abs(code));
  const end = buffer.indexOf(0);
  return new TextDecoder().decode(buffer.subarray(0, end < 0 ? buffer.length : end));
}

/** Throws a SystemError for a libbpf int result below zero (`-errno`); returns the result otherwise. */
function check(operation: string, result: number): number {
  if (result < 0) throw new SystemError(operation, -result, libbpfStrerror(result));
  return result;
}

/** A SystemError for a NULL pointer result, from errno. */
function nullError(operation: string): SystemError {
  const code = errno() || 22;
  return new SystemError(operation, code, libbpfStrerror(-code));
}

let printCallback:
  | Deno.UnsafeCallback<{ parameters: ["i32", "pointer", "pointer"]; result: "i32" }>
  | undefined;

/**
 * Routes libbpf's messages into LogTape (debug level, category netstack.libbpf). libbpf calls the hook
 * synchronously on the thread that called it, which for netstack is the main thread. Idempotent.
 */
export function routeLibbpfLog(): void {
  if (printCallback !== undefined) return;
  const log = logger("libbpf");
  const text = new Uint8Array(65536);
  const levels = ["warn", "info", "debug"];
  printCallback = new Deno.UnsafeCallback(
    { parameters: ["i32", "pointer", "pointer"], result: "i32" } as const,
    (level, format, args) => {
      const n = libc().vsnprintf(text, BigInt(text.length), format, args);
      if (n <= 0) return 0;
      const message = new TextDecoder().decode(text.subarray(0, Math.min(n, text.length - 1))).trimEnd();
      for (const line of message.split("\n")) {
        // A plain message: LogTape reads {…} as placeholders, so braces are doubled.
        const escaped = line.replaceAll("{", "{{").replaceAll("}", "}}");
        if (line !== "") log.debug(`${levels[level] ?? level}: ${escaped}`);
      }
      return n;
    },
  );
  libbpf().libbpf_set_print(printCallback.pointer);
}

/** Restores libbpf's default printing (to stderr) and frees the callback. */
export function unrouteLibbpfLog(): void {
  if (printCallback === undefined) return;
  libbpf().libbpf_set_print(null);
  printCallback.close();
  printCallback = undefined;
}

/** Number of possible CPUs: the number of values a per-CPU map returns. */
export function possibleCpus(): number {
  return check("libbpf_num_possible_cpus", libbpf().libbpf_num_possible_cpus());
}

/** A program of a {@link BpfObject}. */
export interface BpfProgram {
  readonly name: string;
  readonly pointer: Deno.PointerValue;
}

/** A map of a {@link BpfObject}. */
export interface BpfMap {
  readonly name: string;
  readonly pointer: Deno.PointerValue;
}

/** A BPF object opened from memory with `bpf_object__open_mem`; {@link BpfObject.close} frees it. */
export class BpfObject {
  #pointer: Deno.PointerValue;
  // bpf_object__open_mem does not copy the ELF image: it must stay alive until load.
  #image: Uint8Array | undefined;

  private constructor(pointer: Deno.PointerValue, image: Uint8Array) {
    this.#pointer = pointer;
    this.#image = image;
  }

  /** Opens an ELF BPF object held in memory; `name` is what libbpf's messages call it (libbpf copies it). */
  static openMemory(image: Uint8Array<ArrayBuffer>, name: string): BpfObject {
    const objectName = cString(name);
    const opts = new Uint8Array(16);
    const view = new DataView(opts.buffer);
    view.setBigUint64(0, 16n, true);
    view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(objectName))), true);
    const pointer = libbpf().bpf_object__open_mem(image, BigInt(image.length), opts);
    if (pointer === null) throw nullError("bpf_object__open_mem");
    return new BpfObject(pointer, image);
  }

  #live(): Deno.PointerValue {
    if (this.#pointer === null) throw new Error("BPF object is closed");
    return this.#pointer;
  }

  /** The program named `name` (the C function name). */
  program(name: string): BpfProgram {
    const pointer = libbpf().bpf_object__find_program_by_name(this.#live(), cString(name));
    if (pointer === null) throw nullError(`bpf_object__find_program_by_name(${name})`);
    return { name, pointer };
  }

  /** The map named `name`; internal maps by their section name, e.g. `.rodata`. */
  map(name: string): BpfMap {
    const pointer = libbpf().bpf_object__find_map_by_name(this.#live(), cString(name));
    if (pointer === null) throw nullError(`bpf_object__find_map_by_name(${name})`);
    return { name, pointer };
  }

  /** Sets the attach type the kernel checks at load (before {@link BpfObject.load}). */
  setExpectedAttachType(program: BpfProgram, attachType: number): void {
    check(
      `bpf_program__set_expected_attach_type(${program.name})`,
      libbpf().bpf_program__set_expected_attach_type(program.pointer, attachType),
    );
  }

  /** Value size in bytes of a map. */
  valueSize(map: BpfMap): number {
    return libbpf().bpf_map__value_size(map.pointer);
  }

  /** max_entries of a map (for a ring buffer: its size in bytes). */
  maxEntries(map: BpfMap): number {
    return libbpf().bpf_map__max_entries(map.pointer);
  }

  /** Replaces the initial contents of a global-data map such as `.rodata` (before load; sizes must match). */
  setInitialValue(map: BpfMap, value: Uint8Array<ArrayBuffer>): void {
    check(
      `bpf_map__set_initial_value(${map.name})`,
      libbpf().bpf_map__set_initial_value(map.pointer, value, BigInt(value.length)),
    );
  }

  /**
   * Makes `map` use an existing map's file descriptor instead of creating one at load (before
   * {@link BpfObject.load}; libbpf dups the fd). Two objects then share the map, e.g. one ring buffer.
   */
  reuseMapFd(map: BpfMap, fd: number): void {
    check(`bpf_map__reuse_fd(${map.name})`, libbpf().bpf_map__reuse_fd(map.pointer, fd));
  }

  /** Creates the maps and loads the programs into the kernel (the verifier runs here). */
  load(): void {
    check("bpf_object__load", libbpf().bpf_object__load(this.#live()));
    this.#image = undefined;
  }

  /** File descriptor of a loaded program (owned by the object). */
  programFd(program: BpfProgram): number {
    return check(`bpf_program__fd(${program.name})`, libbpf().bpf_program__fd(program.pointer));
  }

  /** File descriptor of a created map (owned by the object). */
  mapFd(map: BpfMap): number {
    return check(`bpf_map__fd(${map.name})`, libbpf().bpf_map__fd(map.pointer));
  }

  /** Unloads the programs and closes the maps (links hold their own references). Idempotent. */
  close(): void {
    if (this.#pointer === null) return;
    libbpf().bpf_object__close(this.#pointer);
    this.#pointer = null;
    this.#image = undefined;
  }
}

/**
 * `bpf_link_create(prog_fd, target, attach_type, {flags})`: a link file descriptor. Closing it detaches,
 * and so does the death of the process, which is why netstack attaches through links.
 */
export function linkCreate(programFd: number, target: number, attachType: number, flags = 0): number {
  const opts = new Uint8Array(64);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, 64n, true);
  view.setUint32(8, flags, true);
  return check("bpf_link_create", libbpf().bpf_link_create(programFd, target, attachType, opts));
}

/**
 * Ids of the programs attached at `target` (an ifindex for tcx) with `attachType`, via `bpf_prog_query`
 * (up to 64).
 */
export function progQuery(target: number, attachType: number): number[] {
  const ids = new Uint32Array(64);
  const count = new Uint32Array([ids.length]);
  const flags = new Uint32Array(1);
  check(
    "bpf_prog_query",
    libbpf().bpf_prog_query(
      target,
      attachType,
      0,
      new Uint8Array(flags.buffer),
      new Uint8Array(ids.buffer),
      new Uint8Array(count.buffer),
    ),
  );
  return [...ids.subarray(0, count[0])];
}

/** `bpf_map_update_elem`; flags 0 = BPF_ANY. */
export function mapUpdate(
  mapFd: number,
  key: Uint8Array<ArrayBuffer>,
  value: Uint8Array<ArrayBuffer>,
  flags = 0,
) {
  check("bpf_map_update_elem", libbpf().bpf_map_update_elem(mapFd, key, value, BigInt(flags)));
}

/** `bpf_map_lookup_elem` into `value` (for per-CPU maps: one slot per possible CPU, each 8-byte aligned). */
export function mapLookup(mapFd: number, key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>): void {
  check("bpf_map_lookup_elem", libbpf().bpf_map_lookup_elem(mapFd, key, value));
}

function tcHook(ifindex: number, attachPoint: number): Uint8Array<ArrayBuffer> {
  const hook = new Uint8Array(24);
  const view = new DataView(hook.buffer);
  view.setBigUint64(0, 24n, true);
  view.setInt32(8, ifindex, true);
  view.setUint32(12, attachPoint, true);
  return hook;
}

/** A filter made by {@link tcAttach}: what {@link tcDetach} needs to remove it. */
export interface TcFilter {
  readonly ifindex: number;
  readonly attachPoint: number;
  readonly handle: number;
  readonly priority: number;
}

/**
 * Classic TC attachment: creates the clsact qdisc if needed (an existing one is fine) and adds a
 * direct-action cls_bpf filter. Unlike a link, the filter outlives the process: call {@link tcDetach}.
 */
export function tcAttach(ifindex: number, attachPoint: number, programFd: number): TcFilter {
  const hook = tcHook(ifindex, attachPoint);
  const created = libbpf().bpf_tc_hook_create(hook);
  if (created < 0 && created !== -17 /* EEXIST */) check("bpf_tc_hook_create", created);
  const opts = new Uint8Array(32);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, 32n, true);
  view.setInt32(8, programFd, true);
  check("bpf_tc_attach", libbpf().bpf_tc_attach(hook, opts));
  return { ifindex, attachPoint, handle: view.getUint32(20, true), priority: view.getUint32(24, true) };
}

/** Removes a filter made by {@link tcAttach} (the clsact qdisc stays: other filters may use it). */
export function tcDetach(filter: TcFilter): void {
  const hook = tcHook(filter.ifindex, filter.attachPoint);
  const opts = new Uint8Array(32);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, 32n, true);
  view.setUint32(20, filter.handle, true);
  view.setUint32(24, filter.priority, true);
  check("bpf_tc_detach", libbpf().bpf_tc_detach(hook, opts));
}

/** `enum bpf_prog_type` values netstack loads. */
export const ProgType = { SCHED_CLS: 3, XDP: 6 } as const;

/**
 * Rewrites a program's instructions while libbpf loads it: `rewrite` gets the program's name and its
 * instructions after libbpf's relocations (the main function followed by the subprograms it calls,
 * 8 bytes per instruction) and returns the instructions to load instead, or `null` to leave them.
 */
export type InstructionRewriter = (program: string, insns: Uint8Array) => Uint8Array<ArrayBuffer> | null;

/**
 * Loads `object` with `rewrite` applied to its programs of the given sections. libbpf 1.1 runs a
 * section handler's `prog_prepare_load_fn` after relocation, right before the BPF_PROG_LOAD call, and
 * loads `prog->insns` as it is after the callback; `bpf_program__set_insns` there is the documented way
 * to change the code (libbpf.h). The handlers are registered for this load only: they must be in place
 * when the object is opened (libbpf resolves sections at open), so `open` is called here too.
 * `sections` maps a section name to its program type and expected attach type, as libbpf's own
 * definitions of `xdp` and `tc` give them. A failure inside the callback fails the load and is rethrown.
 */
export function openAndLoadRewritten(
  open: () => BpfObject,
  sections: Record<string, { progType: number; attachType: number }>,
  configure: (object: BpfObject) => void,
  rewrite: InstructionRewriter,
): BpfObject {
  const bpf = libbpf();
  let failure: unknown;
  const callback = new Deno.UnsafeCallback(
    { parameters: ["pointer", "pointer", "i64"], result: "i32" } as const,
    (program) => {
      try {
        const namePointer = bpf.bpf_program__name(program);
        const name = namePointer === null ? "" : Deno.UnsafePointerView.getCString(namePointer);
        const count = Number(bpf.bpf_program__insn_cnt(program));
        const pointer = bpf.bpf_program__insns(program);
        if (pointer === null || count === 0) throw new Error(`program ${name} has no instructions`);
        const insns = new Uint8Array(count * 8);
        Deno.UnsafePointerView.copyInto(pointer, insns);
        const replaced = rewrite(name, insns);
        if (replaced !== null) {
          check(
            `bpf_program__set_insns(${name})`,
            bpf.bpf_program__set_insns(program, replaced, BigInt(replaced.length / 8)),
          );
        }
        return 0;
      } catch (error) {
        failure = error;
        return -22; // EINVAL: libbpf reports "failed to prepare load attributes" and the load fails
      }
    },
  );
  const handlers: number[] = [];
  let object: BpfObject | undefined;
  try {
    // struct libbpf_prog_handler_opts (libbpf 1.1): sz, cookie, prog_setup_fn, prog_prepare_load_fn,
    // prog_attach_fn: 40 bytes.
    const opts = new Uint8Array(40);
    const view = new DataView(opts.buffer);
    view.setBigUint64(0, 40n, true);
    view.setBigUint64(24, BigInt(Deno.UnsafePointer.value(callback.pointer)), true);
    for (const [section, { progType, attachType }] of Object.entries(sections)) {
      handlers.push(
        check(
          `libbpf_register_prog_handler(${section})`,
          bpf.libbpf_register_prog_handler(cString(section), progType, attachType, opts),
        ),
      );
    }
    object = open();
    configure(object);
    try {
      object.load();
    } catch (error) {
      if (failure !== undefined) throw failure;
      throw error;
    }
    return object;
  } catch (error) {
    object?.close();
    throw error;
  } finally {
    for (const id of handlers) bpf.libbpf_unregister_prog_handler(id);
    callback.close();
  }
}

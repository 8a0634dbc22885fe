/**
 * libpcap's filter compiler through Deno FFI: `pcap_compile` on a `pcap_open_dead` handle turns a
 * tcpdump expression into classic BPF for a link type, without opening any device; and
 * `pcap_offline_filter`, libpcap's own interpreter, which the tests use as the reference.
 *
 * Layouts (x86-64): `struct bpf_program { u_int bf_len; struct bpf_insn *bf_insns; }` is 16 bytes (the
 * pointer at 8); `struct bpf_insn { u_short code; u_char jt, jf; bpf_u_int32 k; }` is 8 bytes;
 * `struct pcap_pkthdr { struct timeval ts; bpf_u_int32 caplen, len; }` is 24 bytes (caplen at 16).
 *
 * @module
 */

import { cString } from "./libc.ts";

const SYMBOLS = {
  pcap_open_dead: { parameters: ["i32", "i32"], result: "pointer" },
  pcap_compile: { parameters: ["pointer", "buffer", "buffer", "i32", "u32"], result: "i32" },
  pcap_freecode: { parameters: ["buffer"], result: "void" },
  pcap_geterr: { parameters: ["pointer"], result: "pointer" },
  pcap_offline_filter: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  pcap_close: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The names lib/ffi/libpcap.ts tries too: Debian's runtime package (`libpcap0.8`) installs the first. */
const LIBRARY_NAMES = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** libpcap is missing: the message names the package. */
export class PcapMissingError extends Error {
  /** Creates the error. */
  constructor(options?: ErrorOptions) {
    super(
      `libpcap is not installed (tried ${LIBRARY_NAMES.join(", ")}); install it: apt-get install libpcap0.8`,
      options,
    );
    this.name = "PcapMissingError";
  }
}

function symbols(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  if (library === undefined) {
    let lastError: unknown;
    for (const name of LIBRARY_NAMES) {
      try {
        library = Deno.dlopen(name, SYMBOLS);
        break;
      } catch (error) {
        lastError = error;
      }
    }
    if (library === undefined) throw new PcapMissingError({ cause: lastError });
  }
  return library.symbols;
}

/** Link types (DLT_*) the compiler is used with. */
export const Dlt = {
  /** Ethernet. */
  EN10MB: 1,
  /** Raw IPv4/IPv6 from the IP header (DLT_RAW as libpcap maps LINKTYPE_RAW on Linux). */
  RAW: 12,
} as const;

/** `PCAP_NETMASK_UNKNOWN`: `ip broadcast` is then an error rather than a guess. */
const PCAP_NETMASK_UNKNOWN = 0xffffffff;

/** An expression libpcap refused; the message is libpcap's, in one line. */
export class FilterSyntaxError extends Error {
  /** Creates the error with libpcap's message. */
  constructor(message: string) {
    super(message);
    this.name = "FilterSyntaxError";
  }
}

/** A classic BPF instruction as libpcap returns it (the shape of lib/filter's CbpfInstruction). */
export interface PcapInstruction {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/**
 * Compiles `expression` for `linkType` (a DLT_*) with snap length `snaplen`, optimized, netmask unknown,
 * as tcpdump does. Throws {@link FilterSyntaxError} with libpcap's message when the expression is wrong.
 */
export function pcapCompile(expression: string, linkType: number, snaplen = 65535): PcapInstruction[] {
  const pcap = symbols();
  const handle = pcap.pcap_open_dead(linkType, snaplen);
  if (handle === null) throw new Error(`pcap_open_dead(${linkType}) failed`);
  try {
    const program = new Uint8Array(16);
    if (pcap.pcap_compile(handle, program, cString(expression), 1, PCAP_NETMASK_UNKNOWN) !== 0) {
      const error = pcap.pcap_geterr(handle);
      const text = error === null ? "invalid expression" : Deno.UnsafePointerView.getCString(error);
      throw new FilterSyntaxError(text.split("\n")[0]);
    }
    try {
      const view = new DataView(program.buffer);
      const count = view.getUint32(0, true);
      const pointer = Deno.UnsafePointer.create(view.getBigUint64(8, true));
      if (pointer === null || count === 0) throw new Error("pcap_compile returned an empty program");
      const bytes = new Uint8Array(count * 8);
      Deno.UnsafePointerView.copyInto(pointer, bytes);
      const insns = new DataView(bytes.buffer);
      const result: PcapInstruction[] = [];
      for (let i = 0; i < count; i++) {
        result.push({
          code: insns.getUint16(i * 8, true),
          jt: bytes[i * 8 + 2],
          jf: bytes[i * 8 + 3],
          k: insns.getUint32(i * 8 + 4, true),
        });
      }
      return result;
    } finally {
      pcap.pcap_freecode(program);
    }
  } finally {
    pcap.pcap_close(handle);
  }
}

/** Encodes instructions as an array of `struct bpf_insn`. */
function encodeInstructions(program: readonly PcapInstruction[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, true);
    bytes[i * 8 + 2] = insn.jt;
    bytes[i * 8 + 3] = insn.jf;
    view.setUint32(i * 8 + 4, insn.k >>> 0, true);
  });
  return bytes;
}

/**
 * libpcap's own interpreter (`pcap_offline_filter`) on one packet: non-zero when it matches. `packet`
 * is what was captured, `wireLength` the length on the wire. For tests: a reference to compare with.
 */
export function pcapOfflineFilter(
  program: readonly PcapInstruction[],
  packet: Uint8Array,
  wireLength = packet.length,
): number {
  const insns = encodeInstructions(program);
  const bpfProgram = new Uint8Array(16);
  const view = new DataView(bpfProgram.buffer);
  view.setUint32(0, program.length, true);
  view.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(insns))), true);
  const header = new Uint8Array(24);
  const headerView = new DataView(header.buffer);
  headerView.setUint32(16, packet.length, true);
  headerView.setUint32(20, wireLength, true);
  const data = new Uint8Array(Math.max(packet.length, 1));
  data.set(packet);
  return symbols().pcap_offline_filter(bpfProgram, header, data);
}

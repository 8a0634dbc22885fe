/**
 * A writer for pcapng (draft-ietf-opsawg-pcapng), the format that names interfaces and packet
 * directions, buffered so that capturing costs no system call per packet.
 *
 * One section: a Section Header Block, an Interface Description Block per interface (written whenever
 * {@link PcapngWriter.addInterface} is called, so interfaces may appear mid-capture, before their first
 * packet), Enhanced Packet Blocks, and Interface Statistics Blocks when asked. Little-endian, every
 * interface with nanosecond timestamps (`if_tsresol` = 9).
 *
 * Block layout (pcapng §3.1): type u32, total length u32, body, options, total length u32 again; every
 * block and option value padded to 32 bits.
 *
 * @module
 */

import type { SyncWriter } from "./writer.ts";

/** Block types (pcapng §11.1). */
export const BlockType = {
  SECTION_HEADER: 0x0a0d0d0a,
  INTERFACE_DESCRIPTION: 1,
  INTERFACE_STATISTICS: 5,
  ENHANCED_PACKET: 6,
} as const;

/** Option codes used here (pcapng §4.2, §4.3, §4.6). */
const Option = {
  END: 0,
  SHB_USERAPPL: 4,
  IF_NAME: 2,
  IF_DESCRIPTION: 3,
  IF_TSRESOL: 9,
  EPB_FLAGS: 2,
  ISB_STARTTIME: 2,
  ISB_ENDTIME: 3,
  ISB_IFRECV: 4,
  ISB_FILTERACCEPT: 6,
  ISB_OSDROP: 7,
  ISB_USRDELIV: 8,
} as const;

/** The direction bits of `epb_flags` (pcapng §4.3.1): bits 0-1. */
export const PacketDirection = {
  UNKNOWN: 0,
  INBOUND: 1,
  OUTBOUND: 2,
} as const;

/** What an Interface Description Block says. */
export interface PcapngInterface {
  /** `if_name`, e.g. `veth0`. */
  name: string;
  /** `if_description`, e.g. `ingress xdp/generic`. */
  description?: string;
  /** LINKTYPE_* of its packets. */
  linkType: number;
  /** Largest captured length of one packet. */
  snaplen: number;
}

/** Counters of an Interface Statistics Block; absent ones are not written. */
export interface PcapngStatistics {
  /** `isb_ifrecv`: packets the interface (hook) saw. */
  received?: number;
  /** `isb_filteraccept`: packets that passed the filter. */
  accepted?: number;
  /** `isb_osdrop`: packets the capture dropped (e.g. a full ring buffer). */
  dropped?: number;
  /** `isb_usrdeliv`: packets delivered to the writer. */
  delivered?: number;
  /** `isb_starttime` as [seconds, nanoseconds]. */
  start?: [number, number];
}

const TWO_32 = 4294967296;

/**
 * Splits a time of `seconds` + `nanos` into the high and low 32 bits of its count of nanoseconds, exactly
 * (the product exceeds 2^53, so it is computed in 16-bit limbs rather than as one double).
 */
export function nanosecondWords(seconds: number, nanos: number): [number, number] {
  const high16 = Math.floor(seconds / 65536);
  const low16 = seconds - high16 * 65536;
  const x = high16 * 1e9; // < 2^46: exact
  const xHigh = Math.floor(x / 65536);
  const xLow = x - xHigh * 65536;
  const low = xLow * 65536 + low16 * 1e9 + nanos; // < 2^47: exact
  const carry = Math.floor(low / TWO_32);
  return [xHigh + carry, low - carry * TWO_32];
}

const encoder = new TextEncoder();
const pad4 = (n: number) => (n + 3) & ~3;

/** Writes a pcapng section through an in-memory buffer. Call {@link PcapngWriter.close} at the end. */
export class PcapngWriter {
  readonly #sink: SyncWriter;
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  readonly #snaplens: number[] = [];
  #used = 0;
  #flushed = 0;
  #packets = 0;
  #closed = false;

  /** Creates the writer and puts the Section Header Block into its buffer. */
  constructor(sink: SyncWriter, options: { application?: string; bufferSize?: number } = {}) {
    this.#sink = sink;
    const size = Math.max(options.bufferSize ?? 65536, 65536 + 256);
    this.#buffer = new Uint8Array(size);
    this.#view = new DataView(this.#buffer.buffer);
    const application = encoder.encode(options.application ?? "netstack");
    const length = 28 + optionLength(application.length) + 4;
    const at = this.#begin(BlockType.SECTION_HEADER, length);
    const v = this.#view;
    v.setUint32(at + 8, 0x1a2b3c4d, true); // byte-order magic
    v.setUint16(at + 12, 1, true); // version 1.0
    v.setUint16(at + 14, 0, true);
    v.setBigInt64(at + 16, -1n, true); // section length: not given
    let o = this.#option(at + 24, Option.SHB_USERAPPL, application);
    o = this.#endOptions(o);
    this.#end(at, length);
  }

  /** Packets written so far. */
  get packets(): number {
    return this.#packets;
  }

  /** Bytes of the file so far, buffered ones included. */
  get bytes(): number {
    return this.#flushed + this.#used;
  }

  /** Writes an Interface Description Block; returns the interface id packets refer to. */
  addInterface(iface: PcapngInterface): number {
    const name = encoder.encode(iface.name);
    const description = iface.description === undefined ? undefined : encoder.encode(iface.description);
    const length = 16 + optionLength(name.length) +
      (description === undefined ? 0 : optionLength(description.length)) + optionLength(1) + 4 + 4;
    const at = this.#begin(BlockType.INTERFACE_DESCRIPTION, length);
    const v = this.#view;
    v.setUint16(at + 8, iface.linkType, true);
    v.setUint16(at + 10, 0, true);
    v.setUint32(at + 12, iface.snaplen, true);
    let o = this.#option(at + 16, Option.IF_NAME, name);
    if (description !== undefined) o = this.#option(o, Option.IF_DESCRIPTION, description);
    o = this.#option(o, Option.IF_TSRESOL, TSRESOL_NANOS);
    this.#endOptions(o);
    this.#end(at, length);
    this.#snaplens.push(iface.snaplen);
    return this.#snaplens.length - 1;
  }

  /**
   * Appends an Enhanced Packet Block. The time is `seconds` since the epoch plus `nanos`; `data` is cut
   * to the interface's snaplen; `direction` is a {@link PacketDirection}.
   */
  write(
    interfaceId: number,
    data: Uint8Array,
    seconds: number,
    nanos: number,
    originalLength = data.length,
    direction: number = PacketDirection.UNKNOWN,
  ): void {
    const snaplen = this.#snaplens[interfaceId];
    if (snaplen === undefined) throw new RangeError(`pcapng interface ${interfaceId} was never added`);
    const captured = Math.min(data.length, snaplen);
    const length = 28 + pad4(captured) + (direction === 0 ? 0 : 8 + 4) + 4;
    const at = this.#begin(BlockType.ENHANCED_PACKET, length);
    const v = this.#view;
    const [high, low] = nanosecondWords(seconds, nanos);
    v.setUint32(at + 8, interfaceId, true);
    v.setUint32(at + 12, high, true);
    v.setUint32(at + 16, low, true);
    v.setUint32(at + 20, captured, true);
    v.setUint32(at + 24, Math.max(originalLength, captured), true);
    this.#buffer.set(captured === data.length ? data : data.subarray(0, captured), at + 28);
    let o = at + 28 + captured;
    while (o < at + 28 + pad4(captured)) this.#buffer[o++] = 0;
    if (direction !== 0) {
      v.setUint16(o, Option.EPB_FLAGS, true);
      v.setUint16(o + 2, 4, true);
      v.setUint32(o + 4, direction & 3, true);
      o = this.#endOptions(o + 8);
    }
    this.#end(at, length);
    this.#packets++;
  }

  /** Appends an Interface Statistics Block for `interfaceId` at the time `seconds` + `nanos`. */
  statistics(interfaceId: number, seconds: number, nanos: number, stats: PcapngStatistics): void {
    const counters: [number, number | undefined][] = [
      [Option.ISB_IFRECV, stats.received],
      [Option.ISB_FILTERACCEPT, stats.accepted],
      [Option.ISB_OSDROP, stats.dropped],
      [Option.ISB_USRDELIV, stats.delivered],
    ];
    const present = counters.filter(([, value]) => value !== undefined) as [number, number][];
    const length = 20 + (present.length + (stats.start ? 1 : 0)) * 12 + 4 + 4;
    const at = this.#begin(BlockType.INTERFACE_STATISTICS, length);
    const v = this.#view;
    const [high, low] = nanosecondWords(seconds, nanos);
    v.setUint32(at + 8, interfaceId, true);
    v.setUint32(at + 12, high, true);
    v.setUint32(at + 16, low, true);
    let o = at + 20;
    if (stats.start) {
      const [startHigh, startLow] = nanosecondWords(stats.start[0], stats.start[1]);
      v.setUint16(o, Option.ISB_STARTTIME, true);
      v.setUint16(o + 2, 8, true);
      v.setUint32(o + 4, startHigh, true);
      v.setUint32(o + 8, startLow, true);
      o += 12;
    }
    for (const [code, value] of present) {
      v.setUint16(o, code, true);
      v.setUint16(o + 2, 8, true);
      v.setBigUint64(o + 4, BigInt(value), true);
      o += 12;
    }
    this.#endOptions(o);
    this.#end(at, length);
  }

  /** Writes everything buffered to the sink. */
  flush(): void {
    let offset = 0;
    try {
      while (offset < this.#used) offset += this.#sink.writeSync(this.#buffer.subarray(offset, this.#used));
    } finally {
      this.#flushed += offset;
      this.#buffer.copyWithin(0, offset, this.#used);
      this.#used -= offset;
    }
  }

  /** Flushes; later writes throw. Closing the sink is the caller's job. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.flush();
  }

  /** Reserves `length` bytes for a block and writes its type and length; returns its offset. */
  #begin(type: number, length: number): number {
    if (this.#closed) throw new Error("pcapng writer is closed");
    if (length > this.#buffer.length) throw new RangeError(`pcapng block of ${length} bytes is too large`);
    if (this.#used + length > this.#buffer.length) this.flush();
    const at = this.#used;
    this.#view.setUint32(at, type, true);
    this.#view.setUint32(at + 4, length, true);
    return at;
  }

  /** Writes the trailing length and commits the block. */
  #end(at: number, length: number): void {
    this.#view.setUint32(at + length - 4, length, true);
    this.#used = at + length;
  }

  #option(at: number, code: number, value: Uint8Array): number {
    this.#view.setUint16(at, code, true);
    this.#view.setUint16(at + 2, value.length, true);
    this.#buffer.set(value, at + 4);
    const end = at + 4 + pad4(value.length);
    for (let i = at + 4 + value.length; i < end; i++) this.#buffer[i] = 0;
    return end;
  }

  #endOptions(at: number): number {
    this.#view.setUint32(at, 0, true); // opt_endofopt: code 0, length 0
    return at + 4;
  }
}

/** `if_tsresol` = 9: timestamps in units of 10^-9 s. */
const TSRESOL_NANOS = new Uint8Array([9]);

function optionLength(valueLength: number): number {
  return 4 + pad4(valueLength);
}

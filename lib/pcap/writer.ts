/**
 * A writer for the classic libpcap file format (the one `tcpdump -w` writes), buffered so that capturing
 * costs no system call per packet.
 *
 * Format: a 24-byte global header, then per packet a 16-byte record header (seconds, microseconds,
 * captured length, original length) and the captured bytes. Little-endian, microsecond magic
 * `0xa1b2c3d4`, which every reader understands.
 *
 * @module
 */

/** Link-layer header types (https://www.tcpdump.org/linktypes.html) used by netstack. */
export const LinkType = {
  /** Ethernet II frames. */
  ETHERNET: 1,
  /** Raw IPv4/IPv6 packets, no link-layer header. */
  RAW: 101,
} as const;

/** A destination for bytes written synchronously, such as a `Deno.FsFile`. */
export interface SyncWriter {
  /** Writes some or all of `p`; returns how many bytes were written. */
  writeSync(p: Uint8Array): number;
}

/** Options of {@link PcapWriter}. */
export interface PcapWriterOptions {
  /** Link type written in the header; see {@link LinkType}. */
  linkType: number;
  /** The largest captured length of one record; longer packets are truncated. Default 262144. */
  snaplen?: number;
  /** Bytes buffered before a write reaches the sink. Default 64 KiB. */
  bufferSize?: number;
}

const GLOBAL_HEADER_LENGTH = 24;
const RECORD_HEADER_LENGTH = 16;

/** Writes packets to a pcap stream through an in-memory buffer. Call {@link PcapWriter.close} at the end. */
export class PcapWriter {
  readonly #sink: SyncWriter;
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  readonly #snaplen: number;
  #used = 0;
  #flushed = 0;
  #packets = 0;
  #closed = false;

  /** Creates the writer and writes the global header into its buffer. */
  constructor(sink: SyncWriter, options: PcapWriterOptions) {
    this.#sink = sink;
    this.#snaplen = options.snaplen ?? 262144;
    const size = Math.max(options.bufferSize ?? 65536, GLOBAL_HEADER_LENGTH + RECORD_HEADER_LENGTH + 65536);
    this.#buffer = new Uint8Array(size);
    this.#view = new DataView(this.#buffer.buffer);
    const v = this.#view;
    v.setUint32(0, 0xa1b2c3d4, true);
    v.setUint16(4, 2, true); // version 2.4
    v.setUint16(6, 4, true);
    v.setInt32(8, 0, true); // thiszone
    v.setUint32(12, 0, true); // sigfigs
    v.setUint32(16, this.#snaplen, true);
    v.setUint32(20, options.linkType, true);
    this.#used = GLOBAL_HEADER_LENGTH;
  }

  /** Bytes of the file so far, buffered ones included. */
  get bytes(): number {
    return this.#flushed + this.#used;
  }

  /** Number of packet records written so far. */
  get packets(): number {
    return this.#packets;
  }

  /**
   * Appends one record. `data` holds the captured bytes (truncated to the snaplen here);
   * `originalLength` is the packet's length on the wire when `data` is already a truncated copy.
   * `timestampMicros` is microseconds since the Unix epoch.
   */
  write(data: Uint8Array, timestampMicros: number, originalLength = data.length): void {
    if (this.#closed) throw new Error("pcap writer is closed");
    const captured = Math.min(data.length, this.#snaplen);
    if (this.#used + RECORD_HEADER_LENGTH + captured > this.#buffer.length) this.flush();
    const v = this.#view;
    const at = this.#used;
    const seconds = Math.floor(timestampMicros / 1e6);
    v.setUint32(at, seconds, true);
    v.setUint32(at + 4, Math.floor(timestampMicros - seconds * 1e6), true);
    v.setUint32(at + 8, captured, true);
    v.setUint32(at + 12, Math.max(originalLength, captured), true);
    this.#buffer.set(captured === data.length ? data : data.subarray(0, captured), at + RECORD_HEADER_LENGTH);
    this.#used = at + RECORD_HEADER_LENGTH + captured;
    this.#packets++;
  }

  /** Writes everything buffered to the sink. */
  flush(): void {
    let offset = 0;
    try {
      while (offset < this.#used) {
        offset += this.#sink.writeSync(this.#buffer.subarray(offset, this.#used));
      }
    } finally {
      // A failed write (a closed pipe, a full disk) keeps what was not written, once.
      this.#flushed += offset;
      this.#buffer.copyWithin(0, offset, this.#used);
      this.#used -= offset;
    }
  }

  /** Flushes; later writes throw. Closing the sink is the caller's job. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
  }
}

/** Microseconds since the Unix epoch with sub-millisecond resolution, for record timestamps. */
export function wallClockMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * Where `netstack trace -w` puts packets, following tcpdump's conventions:
 *
 * - `-w FILE`: pcap, or pcapng when FILE ends in `.pcapng` or when several interfaces are traced (pcap
 *   has one link type and no interface or direction per packet). In pcapng every (interface, hook) gets
 *   an Interface Description Block named after the interface, each packet carries its direction in
 *   `epb_flags`, and closing writes an Interface Statistics Block per hook.
 * - `-w -`: the same bytes on standard output (`netstack trace -w - | tcpdump -r -`).
 * - `-C MB`: before writing a packet, when the file is already larger than MB millions of bytes, start
 *   the next file: FILE, FILE1, FILE2…; with `-W N` at most N files, named FILE0…FILE(N-1) with enough
 *   leading zeros for N-1, overwritten in turn (tcpdump's `-C`/`-W`).
 *
 * @module
 */

import { PcapWriter, type SyncWriter } from "../pcap/writer.ts";
import { PacketDirection, type PcapngStatistics, PcapngWriter } from "../pcap/pcapng_writer.ts";
import type { Direction } from "./record.ts";

/** One interface block of the capture: an (interface, hook) of the tracer. */
export interface CaptureInterface {
  name: string;
  description?: string;
  linkType: number;
}

/** A file-like sink the capture writes to; `close` is not called on standard output. */
export interface CaptureSink extends SyncWriter {
  close(): void;
}

/** How the capture is written. */
export interface CaptureOptions {
  /** `-w` argument; `-` is standard output. */
  path: string;
  format: "pcap" | "pcapng";
  snaplen: number;
  /** `-C` in bytes: rotate once a file is larger. */
  fileSizeBytes?: number;
  /** `-W`: keep at most this many files. */
  fileCount?: number;
  /** Opens (creating or truncating) a file; tests replace it. Default: Deno.openSync. */
  open?: (path: string) => CaptureSink;
  /** Standard output; tests replace it. Default: Deno.stdout. */
  stdout?: SyncWriter;
}

/** The format tcpdump users expect for `-w path` with `interfaces` interfaces traced. */
export function captureFormat(path: string, interfaces: number): "pcap" | "pcapng" {
  return path.toLowerCase().endsWith(".pcapng") || interfaces > 1 ? "pcapng" : "pcap";
}

/**
 * tcpdump's name of the `index`-th file (0-based) of `-w path -C …`: `path`, `path1`, `path2`…; with
 * `-W count`, the index wraps at `count` and is written with as many digits as `count - 1` has.
 */
export function rotatedName(path: string, index: number, fileCount?: number): string {
  if (fileCount === undefined) return index === 0 ? path : `${path}${index}`;
  const width = String(fileCount - 1).length - (fileCount === 1 ? 1 : 0);
  const slot = index % fileCount;
  if (width === 0 && slot === 0) return path;
  return `${path}${String(slot).padStart(width, "0")}`;
}

function openFile(path: string): CaptureSink {
  return Deno.openSync(path, { write: true, create: true, truncate: true });
}

const DIRECTION_FLAGS = { ingress: PacketDirection.INBOUND, egress: PacketDirection.OUTBOUND } as const;

/** The capture output of one run: one file, a rotating series, or standard output. */
export class CaptureFiles {
  readonly #options: CaptureOptions;
  readonly #interfaces: CaptureInterface[] = [];
  #sink: CaptureSink | undefined;
  #pcap: PcapWriter | undefined;
  #pcapng: PcapngWriter | undefined;
  #index = 0;
  #packets = 0;
  readonly #names: string[] = [];
  #closed = false;

  /** Opens the first file (or takes standard output) and describes `interfaces` in it. */
  constructor(options: CaptureOptions, interfaces: CaptureInterface[]) {
    if (options.format === "pcap" && new Set(interfaces.map((i) => i.linkType)).size > 1) {
      throw new RangeError("a pcap file has one link type: use pcapng for interfaces of different types");
    }
    this.#options = options;
    this.#interfaces.push(...interfaces);
    this.#open();
  }

  /** Packets written over every file. */
  get packets(): number {
    return this.#packets;
  }

  /** The files opened, in order (a name appears again when `-W` wraps). */
  get names(): readonly string[] {
    return this.#names;
  }

  /** Adds an interface while capturing (pcapng only); returns the id to pass to {@link write}. */
  addInterface(iface: CaptureInterface): number {
    if (this.#pcapng === undefined) throw new RangeError("interfaces can be added to pcapng captures only");
    this.#interfaces.push(iface);
    return this.#pcapng.addInterface({ ...iface, snaplen: this.#options.snaplen });
  }

  /** Writes one packet seen on interface `id` at `seconds` + `nanos` since the epoch. */
  write(
    id: number,
    data: Uint8Array,
    seconds: number,
    nanos: number,
    wireLength: number,
    direction: Direction,
  ): void {
    const size = this.#options.fileSizeBytes;
    if (size !== undefined && (this.#pcapng?.bytes ?? this.#pcap!.bytes) > size) {
      this.#finish();
      this.#index++;
      this.#open();
    }
    if (this.#pcapng !== undefined) {
      this.#pcapng.write(id, data, seconds, nanos, wireLength, DIRECTION_FLAGS[direction]);
    } else {
      this.#pcap!.write(data, seconds * 1e6 + Math.floor(nanos / 1000), wireLength);
    }
    this.#packets++;
  }

  /** Pushes buffered bytes to the file or pipe (a closed pipe throws Deno.errors.BrokenPipe). */
  flush(): void {
    this.#pcapng?.flush();
    this.#pcap?.flush();
  }

  /**
   * Writes the statistics of each interface (pcapng; `statistics(id)` gives them, time `now`), flushes
   * and closes the file. Idempotent.
   */
  close(statistics?: (id: number) => PcapngStatistics | undefined, now?: [number, number]): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#pcapng !== undefined && statistics !== undefined && now !== undefined) {
        for (let id = 0; id < this.#interfaces.length; id++) {
          const stats = statistics(id);
          if (stats !== undefined) this.#pcapng.statistics(id, now[0], now[1], stats);
        }
      }
    } finally {
      this.#finish();
    }
  }

  #open(): void {
    const { path, format, snaplen } = this.#options;
    let sink: SyncWriter;
    if (path === "-") {
      sink = this.#options.stdout ?? Deno.stdout;
    } else {
      const name = rotatedName(path, this.#index, this.#options.fileCount);
      this.#sink = (this.#options.open ?? openFile)(name);
      this.#names.push(name);
      sink = this.#sink;
    }
    if (format === "pcapng") {
      this.#pcapng = new PcapngWriter(sink);
      for (const iface of this.#interfaces) this.#pcapng.addInterface({ ...iface, snaplen });
    } else {
      const linkType = this.#interfaces[0]?.linkType ?? 1;
      this.#pcap = new PcapWriter(sink, { linkType, snaplen });
    }
  }

  #finish(): void {
    try {
      this.#pcapng?.close();
      this.#pcap?.close();
    } finally {
      this.#pcapng = undefined;
      this.#pcap = undefined;
      this.#sink?.close();
      this.#sink = undefined;
    }
  }
}

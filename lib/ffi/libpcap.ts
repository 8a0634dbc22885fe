/**
 * libpcap through Deno FFI: open an existing interface for live capture and injection.
 *
 * Set-up follows pcap(3PCAP)'s create/activate sequence: `pcap_create`, snaplen, promiscuous mode (off
 * unless asked), immediate mode (every packet delivered at once, no buffering timeout), buffer size,
 * `pcap_activate`, then non-blocking mode, direction "in" (so injected frames are not read back), and
 * the selectable fd that the device waits on with one awaited `poll`. Packets are then drained with
 * synchronous `pcap_next_ex` calls (a few hundred ns each) — never one awaited call per packet.
 *
 * `pcap_next_ex` returns pointers into libpcap's ring, valid until the next call; each packet is copied
 * once into a preallocated buffer (a view of foreign memory would cost an ArrayBuffer object per packet and
 * would dangle after the next call).
 *
 * @module
 */

import { cString, interfaceIndex } from "./libc.ts";

const SYMBOLS = {
  pcap_create: { parameters: ["buffer", "buffer"], result: "pointer" },
  pcap_set_snaplen: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_promisc: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_immediate_mode: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_set_buffer_size: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_activate: { parameters: ["pointer"], result: "i32" },
  pcap_setnonblock: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  pcap_setdirection: { parameters: ["pointer", "i32"], result: "i32" },
  pcap_get_selectable_fd: { parameters: ["pointer"], result: "i32" },
  pcap_datalink: { parameters: ["pointer"], result: "i32" },
  pcap_next_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  pcap_inject: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  pcap_stats: { parameters: ["pointer", "buffer"], result: "i32" },
  pcap_geterr: { parameters: ["pointer"], result: "pointer" },
  pcap_statustostr: { parameters: ["i32"], result: "pointer" },
  pcap_lib_version: { parameters: [], result: "pointer" },
  pcap_close: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libpcap symbols. */
export type LibpcapSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Names tried in order: Debian's runtime package (`libpcap0.8`) installs `libpcap.so.0.8`. */
const LIBRARY_NAMES = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

let library: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

/** Loads libpcap on first call; throws {@link PcapError} naming the package when it is missing. */
export function libpcap(): LibpcapSymbols {
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
    if (library === undefined) {
      throw new PcapError(
        `libpcap is not installed (tried ${
          LIBRARY_NAMES.join(", ")
        }); install it: apt-get install libpcap0.8`,
        0,
        { cause: lastError },
      );
    }
  }
  return library.symbols;
}

/** libpcap status codes (pcap/pcap.h). */
export const PcapStatus = {
  ERROR: -1,
  BREAK: -2,
  NOT_ACTIVATED: -3,
  ACTIVATED: -4,
  NO_SUCH_DEVICE: -5,
  PERM_DENIED: -8,
  IFACE_NOT_UP: -9,
  PROMISC_PERM_DENIED: -11,
  WARNING: 1,
  WARNING_PROMISC_NOTSUP: 2,
} as const;

/** `pcap_direction_t`: capture only packets received by the interface. */
const PCAP_D_IN = 1;
/** Link type of Ethernet captures (DLT_EN10MB). */
export const DLT_EN10MB = 1;
/** `PCAP_ERRBUF_SIZE`. */
const ERRBUF_SIZE = 256;

/** A libpcap failure, with the status code and a message that says what to do. */
export class PcapError extends Error {
  /** The libpcap status (negative) or 0 when not from a status code. */
  readonly status: number;
  /** Creates an error with `message` for `status`. */
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "PcapError";
    this.status = status;
  }
}

function cText(pointer: Deno.PointerValue): string {
  return pointer === null ? "" : Deno.UnsafePointerView.getCString(pointer);
}

function errbufText(errbuf: Uint8Array): string {
  const end = errbuf.indexOf(0);
  return new TextDecoder().decode(errbuf.subarray(0, end < 0 ? errbuf.length : end));
}

/** The libpcap version string, e.g. `libpcap version 1.10.3 (with TPACKET_V3)`. */
export function pcapVersion(): string {
  return cText(libpcap().pcap_lib_version());
}

/** Options of {@link PcapHandle.openLive}. */
export interface PcapLiveOptions {
  /** Interface to open, e.g. `my0`. It must exist in the calling thread's network namespace. */
  iface: string;
  /** Capture frames for other MACs too; default false. */
  promiscuous?: boolean;
  /** Bytes captured per frame; default 65535. */
  snaplen?: number;
  /** Kernel ring buffer size in bytes; default 4 MiB. */
  bufferSize?: number;
}

/** Kernel-side counters of a capture (`pcap_stats`). */
export interface PcapStats {
  /** Packets received by the capture. */
  received: number;
  /** Packets dropped because the ring was full. */
  dropped: number;
  /** Packets dropped by the interface or driver. */
  interfaceDropped: number;
}

/** An activated, non-blocking live capture on one interface. */
export class PcapHandle {
  /** The interface name. */
  readonly iface: string;
  /** The fd that becomes readable when packets are ready (`pcap_get_selectable_fd`). */
  readonly selectableFd: number;
  /** Bytes captured per frame at most. */
  readonly snaplen: number;
  /** Activation warning (e.g. promiscuous mode not supported), if any. */
  readonly warning: string | null;
  #handle: Deno.PointerObject | null;
  readonly #headerOut = new BigUint64Array(1);
  readonly #dataOut = new BigUint64Array(1);
  readonly #header = new Uint8Array(24);
  readonly #headerView = new DataView(this.#header.buffer);
  readonly #stats = new Uint8Array(16);
  readonly #buffer: Uint8Array<ArrayBuffer>;

  private constructor(
    iface: string,
    handle: Deno.PointerObject,
    fd: number,
    snaplen: number,
    warning: string | null,
  ) {
    this.iface = iface;
    this.#handle = handle;
    this.selectableFd = fd;
    this.snaplen = snaplen;
    this.warning = warning;
    this.#buffer = new Uint8Array(snaplen);
  }

  /**
   * Opens `options.iface` for capture and injection (see the module comment for the sequence).
   * Throws {@link PcapError} with a message naming the cause: no such interface, no permission,
   * interface down, not Ethernet.
   */
  static openLive(options: PcapLiveOptions): PcapHandle {
    const pcap = libpcap();
    const iface = options.iface;
    const snaplen = options.snaplen ?? 65535;
    // libpcap reports a missing interface only at activation and in words about "capture"; say it plainly.
    if (interfaceIndex(iface) === 0) {
      throw new PcapError(`no interface named ${iface} in this namespace`, PcapStatus.NO_SUCH_DEVICE);
    }
    const errbuf = new Uint8Array(ERRBUF_SIZE);
    const handle = pcap.pcap_create(cString(iface), errbuf);
    if (handle === null) {
      throw new PcapError(`libpcap cannot open ${iface}: ${errbufText(errbuf)}`, PcapStatus.ERROR);
    }
    try {
      const setup = (status: number, what: string) => {
        if (status !== 0) {
          throw new PcapError(`libpcap: ${what} on ${iface} failed (status ${status})`, status);
        }
      };
      setup(pcap.pcap_set_snaplen(handle, snaplen), "setting the snapshot length");
      setup(pcap.pcap_set_promisc(handle, options.promiscuous ? 1 : 0), "setting promiscuous mode");
      setup(pcap.pcap_set_immediate_mode(handle, 1), "setting immediate mode");
      setup(pcap.pcap_set_buffer_size(handle, options.bufferSize ?? 4 << 20), "setting the buffer size");
      const status = pcap.pcap_activate(handle);
      let warning: string | null = null;
      if (status < 0) throw PcapHandle.#activationError(handle, iface, status);
      if (status > 0) warning = `${cText(pcap.pcap_statustostr(status))}: ${cText(pcap.pcap_geterr(handle))}`;
      const linkType = pcap.pcap_datalink(handle);
      if (linkType !== DLT_EN10MB) {
        throw new PcapError(
          `${iface} is not an Ethernet interface (link type ${linkType}); the pcap backend needs Ethernet`,
          PcapStatus.ERROR,
        );
      }
      if (pcap.pcap_setnonblock(handle, 1, errbuf) < 0) {
        throw new PcapError(
          `libpcap: non-blocking mode on ${iface}: ${errbufText(errbuf)}`,
          PcapStatus.ERROR,
        );
      }
      if (pcap.pcap_setdirection(handle, PCAP_D_IN) < 0) {
        throw new PcapError(
          `libpcap: capturing only incoming frames on ${iface}: ${cText(pcap.pcap_geterr(handle))}`,
          PcapStatus.ERROR,
        );
      }
      const fd = pcap.pcap_get_selectable_fd(handle);
      if (fd < 0) throw new PcapError(`libpcap: ${iface} has no selectable fd`, PcapStatus.ERROR);
      return new PcapHandle(iface, handle, fd, snaplen, warning);
    } catch (error) {
      pcap.pcap_close(handle);
      throw error;
    }
  }

  static #activationError(handle: Deno.PointerObject, iface: string, status: number): PcapError {
    const detail = cText(libpcap().pcap_geterr(handle));
    switch (status) {
      case PcapStatus.NO_SUCH_DEVICE:
        return new PcapError(`no interface named ${iface} in this namespace`, status);
      case PcapStatus.PERM_DENIED:
        return new PcapError(
          `no permission to capture on ${iface}: it needs root or CAP_NET_RAW (run with sudo)`,
          status,
        );
      case PcapStatus.PROMISC_PERM_DENIED:
        return new PcapError(`no permission to put ${iface} in promiscuous mode (run with sudo)`, status);
      case PcapStatus.IFACE_NOT_UP:
        return new PcapError(`interface ${iface} is down; bring it up: ip link set ${iface} up`, status);
      default:
        return new PcapError(
          `libpcap cannot activate ${iface}: ${cText(libpcap().pcap_statustostr(status))}${
            detail ? ` (${detail})` : ""
          }`,
          status,
        );
    }
  }

  /**
   * Reads up to `max` ready packets without waiting, calling `onPacket` with a view valid only during the
   * call. Returns how many were read; `-1` after a capture error (see {@link PcapHandle.lastError}).
   */
  drain(onPacket: (frame: Uint8Array) => void, max: number): number {
    const handle = this.#handle;
    if (handle === null) return 0;
    const pcap = libpcap();
    let count = 0;
    while (count < max) {
      const status = pcap.pcap_next_ex(handle, this.#headerOut, this.#dataOut);
      if (status === 0) break;
      if (status !== 1) return count > 0 ? count : -1;
      const headerPointer = Deno.UnsafePointer.create(this.#headerOut[0]);
      const dataPointer = Deno.UnsafePointer.create(this.#dataOut[0]);
      if (headerPointer === null || dataPointer === null) break;
      Deno.UnsafePointerView.copyInto(headerPointer, this.#header);
      // struct pcap_pkthdr on x86-64: struct timeval (16 bytes), caplen (u32), len (u32).
      const caplen = Math.min(this.#headerView.getUint32(16, true), this.#buffer.length);
      const frame = this.#buffer.subarray(0, caplen);
      Deno.UnsafePointerView.copyInto(dataPointer, frame);
      count++;
      onPacket(frame);
    }
    return count;
  }

  /** Sends one frame as is (`pcap_inject`); returns false when libpcap refused it. */
  inject(frame: Uint8Array): boolean {
    const handle = this.#handle;
    if (handle === null) return false;
    const n = libpcap().pcap_inject(handle, frame as Uint8Array<ArrayBuffer>, BigInt(frame.length));
    return n === frame.length;
  }

  /** libpcap's text for the last error on this handle. */
  lastError(): string {
    return this.#handle === null ? "closed" : cText(libpcap().pcap_geterr(this.#handle));
  }

  /** Kernel counters of the capture, or `null` when unavailable. */
  stats(): PcapStats | null {
    if (this.#handle === null || libpcap().pcap_stats(this.#handle, this.#stats) !== 0) return null;
    const view = new DataView(this.#stats.buffer);
    return {
      received: view.getUint32(0, true),
      dropped: view.getUint32(4, true),
      interfaceDropped: view.getUint32(8, true),
    };
  }

  /** Closes the capture (idempotent). */
  close(): void {
    if (this.#handle === null) return;
    libpcap().pcap_close(this.#handle);
    this.#handle = null;
  }
}

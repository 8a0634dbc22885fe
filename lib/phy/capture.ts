/**
 * Device middleware that writes every packet in and out to a pcap stream, wrapping any device
 * (smoltcp's PcapWriter idea): the stack and the device stay unaware of it. With a filter (a tcpdump
 * expression compiled to classic BPF, run by lib/filter/interpreter.ts), only the packets it accepts are
 * written; the others are counted as `captureFiltered`.
 *
 * @module
 */

import { LinkType, PcapWriter, type SyncWriter, wallClockMicros } from "../pcap/writer.ts";
import type { Device, PacketHandler } from "./device.ts";
import { DeviceMiddleware } from "./middleware.ts";
import { completePartialChecksum, completeTxChecksum, RxFlags, type TxOffload } from "../wire/offload.ts";
import { ETHERNET_HEADER_LENGTH } from "../wire/ethernet.ts";
import type { CbpfFilter } from "../filter/interpreter.ts";

/** A device that records all traffic of an inner device. */
export class CaptureDevice extends DeviceMiddleware {
  readonly #writer: PcapWriter;
  #handler: PacketHandler = () => {};
  readonly #record: PacketHandler;
  readonly #filter: CbpfFilter | undefined;
  #filtered = 0;

  /**
   * Wraps `inner`, writing pcap records to `sink` (link type from the device's medium: raw IP or
   * Ethernet); with `filter`, only the packets it matches (compiled for that link type).
   */
  constructor(inner: Device, sink: SyncWriter, filter?: CbpfFilter) {
    super(inner);
    this.#filter = filter;
    this.#writer = new PcapWriter(sink, {
      linkType: inner.medium === "ip" ? LinkType.RAW : LinkType.ETHERNET,
    });
    this.#record = (packet, flags = 0) => {
      this.#write(packet, (flags & RxFlags.CHECKSUM_PARTIAL) !== 0, null);
      this.#handler(packet, flags);
    };
  }

  /** Packets written to the capture so far. */
  get captured(): number {
    return this.#writer.packets;
  }

  /** Receives through the inner device, recording each packet. */
  override receive(onPacket: PacketHandler, max: number): number {
    this.#handler = onPacket;
    return this.inner.receive(this.#record, max);
  }

  /** Records the packet, then sends it through the inner device. */
  override send(packet: Uint8Array, offload: TxOffload | null = null): boolean {
    this.#write(packet, offload !== null && offload.checksumPartial, offload);
    return this.inner.send(packet, offload);
  }

  /** Packets the filter did not match (not written). */
  get filtered(): number {
    return this.#filtered;
  }

  /**
   * Records a packet; a partial checksum is completed in a copy so readers (and the filter) see a valid
   * packet: where the sender's descriptor says (`offload`), or for a received packet (no descriptor)
   * where its headers say.
   */
  #write(packet: Uint8Array, checksumPartial: boolean, offload: TxOffload | null): void {
    let bytes = packet;
    if (checksumPartial) {
      bytes = packet.slice();
      const ip = this.medium === "ethernet" ? bytes.subarray(ETHERNET_HEADER_LENGTH) : bytes;
      if (offload !== null) completeTxChecksum(ip, offload);
      else completePartialChecksum(ip);
    }
    if (this.#filter !== undefined && !this.#filter.matches(bytes)) {
      this.#filtered++;
      return;
    }
    this.#writer.write(bytes, wallClockMicros());
  }

  /** Flushes buffered records before the device waits. */
  protected override prepareWait(): boolean {
    // Buffered records reach the file whenever the stack goes idle, so a capture is readable while running.
    this.#writer.flush();
    return true;
  }

  /** The inner device's counters, the number of packets captured and of those the filter left out. */
  override stats(): Record<string, unknown> {
    return { ...super.stats(), captured: this.captured, captureFiltered: this.#filtered };
  }

  /** Flushes the capture and closes the inner device; closing the sink is the caller's job. */
  override close(): void {
    this.#writer.close();
    this.inner.close();
  }
}

/**
 * Device middleware that writes every packet in and out to a pcap stream, wrapping any device
 * (smoltcp's PcapWriter idea): the stack and the device stay unaware of it.
 *
 * @module
 */

import { LinkType, PcapWriter, type SyncWriter, wallClockMicros } from "../pcap/writer.ts";
import type { Device, Medium, PacketHandler } from "./device.ts";

/** A device that records all traffic of an inner device. */
export class CaptureDevice implements Device {
  readonly #inner: Device;
  readonly #writer: PcapWriter;
  #handler: PacketHandler = () => {};
  readonly #record: PacketHandler;

  /** Wraps `inner`, writing pcap records to `sink` (link type from the device's medium). */
  constructor(inner: Device, sink: SyncWriter) {
    this.#inner = inner;
    this.#writer = new PcapWriter(sink, {
      linkType: inner.medium === "ip" ? LinkType.RAW : LinkType.ETHERNET,
    });
    this.#record = (packet) => {
      this.#writer.write(packet, wallClockMicros());
      this.#handler(packet);
    };
  }

  get name(): string {
    return this.#inner.name;
  }
  get medium(): Medium {
    return this.#inner.medium;
  }
  get mtu(): number {
    return this.#inner.mtu;
  }

  /** Packets written to the capture so far. */
  get captured(): number {
    return this.#writer.packets;
  }

  receive(onPacket: PacketHandler, max: number): number {
    this.#handler = onPacket;
    return this.#inner.receive(this.#record, max);
  }

  send(packet: Uint8Array): boolean {
    this.#writer.write(packet, wallClockMicros());
    return this.#inner.send(packet);
  }

  wait(timeoutMs: number): Promise<void> {
    // Buffered records reach the file whenever the stack goes idle, so a capture is readable while running.
    this.#writer.flush();
    return this.#inner.wait(timeoutMs);
  }

  wake(): void {
    this.#inner.wake();
  }

  /** Flushes the capture and closes the inner device; closing the sink is the caller's job. */
  close(): void {
    this.#writer.close();
    this.#inner.close();
  }
}

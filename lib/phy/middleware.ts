/**
 * The base of device middleware (capture, impairment): a device that wraps another and forwards
 * everything it does not change, so each middleware states only what it adds.
 *
 * @module
 */

import type { Device, Medium, PacketHandler } from "./device.ts";
import type { TxOffload } from "../wire/offload.ts";

/** A device forwarding every call to `inner`; subclasses override what they change. */
export class DeviceMiddleware implements Device {
  /** The wrapped device. */
  protected readonly inner: Device;

  /** Wraps `inner`. */
  constructor(inner: Device) {
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }
  get medium(): Medium {
    return this.inner.medium;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get offloads(): boolean {
    return this.inner.offloads === true;
  }
  receive(onPacket: PacketHandler, max: number): number {
    return this.inner.receive(onPacket, max);
  }
  send(packet: Uint8Array, offload: TxOffload | null = null): boolean {
    return this.inner.send(packet, offload);
  }
  wait(timeoutMs: number): Promise<void> {
    return this.prepareWait() ? this.inner.wait(timeoutMs) : Promise.resolve();
  }
  /** Present when the inner device can block; see {@link Device.waitSync}. */
  get waitSync(): ((timeoutMs: number) => boolean) | undefined {
    return this.inner.waitSync === undefined ? undefined : this.#waitSync;
  }
  readonly #waitSync = (timeoutMs: number): boolean => {
    return this.prepareWait() ? this.inner.waitSync!(timeoutMs) : false;
  };
  /** What a middleware does before the device waits (either way); false comes straight back. */
  protected prepareWait(): boolean {
    return true;
  }
  wake(): void {
    this.inner.wake();
  }
  close(): void {
    this.inner.close();
  }
  /** The wrapped device's counters. */
  stats(): Record<string, unknown> {
    return this.inner.stats?.() ?? {};
  }
}

/**
 * An in-memory device for tests and simulations: packets injected by the test are received by the stack,
 * and packets the stack sends are collected (or handed to a callback).
 *
 * @module
 */

import type { Device, Medium, PacketHandler } from "./device.ts";
import type { TxOffload } from "../wire/offload.ts";

/** Options of {@link MemoryDevice}. */
export interface MemoryDeviceOptions {
  /** Interface name; default `mem0`. */
  name?: string;
  /** What one packet holds; default `ip`. */
  medium?: Medium;
  /** MTU; default 1500. */
  mtu?: number;
  /**
   * Whether the device takes checksum-partial packets and TCP super-segments (see `Device.offloads`):
   * `onSend` then gets each packet's `TxOffload` descriptor, to complete or cut it as a NIC would.
   */
  offloads?: boolean;
  /**
   * Called with a copy of each packet the stack sends and its offload descriptor (`null`: none; valid
   * only during the call); when absent, packets collect in `sent`.
   */
  onSend?: (packet: Uint8Array, offload: TxOffload | null) => void;
}

/** A device backed by arrays. */
export class MemoryDevice implements Device {
  readonly name: string;
  readonly medium: Medium;
  readonly mtu: number;
  readonly offloads: boolean;
  /** Packets the stack sent, oldest first (when no `onSend` was given). */
  readonly sent: Uint8Array[] = [];
  readonly #inbox: Uint8Array[] = [];
  readonly #onSend?: (packet: Uint8Array, offload: TxOffload | null) => void;
  #wakeUp: (() => void) | null = null;
  #closed = false;

  /** Creates an empty device. */
  constructor(options: MemoryDeviceOptions = {}) {
    this.name = options.name ?? "mem0";
    this.medium = options.medium ?? "ip";
    this.mtu = options.mtu ?? 1500;
    this.offloads = options.offloads === true;
    this.#onSend = options.onSend;
  }

  /** Queues a packet (copied) for the stack to receive, and wakes a pending wait. */
  inject(packet: Uint8Array): void {
    this.#inbox.push(packet.slice());
    this.wake();
  }

  /** Number of injected packets not yet received. */
  get pending(): number {
    return this.#inbox.length;
  }

  receive(onPacket: PacketHandler, max: number): number {
    let count = 0;
    while (count < max && this.#inbox.length > 0) {
      onPacket(this.#inbox.shift()!);
      count++;
    }
    return count;
  }

  send(packet: Uint8Array, offload: TxOffload | null = null): boolean {
    if (this.#closed) return false;
    const copy = packet.slice();
    if (this.#onSend) this.#onSend(copy, offload);
    else this.sent.push(copy);
    return true;
  }

  wait(timeoutMs: number): Promise<void> {
    if (this.#inbox.length > 0 || this.#closed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      const wakeUp = () => done();
      this.#wakeUp = wakeUp;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).finally(() => {
      this.#wakeUp = null;
    });
  }

  wake(): void {
    this.#wakeUp?.();
  }

  close(): void {
    this.#closed = true;
    this.wake();
  }
}

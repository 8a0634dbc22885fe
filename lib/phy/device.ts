/**
 * The device contract: how the stack's shell exchanges packets with TUN, TAP, an AF_PACKET socket, libpcap
 * or an in-memory link. Batches, not Promises per packet: wait for readiness once, then drain what is ready.
 * The offload flags are wire-level facts shared with the protocols, so they live in lib/wire/offload.ts.
 *
 * @module
 */

import type { TxOffload } from "../wire/offload.ts";

// The offload vocabulary lives with the wire formats, so protocol code needs nothing from here.
export { GsoType, RxFlags, TxFlags, TxOffload } from "../wire/offload.ts";

/** What one packet of a device holds: IP packets (TUN) or Ethernet frames (TAP, AF_PACKET, libpcap). */
export type Medium = "ip" | "ethernet";

/** Called for each received packet with its {@link RxFlags}; `packet` is valid only during the call. */
export type PacketHandler = (packet: Uint8Array, flags?: number) => void;

/** A network device seen from the stack. */
export interface Device {
  /** Interface name, e.g. `tun0`. */
  readonly name: string;
  /** What one packet holds. */
  readonly medium: Medium;
  /** Largest packet the device carries (IP MTU for TUN). */
  readonly mtu: number;
  /**
   * Whether the device takes checksum-partial packets and TCP super-segments that it (or the kernel)
   * segments: see the {@link TxOffload} of {@link Device.send}. Absent means no.
   */
  readonly offloads?: boolean;
  /**
   * Reads up to `max` packets that are ready, without waiting, calling `onPacket` for each.
   * Returns how many were read (0 when none was ready).
   */
  receive(onPacket: PacketHandler, max: number): number;
  /**
   * Sends one packet; its bytes are consumed before this returns. Returns false when it was dropped.
   * With {@link Device.offloads}, `offload` may ask for a checksum completion and segmentation; its
   * offsets count from the IP header (the device adds its own link header). It is valid only during
   * the call.
   */
  send(packet: Uint8Array, offload?: TxOffload | null): boolean;
  /** Resolves when packets may be ready, when {@link Device.wake} is called, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void>;
  /**
   * Blocks the calling thread in the kernel until packets may be ready, {@link Device.wake} was called
   * before, a signal arrives, or `timeoutMs` passes. Absent on devices that cannot block (in-memory).
   * A synchronous wait wakes the thread that handles the packets directly, where {@link Device.wait}
   * pays two thread hand-offs (a pool thread, then the event loop); the caller must make sure the event
   * loop has nothing to do first. Returns true when a signal interrupted the wait: the runtime handles
   * signals on its event loop, which then needs a full turn (see lib/stack/loop.ts).
   */
  waitSync?(timeoutMs: number): boolean;
  /** Makes the pending (or the next) {@link Device.wait} return at once. Safe to call often. */
  wake(): void;
  /** Releases the device; a created TUN/TAP device disappears. Call once no wait is pending. */
  close(): void;
  /** The device's own counters (errors, kernel drops, what middleware did), as a JSON-able object. */
  stats?(): Record<string, unknown>;
}

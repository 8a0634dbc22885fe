/**
 * The device contract: how the stack's shell exchanges packets with TUN, TAP, libpcap or an in-memory
 * link. Batches, not Promises per packet: wait for readiness once, then drain what is ready.
 *
 * @module
 */

/** What one packet of a device holds: IP packets (TUN) or Ethernet frames (TAP, libpcap). */
export type Medium = "ip" | "ethernet";

/** Called for each received packet; `packet` is valid only during the call. */
export type PacketHandler = (packet: Uint8Array) => void;

/** A network device seen from the stack. */
export interface Device {
  /** Interface name, e.g. `tun0`. */
  readonly name: string;
  /** What one packet holds. */
  readonly medium: Medium;
  /** Largest packet the device carries (IP MTU for TUN). */
  readonly mtu: number;
  /**
   * Reads up to `max` packets that are ready, without waiting, calling `onPacket` for each.
   * Returns how many were read (0 when none was ready).
   */
  receive(onPacket: PacketHandler, max: number): number;
  /** Sends one packet; its bytes are consumed before this returns. Returns false when it was dropped. */
  send(packet: Uint8Array): boolean;
  /** Resolves when packets may be ready, when {@link Device.wake} is called, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void>;
  /** Makes the pending (or the next) {@link Device.wait} return at once. Safe to call often. */
  wake(): void;
  /** Releases the device; a created TUN/TAP device disappears. Call once no wait is pending. */
  close(): void;
}

/**
 * The device contract: how the stack's shell exchanges packets with TUN, TAP, libpcap or an in-memory
 * link. Batches, not Promises per packet: wait for readiness once, then drain what is ready.
 *
 * @module
 */

/** What one packet of a device holds: IP packets (TUN) or Ethernet frames (TAP, libpcap). */
export type Medium = "ip" | "ethernet";

/** Flags a device attaches to a received packet. */
export const RxFlags = {
  /**
   * The transport checksum need not be verified: the packet comes from the local kernel with its checksum
   * left partial (virtio_net_hdr NEEDS_CSUM) or already verified (DATA_VALID).
   */
  CHECKSUM_TRUSTED: 1,
  /** The TCP/UDP checksum field holds only the pseudo-header sum (the sender left it to offload). */
  CHECKSUM_PARTIAL: 2,
} as const;

/** Flags the stack attaches to a packet it sends, for devices with {@link Device.offloads}. */
export const TxFlags = {
  /**
   * The TCP/UDP checksum field holds only the pseudo-header sum; the device (or the kernel behind it)
   * completes it, or trusts it on local delivery.
   */
  CHECKSUM_PARTIAL: 1,
} as const;

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
   * segments: see {@link TxFlags} and the `gsoSize` of {@link Device.send}. Absent means no.
   */
  readonly offloads?: boolean;
  /**
   * Reads up to `max` packets that are ready, without waiting, calling `onPacket` for each.
   * Returns how many were read (0 when none was ready).
   */
  receive(onPacket: PacketHandler, max: number): number;
  /**
   * Sends one packet; its bytes are consumed before this returns. Returns false when it was dropped.
   * With {@link Device.offloads}, `txFlags` may hold {@link TxFlags} and `gsoSize` > 0 marks a TCP/IPv4
   * super-segment to be cut into segments of `gsoSize` payload bytes.
   */
  send(packet: Uint8Array, txFlags?: number, gsoSize?: number): boolean;
  /** Resolves when packets may be ready, when {@link Device.wake} is called, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void>;
  /** Makes the pending (or the next) {@link Device.wait} return at once. Safe to call often. */
  wake(): void;
  /** Releases the device; a created TUN/TAP device disappears. Call once no wait is pending. */
  close(): void;
  /** The device's own counters (errors, kernel drops, what middleware did), for `stats`. */
  counters?(): Record<string, unknown>;
}

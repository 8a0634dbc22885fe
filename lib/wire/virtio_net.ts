/**
 * The `virtio_net_hdr` that a TUN/TAP device with IFF_VNET_HDR puts before every packet (Linux
 * include/uapi/linux/virtio_net.h; little-endian on x86): checksum offload and segmentation (GSO) metadata.
 *
 * @module
 */

import { GsoType, type TxOffload } from "./offload.ts";

/** Length of the header without the `num_buffers` field (TUNSETVNETHDRSZ 10). */
export const VIRTIO_NET_HDR_LENGTH = 10;

/** `flags` bits. */
export const VirtioNetFlags = {
  /** The checksum is partial: complete it from `csum_start`, store at `csum_start + csum_offset`. */
  NEEDS_CSUM: 1,
  /** The checksum was verified already. */
  DATA_VALID: 2,
} as const;

/** `gso_type` values. */
export const VirtioGsoType = {
  NONE: 0,
  TCPV4: 1,
  UDP: 3,
  TCPV6: 4,
  /** Flag: the segments carry ECN CWR. */
  ECN: 0x80,
} as const;

/** Reads the `flags` byte. */
export function virtioFlags(header: Uint8Array, offset = 0): number {
  return header[offset];
}

/** Reads `gso_type`. */
export function virtioGsoType(header: Uint8Array, offset = 0): number {
  return header[offset + 1];
}

/** Reads `gso_size`: payload bytes per segment. */
export function virtioGsoSize(header: Uint8Array, offset = 0): number {
  return header[offset + 4] | (header[offset + 5] << 8);
}

/**
 * Writes a header at `buf[offset..offset+10)`. With `gsoSize` > 0 the packet is a TCP super-segment (of
 * `gsoType`, TCP/IPv4 by default)
 * to cut into segments of that payload size; `checksumStart`/`checksumOffset` locate a partial checksum
 * (both 0 when the packet's checksums are complete).
 */
export function writeVirtioNetHeader(
  buf: Uint8Array,
  offset: number,
  checksumStart: number,
  checksumOffset: number,
  gsoSize: number,
  headerLength: number,
  gsoType: number = VirtioGsoType.TCPV4,
): void {
  const partial = checksumOffset !== 0;
  buf[offset] = partial ? VirtioNetFlags.NEEDS_CSUM : 0;
  buf[offset + 1] = gsoSize > 0 ? gsoType : VirtioGsoType.NONE;
  buf[offset + 2] = headerLength & 0xff;
  buf[offset + 3] = headerLength >> 8;
  buf[offset + 4] = gsoSize & 0xff;
  buf[offset + 5] = gsoSize >> 8;
  buf[offset + 6] = checksumStart & 0xff;
  buf[offset + 7] = checksumStart >> 8;
  buf[offset + 8] = checksumOffset & 0xff;
  buf[offset + 9] = checksumOffset >> 8;
}

/**
 * Writes the header for a packet sent with `offload` (null: checksums complete, no segmentation). The
 * descriptor's offsets count from the IP header; `linkHeaderLength` bytes (e.g. an Ethernet header)
 * precede it in what the device writes.
 */
export function writeVirtioNetHeaderFor(
  buf: Uint8Array,
  offset: number,
  offload: TxOffload | null,
  linkHeaderLength: number,
): void {
  if (offload === null || (!offload.checksumPartial && offload.gsoType === GsoType.NONE)) {
    writeVirtioNetHeader(buf, offset, 0, 0, 0, 0);
    return;
  }
  const partial = offload.checksumPartial;
  const tcp6 = offload.gsoType === GsoType.TCPV6;
  const gso = offload.gsoType === GsoType.TCPV4 || tcp6 ? offload.gsoSize : 0;
  writeVirtioNetHeader(
    buf,
    offset,
    partial ? linkHeaderLength + offload.checksumStart : 0,
    partial ? offload.checksumOffset : 0,
    gso,
    linkHeaderLength + offload.headerLength,
    tcp6 ? VirtioGsoType.TCPV6 : VirtioGsoType.TCPV4,
  );
}

/**
 * What the `virtio_net_hdr` before a received frame (TAP with IFF_VNET_HDR, AF_PACKET with
 * PACKET_VNET_HDR) means to the stack. (The header before a sent frame is written from the sender's
 * descriptor: `writeVirtioNetHeaderFor` in lib/wire/virtio_net.ts.)
 *
 * @module
 */

import { virtioFlags, VirtioGsoType, virtioGsoType, VirtioNetFlags } from "../wire/virtio_net.ts";
import { RxFlags } from "../wire/offload.ts";

/**
 * The {@link RxFlags} for a packet received after the header at `header[0..10)`, or -1 when the packet is
 * a GSO super-packet the stack cannot take as one packet (UDP fragmentation offload, UDP segmentation):
 * only TCP super-segments are, to TCP, one large segment.
 *
 * NEEDS_CSUM means a local sender left the checksum partial (the kernel would finish it on the way out of a
 * real NIC, and trusts it on local delivery: so do we); DATA_VALID means it was verified already.
 */
export function virtioRxFlags(header: Uint8Array): number {
  const gso = virtioGsoType(header) & ~VirtioGsoType.ECN;
  if (gso !== VirtioGsoType.NONE && gso !== VirtioGsoType.TCPV4 && gso !== VirtioGsoType.TCPV6) return -1;
  const flags = virtioFlags(header);
  return (flags & VirtioNetFlags.NEEDS_CSUM ? RxFlags.CHECKSUM_TRUSTED | RxFlags.CHECKSUM_PARTIAL : 0) |
    (flags & VirtioNetFlags.DATA_VALID ? RxFlags.CHECKSUM_TRUSTED : 0);
}

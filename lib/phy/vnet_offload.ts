/**
 * The device side of checksum and segmentation offload through a `virtio_net_hdr` (TAP with IFF_VNET_HDR,
 * AF_PACKET with PACKET_VNET_HDR): what a received header means for the stack ({@link RxFlags}), and the
 * header to put before a frame the stack sends with {@link TxFlags} or a GSO size.
 *
 * @module
 */

import { foldSum, ipv4PseudoHeaderSum } from "../wire/checksum.ts";
import { readIpv4 } from "../wire/ipv4_address.ts";
import {
  VIRTIO_NET_HDR_LENGTH,
  virtioFlags,
  VirtioGsoType,
  virtioGsoType,
  VirtioNetFlags,
  writeVirtioNetHeader,
} from "../wire/virtio_net.ts";
import { RxFlags, TxFlags } from "./device.ts";

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

/**
 * Writes into `tx[0..10)` the header for `packet` (an IPv4 packet at `l3` within it: 0 for TUN, 14 after an
 * Ethernet header) and copies `packet` after it. With {@link TxFlags.CHECKSUM_PARTIAL} or `gsoSize` > 0 the
 * header says where the TCP/UDP checksum starts and lies, and the copy's checksum field is set to the
 * pseudo-header sum the kernel completes (or, delivering locally, trusts) whatever the stack left there.
 * Returns the bytes to write (header and packet), or `null` when `tx` is too small.
 */
export function encodeVirtioTx(
  tx: Uint8Array<ArrayBuffer>,
  packet: Uint8Array,
  l3: number,
  txFlags: number,
  gsoSize: number,
): Uint8Array<ArrayBuffer> | null {
  if (packet.length > tx.length - VIRTIO_NET_HDR_LENGTH) return null;
  tx.set(packet, VIRTIO_NET_HDR_LENGTH);
  if ((txFlags & TxFlags.CHECKSUM_PARTIAL) !== 0 || gsoSize > 0) {
    const headerLength = (packet[l3] & 0x0f) * 4;
    const protocol = packet[l3 + 9];
    const checksumOffset = protocol === 6 ? 16 : 6; // TCP 16, UDP 6
    const transportHeader = protocol === 6 ? (packet[l3 + headerLength + 12] >> 4) * 4 : 8;
    const totalLength = (packet[l3 + 2] << 8) | packet[l3 + 3]; // frames may carry padding
    const start = l3 + headerLength;
    writeVirtioNetHeader(tx, 0, start, checksumOffset, gsoSize, start + transportHeader);
    const sum = foldSum(
      ipv4PseudoHeaderSum(
        readIpv4(packet, l3 + 12),
        readIpv4(packet, l3 + 16),
        protocol,
        totalLength - headerLength,
      ),
    );
    const at = VIRTIO_NET_HDR_LENGTH + start + checksumOffset;
    tx[at] = sum >> 8;
    tx[at + 1] = sum & 0xff;
  } else {
    writeVirtioNetHeader(tx, 0, 0, 0, 0, 0); // checksums complete, no segmentation
  }
  return tx.subarray(0, VIRTIO_NET_HDR_LENGTH + packet.length);
}

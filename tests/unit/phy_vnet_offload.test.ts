/**
 * The virtio_net_hdr that TAP (IFF_VNET_HDR) and AF_PACKET (PACKET_VNET_HDR) put before each frame: what a
 * received header means to the stack, and the header written before a frame the stack sends with a partial
 * checksum or as a TCP super-segment.
 */

import assert from "node:assert/strict";
import { encodeVirtioTx, virtioRxFlags } from "../../lib/phy/vnet_offload.ts";
import { RxFlags, TxFlags } from "../../lib/phy/device.ts";
import { VIRTIO_NET_HDR_LENGTH, VirtioGsoType, VirtioNetFlags } from "../../lib/wire/virtio_net.ts";
import { foldSum, ipv4PseudoHeaderSum } from "../../lib/wire/checksum.ts";
import { ip } from "../helpers/packets.ts";
import { buildSegment } from "../helpers/tcp_packet.ts";

function header(flags: number, gsoType: number): Uint8Array {
  const h = new Uint8Array(VIRTIO_NET_HDR_LENGTH);
  h[0] = flags;
  h[1] = gsoType;
  return h;
}

Deno.test("vnet offload: received checksum state and GSO types", () => {
  assert.equal(virtioRxFlags(header(0, VirtioGsoType.NONE)), 0, "nothing known: verify");
  assert.equal(
    virtioRxFlags(header(VirtioNetFlags.NEEDS_CSUM, VirtioGsoType.TCPV4)),
    RxFlags.CHECKSUM_TRUSTED | RxFlags.CHECKSUM_PARTIAL,
  );
  assert.equal(
    virtioRxFlags(header(VirtioNetFlags.DATA_VALID, VirtioGsoType.NONE)),
    RxFlags.CHECKSUM_TRUSTED,
  );
  assert.equal(virtioRxFlags(header(0, VirtioGsoType.TCPV4 | VirtioGsoType.ECN)), 0, "TCP with ECN is TCP");
  assert.equal(
    virtioRxFlags(header(VirtioNetFlags.NEEDS_CSUM, VirtioGsoType.UDP)),
    -1,
    "UFO: not one packet",
  );
  assert.equal(virtioRxFlags(header(0, 5)), -1, "UDP segmentation: not one packet");
});

Deno.test("vnet offload: a partial TCP checksum and a super-segment in an Ethernet frame", () => {
  const segment = buildSegment({
    src: ip("192.168.0.2"),
    dst: ip("192.168.0.1"),
    srcPort: 19,
    dstPort: 40000,
    flags: ".",
    seq: 1,
    ack: 1,
    payload: 4000,
  });
  const frame = new Uint8Array(14 + segment.length);
  frame.set(segment, 14);
  frame[12] = 0x08;
  const tx = new Uint8Array(VIRTIO_NET_HDR_LENGTH + 65536 + 18);
  const out = encodeVirtioTx(tx, frame, 14, TxFlags.CHECKSUM_PARTIAL, 1448)!;
  assert.equal(out.length, VIRTIO_NET_HDR_LENGTH + frame.length);
  const view = new DataView(out.buffer, out.byteOffset);
  assert.equal(out[0], VirtioNetFlags.NEEDS_CSUM);
  assert.equal(out[1], VirtioGsoType.TCPV4);
  assert.equal(view.getUint16(2, true), 14 + 20 + 20, "header length: Ethernet, IPv4, TCP");
  assert.equal(view.getUint16(4, true), 1448, "gso_size");
  assert.equal(view.getUint16(6, true), 34, "csum_start: the TCP header");
  assert.equal(view.getUint16(8, true), 16, "csum_offset: TCP's checksum field");
  const total = (segment[2] << 8) | segment[3];
  const pseudo = foldSum(ipv4PseudoHeaderSum(ip("192.168.0.2"), ip("192.168.0.1"), 6, total - 20));
  assert.equal(
    view.getUint16(VIRTIO_NET_HDR_LENGTH + 34 + 16),
    pseudo,
    "the field holds the pseudo-header sum",
  );
  assert.deepEqual(out.subarray(VIRTIO_NET_HDR_LENGTH, VIRTIO_NET_HDR_LENGTH + 34), frame.subarray(0, 34));

  const plain = encodeVirtioTx(tx, frame, 14, 0, 0)!;
  assert.deepEqual(
    [...plain.subarray(0, VIRTIO_NET_HDR_LENGTH)],
    new Array(10).fill(0),
    "complete: no offload",
  );
  assert.deepEqual(plain.subarray(VIRTIO_NET_HDR_LENGTH), frame);
  assert.equal(encodeVirtioTx(new Uint8Array(100), frame, 14, 0, 0), null, "too large for the buffer");
});

/**
 * The virtio_net_hdr that TAP (IFF_VNET_HDR) and AF_PACKET (PACKET_VNET_HDR) put before each frame: what a
 * received header means to the stack (checksum state; GSO types the stack can take as one packet).
 */

import assert from "node:assert/strict";
import { virtioRxFlags } from "../../lib/phy/vnet_offload.ts";
import { RxFlags } from "../../lib/wire/offload.ts";
import { VIRTIO_NET_HDR_LENGTH, VirtioGsoType, VirtioNetFlags } from "../../lib/wire/virtio_net.ts";

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

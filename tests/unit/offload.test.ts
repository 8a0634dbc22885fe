/**
 * Offloads as data: the virtio_net_hdr written from a TCP sender's descriptor (TUN and TAP), the one
 * checksum completion, and descriptors surviving an impairment layer that holds packets back.
 */

import assert from "node:assert/strict";
import { Ipv4Interface } from "../../lib/iface/ipv4_interface.ts";
import type { Ipv4Sink, TransportProtocol } from "../../lib/iface/protocol.ts";
import { ImpairedDevice } from "../../lib/phy/impair.ts";
import { MemoryDevice } from "../../lib/phy/memory.ts";
import { IpProtocol, Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import {
  completeChecksumAt,
  completePartialChecksum,
  completeTxChecksum,
  GsoType,
  TxOffload,
} from "../../lib/wire/offload.ts";
import { fillTcpChecksum } from "../../lib/wire/tcp.ts";
import {
  VIRTIO_NET_HDR_LENGTH,
  virtioFlags,
  virtioGsoSize,
  VirtioGsoType,
  virtioGsoType,
  VirtioNetFlags,
  writeVirtioNetHeaderFor,
} from "../../lib/wire/virtio_net.ts";
import { partialTcpPacket, tcpChecksumValid } from "../helpers/partial_tcp.ts";

const SRC = 0x0a000002, DST = 0x0a000001;
const u16le = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);

Deno.test("offload: the virtio_net_hdr comes from the descriptor, shifted by the link header on TAP", () => {
  const { offload } = partialTcpPacket(SRC, DST, 4000, 1448);
  offload.headerLength = 52; // with a timestamps option
  const tun = new Uint8Array(VIRTIO_NET_HDR_LENGTH);
  writeVirtioNetHeaderFor(tun, 0, offload, 0);
  assert.equal(virtioFlags(tun), VirtioNetFlags.NEEDS_CSUM);
  assert.equal(virtioGsoType(tun), VirtioGsoType.TCPV4);
  assert.equal(virtioGsoSize(tun), 1448);
  assert.deepEqual([u16le(tun, 2), u16le(tun, 6), u16le(tun, 8)], [52, 20, 16], "hdr_len, csum_start/offset");
  const tap = new Uint8Array(VIRTIO_NET_HDR_LENGTH);
  writeVirtioNetHeaderFor(tap, 0, offload, 14);
  assert.deepEqual([u16le(tap, 2), u16le(tap, 6), u16le(tap, 8)], [66, 34, 16], "after the Ethernet header");
  offload.gsoType = GsoType.NONE;
  offload.gsoSize = 0;
  writeVirtioNetHeaderFor(tun, 0, offload, 0);
  assert.deepEqual([virtioFlags(tun), virtioGsoType(tun), virtioGsoSize(tun)], [
    VirtioNetFlags.NEEDS_CSUM,
    0,
    0,
  ]);
  writeVirtioNetHeaderFor(tun, 0, null, 0);
  assert.deepEqual([...tun], new Array(10).fill(0), "no descriptor: complete checksums, no GSO");
});

Deno.test("offload: completing a partial checksum gives exactly the full checksum, odd lengths too", () => {
  for (const length of [0, 1, 7, 1000, 1001]) {
    const { packet, offload } = partialTcpPacket(SRC, DST, length);
    const full = packet.slice();
    fillTcpChecksum(full, 20, full.length - 20, SRC, DST);
    const viaDescriptor = packet.slice();
    completeTxChecksum(viaDescriptor, offload);
    assert.deepEqual(viaDescriptor, full, `descriptor, ${length} bytes`);
    const viaHeaders = packet.slice();
    assert.equal(completePartialChecksum(viaHeaders), true);
    assert.deepEqual(viaHeaders, full, `received packet, ${length} bytes`);
    const padded = new Uint8Array(packet.length + 6);
    padded.set(packet);
    completeTxChecksum(padded, offload);
    assert.deepEqual(padded.subarray(0, packet.length), full, "zero link padding changes nothing");
  }
  const done = new Uint8Array(40);
  const complete = new TxOffload();
  completeTxChecksum(done, complete);
  assert.deepEqual(done, new Uint8Array(40), "not partial: untouched");
  const udp = new Uint8Array(10);
  udp[6] = 0xff; // the pseudo-header sum that makes the total 0xffff, i.e. checksum 0
  udp[7] = 0xff;
  completeChecksumAt(udp, 0, 6, true);
  assert.deepEqual([udp[6], udp[7]], [0xff, 0xff], "UDP sends a computed 0 as 0xffff (RFC 768)");
});

Deno.test("offload: the IPv4 layer completes a partial checksum before fragmenting", () => {
  const { packet, offload } = partialTcpPacket(SRC, DST, 1400);
  const iface = new Ipv4Interface({ address: parseIpv4Cidr("10.0.0.2/24")!, mtu: 576 });
  const sender: TransportProtocol = {
    ingress() {},
    poll(_now: number, out: Ipv4Sink) {
      out.sendIpv4(packet, offload);
      return null;
    },
  };
  iface.register(IpProtocol.TCP, sender);
  const sent: { bytes: Uint8Array; offload: TxOffload | null }[] = [];
  iface.poll(0, { offloads: true, sendIpv4: (p, o = null) => sent.push({ bytes: p.slice(), offload: o }) });
  assert.equal(sent.length, 3);
  assert.ok(sent.every((s) => s.offload === null), "fragments go down with complete checksums");
  const whole = new Uint8Array(packet.length);
  whole.set(packet.subarray(0, 20));
  for (const s of sent) {
    const ip = new Ipv4Packet(s.bytes);
    whole.set(ip.payload(), 20 + ip.fragmentOffset);
  }
  assert.equal(tcpChecksumValid(whole, SRC, DST), true);
});

Deno.test("offload: a packet held back by impairment keeps its own descriptor", () => {
  const inner = new MemoryDevice();
  const got: { id: number; gso: number }[] = [];
  const real = inner.send.bind(inner);
  inner.send = (p: Uint8Array, o: TxOffload | null = null) => {
    got.push({ id: p[0], gso: o?.gsoSize ?? -1 });
    return real(p);
  };
  const device = new ImpairedDevice(inner, { loss: 0, reorder: 1, duplicate: 0, seed: 1, direction: "out" });
  const shared = new TxOffload(); // reused by the sender for every packet, as TCP does
  shared.gsoType = GsoType.TCPV4;
  shared.gsoSize = 1000;
  device.send(new Uint8Array([1]), shared);
  shared.gsoSize = 2000;
  device.send(new Uint8Array([2]), shared);
  assert.deepEqual(got, [{ id: 2, gso: 2000 }, { id: 1, gso: 1000 }], "reordered, each with its descriptor");
});

/** IPv4 fragment reassembly and fragmentation, driven with packets and a virtual clock. */

import assert from "node:assert/strict";
import { fragmentIpv4, Ipv4Reassembler } from "../../lib/iface/ipv4_reassembly.ts";
import { DropCounters } from "../../lib/iface/stats.ts";
import { serveUdpEcho } from "../../lib/services/udp_echo.ts";
import { ipCore } from "../helpers/core.ts";
import { Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { internetChecksum } from "../../lib/wire/checksum.ts";
import { echoRequest, expectIcmp, expectUdp, udpPacket } from "../helpers/packets.ts";

/** Fragments `packet` for `mtu` with identification `id` (copies, in order). */
function fragments(packet: Uint8Array, mtu: number, id = 0x4242): Uint8Array[] {
  const out: Uint8Array[] = [];
  fragmentIpv4(packet, mtu, id, new Uint8Array(mtu), (f) => out.push(f.slice()));
  return out;
}

function bigEcho(size: number): Uint8Array {
  return echoRequest("10.0.0.1", "10.0.0.2", 77, 3, new Uint8Array(size).map((_, i) => (i * 13) & 0xff));
}

Deno.test("fragmentation: pieces are valid, 8-byte aligned, at most the MTU, and carry every byte once", () => {
  const packet = bigEcho(4000);
  const pieces = fragments(packet, 1500);
  assert.equal(pieces.length, 3);
  let expectedOffset = 0;
  for (const [i, piece] of pieces.entries()) {
    const ip = new Ipv4Packet(piece);
    assert.equal(ip.check(), null);
    assert.ok(piece.length <= 1500);
    assert.equal(ip.fragmentOffset, expectedOffset);
    assert.equal(ip.moreFragments, i < pieces.length - 1);
    assert.equal(ip.dontFragment, false);
    assert.equal(ip.identification, 0x4242);
    if (ip.moreFragments) assert.equal((ip.totalLength - 20) % 8, 0);
    assert.deepEqual(
      ip.payload(),
      packet.subarray(20 + expectedOffset, 20 + expectedOffset + ip.totalLength - 20),
    );
    expectedOffset += ip.totalLength - 20;
  }
  assert.equal(expectedOffset, packet.length - 20);
});

Deno.test("reassembly: in order, reversed and shuffled arrival all rebuild the datagram exactly", () => {
  const packet = bigEcho(5000);
  const pieces = fragments(packet, 576);
  assert.ok(pieces.length >= 6);
  const shuffled = [2, 0, 4, 1, 3].map((i) => pieces[i]).concat(pieces.slice(5));
  for (const order of [pieces, [...pieces].reverse(), shuffled]) {
    const drops = new DropCounters();
    const reassembler = new Ipv4Reassembler(drops);
    let whole: Uint8Array | null = null;
    for (const [i, piece] of order.entries()) {
      whole = reassembler.add(new Ipv4Packet(piece), i);
      if (i < order.length - 1) assert.equal(whole, null);
    }
    assert.ok(whole !== null);
    const ip = new Ipv4Packet(whole);
    assert.equal(ip.check(), null);
    assert.equal(ip.isFragment, false);
    assert.deepEqual(ip.payload(), packet.subarray(20));
    assert.equal(reassembler.pending, 0);
    assert.equal(drops.total, 0);
  }
});

Deno.test("reassembly: overlapping fragments drop the datagram (as Linux)", () => {
  const pieces = fragments(bigEcho(3000), 1500);
  const drops = new DropCounters();
  const reassembler = new Ipv4Reassembler(drops);
  assert.equal(reassembler.add(new Ipv4Packet(pieces[0]), 0), null);
  assert.equal(reassembler.add(new Ipv4Packet(pieces[0]), 0), null, "a duplicate overlaps itself");
  assert.equal(drops.get("fragment-overlap"), 1);
  assert.equal(reassembler.pending, 0);
});

Deno.test("reassembly: an incomplete datagram expires after the timeout on the virtual clock", () => {
  const pieces = fragments(bigEcho(3000), 1500);
  const drops = new DropCounters();
  const reassembler = new Ipv4Reassembler(drops, { timeoutMs: 30_000 });
  reassembler.add(new Ipv4Packet(pieces[0]), 1000);
  assert.equal(reassembler.poll(20_000), 31_000, "the next deadline");
  assert.equal(reassembler.pending, 1);
  assert.equal(reassembler.poll(31_000), null);
  assert.equal(reassembler.pending, 0);
  assert.equal(drops.get("reassembly-timeout"), 1);
  // The rest arriving late starts a new datagram that cannot complete.
  assert.equal(reassembler.add(new Ipv4Packet(pieces[1]), 31_001), null);
});

Deno.test("reassembly: bounded in datagrams and in bytes", () => {
  const drops = new DropCounters();
  const reassembler = new Ipv4Reassembler(drops, { maxDatagrams: 4, maxBytes: 20_000 });
  for (let id = 0; id < 6; id++) reassembler.add(new Ipv4Packet(fragments(bigEcho(3000), 1500, id)[0]), 0);
  assert.equal(reassembler.pending, 4);
  assert.equal(drops.get("reassembly-overflow"), 2);
  const huge = fragments(bigEcho(60_000), 1500, 999);
  for (const piece of huge) reassembler.add(new Ipv4Packet(piece), 0);
  assert.ok(drops.get("reassembly-memory") >= 1);
});

Deno.test("reassembly: a non-final fragment not a multiple of 8 bytes is refused", () => {
  const piece = fragments(bigEcho(3000), 1500)[0].slice(0, 1001);
  piece[2] = 1001 >> 8;
  piece[3] = 1001 & 0xff;
  piece[10] = piece[11] = 0;
  const checksum = internetChecksum(piece, 0, 20);
  piece[10] = checksum >> 8;
  piece[11] = checksum & 0xff;
  const ip = new Ipv4Packet(piece);
  assert.equal(ip.check(), null, "a valid packet: only the length rule is at stake");
  const drops = new DropCounters();
  const reassembler = new Ipv4Reassembler(drops);
  assert.equal(reassembler.add(ip, 0), null);
  assert.equal(drops.get("bad-fragment"), 1);
});

Deno.test("interface: a fragmented 4000-byte ping is reassembled and its reply fragmented to the MTU", () => {
  const { core, out } = ipCore();
  const iface = core.ipv4;
  const request = bigEcho(4000);
  for (const piece of fragments(request, 1500)) iface.ingress(piece, 0, out);
  const replies = out.take();
  assert.equal(replies.length, 3);
  assert.ok(replies.every((r) => r.length <= 1500));
  const reassembler = new Ipv4Reassembler(new DropCounters());
  let whole: Uint8Array | null = null;
  for (const r of replies) whole = reassembler.add(new Ipv4Packet(r), 0);
  const icmp = expectIcmp(whole!, { src: "10.0.0.2", dst: "10.0.0.1", type: 0 });
  assert.deepEqual(icmp.data(), request.subarray(28));
  assert.equal(iface.ipv4.fragmentsIn, 3);
  assert.equal(iface.ipv4.reassembled, 1);
  assert.equal(iface.ipv4.fragmentsOut, 3);
});

Deno.test("interface: UDP echo of an 8000-byte datagram over fragments", () => {
  const { core, out } = ipCore();
  const iface = core.ipv4;
  serveUdpEcho(core);
  const data = new Uint8Array(8000).map((_, i) => i & 0xff);
  for (const piece of fragments(udpPacket("10.0.0.1", 4000, "10.0.0.2", 7, data), 1500)) {
    iface.ingress(piece, 0, out);
  }
  const reassembler = new Ipv4Reassembler(new DropCounters());
  let whole: Uint8Array | null = null;
  for (const r of out.take()) whole = reassembler.add(new Ipv4Packet(r), 0);
  assert.deepEqual(expectUdp(whole!, { srcPort: 7, dstPort: 4000 }).data(), data);
});

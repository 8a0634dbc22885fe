/**
 * Recognising an unfinished partial checksum (what libpcap hands over from a sender that left the checksum
 * to transmit offload): the field holds the folded pseudo-header sum and the packet does not verify.
 * Complete checksums, other corruption, fragments and UDP without checksum are never reported.
 */

import assert from "node:assert/strict";
import { hasUnfinishedChecksum } from "../../lib/wire/partial_checksum.ts";
import { foldSum, ipv4PseudoHeaderSum, sumWords } from "../../lib/wire/checksum.ts";
import { ip, udpPacket } from "../helpers/packets.ts";
import { buildSegment } from "../helpers/tcp_packet.ts";

/** What a Linux sender with CHECKSUM_PARTIAL leaves in the field: the folded pseudo-header sum. */
function leavePartial(packet: Uint8Array, field: number): Uint8Array {
  const copy = packet.slice();
  const total = (copy[2] << 8) | copy[3];
  const sum = foldSum(ipv4PseudoHeaderSum(ip("192.168.0.1"), ip("192.168.0.50"), copy[9], total - 20));
  copy[20 + field] = sum >> 8;
  copy[20 + field + 1] = sum & 0xff;
  return copy;
}

Deno.test("partial checksum: a UDP or TCP packet left to offload is recognised, a complete one is not", () => {
  const udp = udpPacket("192.168.0.1", 67, "192.168.0.50", 68, new TextEncoder().encode("an offer, say"));
  assert.equal(hasUnfinishedChecksum(udp), false, "a complete checksum");
  assert.equal(hasUnfinishedChecksum(leavePartial(udp, 6)), true);

  const tcp = buildSegment({
    src: ip("192.168.0.1"),
    dst: ip("192.168.0.50"),
    srcPort: 40000,
    dstPort: 80,
    flags: "P.",
    seq: 1000,
    ack: 2000,
    payload: 333,
  });
  assert.equal(hasUnfinishedChecksum(tcp), false, "a complete checksum");
  const partialTcp = leavePartial(tcp, 16);
  assert.equal(hasUnfinishedChecksum(partialTcp), true);
  // The same packet once finished (what the device would have done) verifies and is not reported.
  const total = (tcp[2] << 8) | tcp[3];
  assert.equal(
    foldSum(
      sumWords(tcp, 20, total, ipv4PseudoHeaderSum(ip("192.168.0.1"), ip("192.168.0.50"), 6, total - 20)),
    ),
    0xffff,
  );
});

Deno.test("partial checksum: other corruption, fragments, UDP without checksum and junk are not reported", () => {
  const udp = udpPacket("192.168.0.1", 67, "192.168.0.50", 68, new Uint8Array(40).fill(7));
  const corrupt = udp.slice();
  corrupt[30] ^= 0xff; // payload damaged, field intact
  assert.equal(hasUnfinishedChecksum(corrupt), false);
  const fragment = leavePartial(udp, 6);
  fragment[6] |= 0x20; // more fragments
  assert.equal(hasUnfinishedChecksum(fragment), false);
  assert.equal(
    hasUnfinishedChecksum(
      udpPacket("192.168.0.1", 67, "192.168.0.50", 68, new Uint8Array(8), { checksum: false }),
    ),
    false,
  );
  const partial = leavePartial(udp, 6);
  assert.equal(hasUnfinishedChecksum(partial.subarray(0, 25)), false, "truncated below the total length");
  assert.equal(hasUnfinishedChecksum(new Uint8Array(0)), false);
  assert.equal(hasUnfinishedChecksum(new Uint8Array(60).fill(0x45)), false);
  const icmp = partial.slice();
  icmp[9] = 1;
  assert.equal(hasUnfinishedChecksum(icmp), false, "not TCP or UDP");
});

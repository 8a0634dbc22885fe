import assert from "node:assert/strict";
import { Icmpv4Message, Icmpv4Type, writeIcmpv4Echo, writeIcmpv4Unreachable } from "../../lib/wire/icmpv4.ts";
import { UdpDatagram, writeUdpHeader } from "../../lib/wire/udp.ts";
import { foldSum, ipv4PseudoHeaderSum, sumWords } from "../../lib/wire/checksum.ts";

Deno.test("icmp: an echo message round trips through writer and view", () => {
  const buf = new Uint8Array(64);
  const data = new Uint8Array([1, 2, 3, 4, 5]); // odd length on purpose
  const length = writeIcmpv4Echo(buf, 4, Icmpv4Type.ECHO_REQUEST, 0x1234, 0xfffe, data);
  assert.equal(length, 13);
  const icmp = new Icmpv4Message(buf.subarray(4, 4 + length));
  assert.equal(icmp.check(), null);
  assert.equal(icmp.type, 8);
  assert.equal(icmp.code, 0);
  assert.equal(icmp.identifier, 0x1234);
  assert.equal(icmp.sequence, 0xfffe);
  assert.deepEqual(icmp.data(), data);
});

Deno.test("icmp: short messages are truncated and corrupted ones fail the checksum", () => {
  const buf = new Uint8Array(16);
  writeIcmpv4Echo(buf, 0, 8, 1, 1, new Uint8Array(8));
  for (let n = 0; n < 8; n++) assert.equal(new Icmpv4Message(buf.subarray(0, n)).check(), "truncated");
  buf[9] ^= 0x10;
  assert.equal(new Icmpv4Message(buf).check(), "bad-checksum");
});

Deno.test("icmp: destination unreachable quotes the original and carries the next-hop MTU", () => {
  const original = new Uint8Array(28).map((_, i) => i);
  const buf = new Uint8Array(64);
  const length = writeIcmpv4Unreachable(buf, 0, 4, original, 1400);
  const icmp = new Icmpv4Message(buf.subarray(0, length));
  assert.equal(icmp.check(), null);
  assert.equal(icmp.type, 3);
  assert.equal(icmp.code, 4);
  assert.equal(icmp.sequence, 1400); // the low 16 bits of rest-of-header
  assert.deepEqual(icmp.data(), original);
});

Deno.test("udp: a datagram round trips, with its checksum verified against the pseudo-header", () => {
  const src = 0xc0a80001;
  const dst = 0xc0a800c7;
  const data = new TextEncoder().encode("hello, world!");
  const buf = new Uint8Array(8 + data.length);
  buf.set(data, 8);
  writeUdpHeader(buf, 0, src, dst, 5353, 53, data.length);
  const udp = new UdpDatagram(buf);
  assert.equal(udp.check(src, dst), null);
  assert.equal(udp.srcPort, 5353);
  assert.equal(udp.dstPort, 53);
  assert.equal(udp.length, 21);
  assert.deepEqual(udp.data(), data);
  // The same bytes from another address fail: the pseudo-header is covered.
  assert.equal(udp.check(src + 1, dst), "bad-checksum");
});

Deno.test("udp: a checksum computing to zero is sent as 0xffff (RFC 768)", () => {
  // Search a payload whose checksum computes to 0x0000, then check the writer emitted 0xffff.
  const buf = new Uint8Array(10);
  for (let v = 0; v < 0x10000; v++) {
    buf[8] = v >> 8;
    buf[9] = v & 0xff;
    writeUdpHeader(buf, 0, 1, 2, 3, 4, 2);
    const sum = foldSum(sumWords(buf.subarray(0, 6).slice(), 0, 6, ipv4PseudoHeaderSum(1, 2, 17, 10) + v));
    if ((~sum & 0xffff) === 0) {
      assert.equal((buf[6] << 8) | buf[7], 0xffff);
      assert.equal(new UdpDatagram(buf).check(1, 2), null);
      return;
    }
  }
  assert.fail("no payload computes to a zero checksum");
});

Deno.test("udp: lengths shorter than the header or longer than the bytes are refused", () => {
  const buf = new Uint8Array(12);
  writeUdpHeader(buf, 0, 1, 2, 3, 4, 4);
  for (let n = 0; n < 8; n++) assert.equal(new UdpDatagram(buf.subarray(0, n)).check(1, 2), "truncated");
  buf[5] = 7;
  assert.equal(new UdpDatagram(buf).check(1, 2), "bad-length");
  buf[5] = 13;
  assert.equal(new UdpDatagram(buf).check(1, 2), "bad-length");
});

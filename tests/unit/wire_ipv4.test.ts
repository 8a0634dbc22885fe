import assert from "node:assert/strict";
import { emitIpv4Header, IPV4_HEADER_LENGTH, Ipv4Packet, writeIpv4Header } from "../../lib/wire/ipv4.ts";
import { internetChecksum } from "../../lib/wire/checksum.ts";
import {
  broadcastOf,
  formatIpv4,
  formatIpv4Cidr,
  inSubnet,
  parseIpv4,
  parseIpv4Cidr,
  prefixToMask,
} from "../../lib/wire/ipv4_address.ts";

function packet(payloadLength = 8): Uint8Array {
  const bytes = new Uint8Array(IPV4_HEADER_LENGTH + payloadLength);
  writeIpv4Header(bytes, 0, 0x0a000001, 0x0a000002, 17, payloadLength, 64, 0x1234);
  return bytes;
}

function refreshChecksum(bytes: Uint8Array, headerLength = (bytes[0] & 0xf) * 4): void {
  bytes[10] = 0;
  bytes[11] = 0;
  const c = internetChecksum(bytes, 0, headerLength);
  bytes[10] = c >> 8;
  bytes[11] = c & 0xff;
}

Deno.test("ipv4: a written header parses back field by field", () => {
  const bytes = packet(100);
  const ip = new Ipv4Packet(bytes);
  assert.equal(ip.check(), null);
  assert.equal(ip.version, 4);
  assert.equal(ip.headerLength, 20);
  assert.equal(ip.totalLength, 120);
  assert.equal(ip.identification, 0x1234);
  assert.equal(ip.dontFragment, true);
  assert.equal(ip.isFragment, false);
  assert.equal(ip.ttl, 64);
  assert.equal(ip.protocol, 17);
  assert.equal(formatIpv4(ip.src), "10.0.0.1");
  assert.equal(formatIpv4(ip.dst), "10.0.0.2");
  assert.equal(ip.payload().length, 100);
});

Deno.test("ipv4: emitIpv4Header with defaults equals writeIpv4Header", () => {
  const a = new Uint8Array(20);
  const b = new Uint8Array(20);
  emitIpv4Header(a, 0, { src: 1, dst: 2, protocol: 6, payloadLength: 0 });
  writeIpv4Header(b, 0, 1, 2, 6, 0);
  assert.deepEqual(a, b);
});

Deno.test("ipv4: truncated packets are rejected at every length below the header", () => {
  const bytes = packet(0);
  for (let length = 0; length < 20; length++) {
    assert.equal(new Ipv4Packet(bytes.subarray(0, length)).check(), "truncated", `length ${length}`);
  }
});

Deno.test("ipv4: a wrong version is rejected", () => {
  const bytes = packet();
  bytes[0] = 0x65;
  assert.equal(new Ipv4Packet(bytes).check(), "bad-version");
});

Deno.test("ipv4: an IHL below 5 or past the buffer is rejected", () => {
  const bytes = packet();
  bytes[0] = 0x44;
  assert.equal(new Ipv4Packet(bytes).check(), "bad-header-length");
  const short = packet(4);
  short[0] = 0x4f; // 60-byte header in a 24-byte packet
  assert.equal(new Ipv4Packet(short).check(), "truncated");
});

Deno.test("ipv4: total length lying in either direction is rejected", () => {
  const bytes = packet(8);
  bytes[2] = 0;
  bytes[3] = 200; // claims more than present
  refreshChecksum(bytes);
  assert.equal(new Ipv4Packet(bytes).check(), "truncated");
  bytes[3] = 10; // less than the header
  refreshChecksum(bytes);
  assert.equal(new Ipv4Packet(bytes).check(), "bad-total-length");
});

Deno.test("ipv4: link-layer padding after total length is ignored", () => {
  const bytes = new Uint8Array(60);
  writeIpv4Header(bytes, 0, 1, 2, 17, 8);
  const ip = new Ipv4Packet(bytes);
  assert.equal(ip.check(), null);
  assert.equal(ip.payload().length, 8);
});

Deno.test("ipv4: a flipped bit anywhere in the header fails the checksum", () => {
  for (let bit = 0; bit < 160; bit++) {
    const bytes = packet();
    bytes[bit >> 3] ^= 1 << (bit & 7);
    const result = new Ipv4Packet(bytes).check();
    assert.notEqual(result, null, `bit ${bit}`);
  }
});

Deno.test("ipv4: options are skipped by the header length", () => {
  const bytes = new Uint8Array(24 + 4);
  writeIpv4Header(bytes, 0, 1, 2, 17, 8);
  // Rebuild as a 24-byte header holding one NOP option padding (4 x NOP).
  bytes.copyWithin(24, 20, 24);
  bytes[0] = 0x46;
  bytes.fill(1, 20, 24);
  bytes[2] = 0;
  bytes[3] = 28;
  refreshChecksum(bytes, 24);
  const ip = new Ipv4Packet(bytes);
  assert.equal(ip.check(), null);
  assert.equal(ip.headerLength, 24);
  assert.equal(ip.payload().length, 4);
});

Deno.test("ipv4: fragments are recognised by MF or offset", () => {
  const bytes = packet();
  bytes[6] = 0x20; // MF
  assert.equal(new Ipv4Packet(bytes).isFragment, true);
  bytes[6] = 0;
  bytes[7] = 1; // offset 8
  assert.equal(new Ipv4Packet(bytes).fragmentOffset, 8);
  assert.equal(new Ipv4Packet(bytes).isFragment, true);
});

Deno.test("ipv4 address: parse and format round trip, with bad inputs refused", () => {
  for (const text of ["0.0.0.0", "10.0.0.2", "255.255.255.255", "192.168.1.100"]) {
    assert.equal(formatIpv4(parseIpv4(text)!), text);
  }
  for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.0.0.1", "a.b.c.d", "1..2.3", "01234.1.1.1", " 1.2.3.4"]) {
    assert.equal(parseIpv4(bad), null, bad);
  }
  assert.equal(formatIpv4Cidr(parseIpv4Cidr("10.0.0.2/24")!), "10.0.0.2/24");
  for (const bad of ["10.0.0.2", "10.0.0.2/33", "10.0.0.2/", "10.0.0.2/x", "x/24"]) {
    assert.equal(parseIpv4Cidr(bad), null, bad);
  }
});

Deno.test("ipv4 address: masks, subnets and broadcast", () => {
  assert.equal(prefixToMask(0), 0);
  assert.equal(prefixToMask(24), 0xffffff00);
  assert.equal(prefixToMask(32), 0xffffffff);
  const net = parseIpv4Cidr("10.0.0.2/24")!;
  assert.equal(inSubnet(parseIpv4("10.0.0.200")!, net), true);
  assert.equal(inSubnet(parseIpv4("10.0.1.1")!, net), false);
  assert.equal(formatIpv4(broadcastOf(net)), "10.0.0.255");
});

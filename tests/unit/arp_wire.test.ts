/** ARP packet view and writer (RFC 826, Ethernet/IPv4 only). */

import assert from "node:assert/strict";
import { ARP_LENGTH, ArpOperation, ArpPacket, writeArp } from "../../lib/wire/arp.ts";
import { ip } from "../helpers/packets.ts";

Deno.test("arp wire: writer produces the RFC 826 layout and the view reads it back", () => {
  const buf = new Uint8Array(ARP_LENGTH);
  const n = writeArp(buf, 0, ArpOperation.REQUEST, 0x020000000002, ip("10.0.0.2"), 0, ip("10.0.0.1"));
  assert.equal(n, 28);
  // deno-fmt-ignore
  const expected = [
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
    0x02, 0, 0, 0, 0, 2, 10, 0, 0, 2,         // sender MAC, IP
    0, 0, 0, 0, 0, 0, 10, 0, 0, 1,            // target MAC (unknown), IP
  ];
  assert.deepEqual([...buf], expected);
  const view = new ArpPacket(buf);
  assert.equal(view.check(), null);
  assert.equal(view.operation, ArpOperation.REQUEST);
  assert.equal(view.senderMac, 0x020000000002);
  assert.equal(view.senderIp, ip("10.0.0.2"));
  assert.equal(view.targetMac, 0);
  assert.equal(view.targetIp, ip("10.0.0.1"));
});

Deno.test("arp wire: check names each malformation", () => {
  const good = new Uint8Array(ARP_LENGTH);
  writeArp(good, 0, ArpOperation.REPLY, 2, 1, 3, 4);
  const view = new ArpPacket();
  assert.equal(view.wrap(good.subarray(0, 27)).check(), "truncated");
  const cases: Array<[number, number, string]> = [
    [1, 6, "unsupported-hardware"], // hardware type 6 (IEEE 802)
    [4, 8, "unsupported-hardware"], // 8-byte hardware addresses
    [2, 0x86, "unsupported-protocol"], // protocol type 0x86dd
    [5, 16, "unsupported-protocol"], // 16-byte protocol addresses
    [7, 3, "bad-operation"], // RARP request
  ];
  for (const [offset, value, reason] of cases) {
    const bad = good.slice();
    bad[offset] = value;
    assert.equal(view.wrap(bad).check(), reason, `byte ${offset} = ${value}`);
  }
  // Ethernet padding after the 28 bytes is fine.
  const padded = new Uint8Array(46);
  padded.set(good);
  assert.equal(view.wrap(padded).check(), null);
});

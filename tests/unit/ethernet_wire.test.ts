/** Ethernet frame view, header writer and MAC helpers. */

import assert from "node:assert/strict";
import {
  BROADCAST_MAC,
  ETHERNET_HEADER_LENGTH,
  EthernetFrame,
  EtherType,
  formatMac,
  ipv4MulticastMac,
  isLocallyAdministeredMac,
  isMulticastMac,
  parseMac,
  randomLocalMac,
  readMac,
  writeEthernetHeader,
  writeMac,
} from "../../lib/wire/ethernet.ts";

Deno.test("ethernet: MAC parse and format round trip, both separators, rejects malformed text", () => {
  assert.equal(parseMac("02:00:5e:10:00:ff"), 0x02005e1000ff);
  assert.equal(parseMac("02-00-5E-10-00-FF"), 0x02005e1000ff);
  assert.equal(formatMac(0x02005e1000ff), "02:00:5e:10:00:ff");
  assert.equal(formatMac(BROADCAST_MAC), "ff:ff:ff:ff:ff:ff");
  assert.equal(formatMac(parseMac("fe:dc:ba:98:76:54")!), "fe:dc:ba:98:76:54");
  for (const bad of ["", "02:00:5e:10:00", "02:00:5e:10:00:ff:00", "02:00:5e:10:00:fg", "2:00:5e:10:00:ff"]) {
    assert.equal(parseMac(bad), null, bad);
  }
});

Deno.test("ethernet: readMac/writeMac handle the full 48-bit range", () => {
  const bytes = new Uint8Array(8);
  for (const mac of [0, 1, 0xffff_ffff_ffff, 0x8000_0000_0000, 0x0000_ffff_ffff, 0xffff_0000_0000]) {
    writeMac(bytes, 1, mac);
    assert.equal(readMac(bytes, 1), mac);
  }
  writeMac(bytes, 0, 0x0123456789ab);
  assert.deepEqual([...bytes.subarray(0, 6)], [0x01, 0x23, 0x45, 0x67, 0x89, 0xab]);
});

Deno.test("ethernet: random MACs are locally administered unicast even from all-ones randomness", () => {
  const ones = randomLocalMac((b) => b.fill(0xff));
  assert.equal(formatMac(ones), "fe:ff:ff:ff:ff:ff");
  assert.ok(isLocallyAdministeredMac(ones));
  assert.ok(!isMulticastMac(ones));
  const zeros = randomLocalMac((b) => b.fill(0));
  assert.equal(formatMac(zeros), "02:00:00:00:00:00");
  for (let i = 0; i < 50; i++) {
    const mac = randomLocalMac();
    assert.ok(isLocallyAdministeredMac(mac) && !isMulticastMac(mac), formatMac(mac));
  }
  assert.ok(isMulticastMac(BROADCAST_MAC));
  assert.ok(isMulticastMac(0x333300000001));
});

Deno.test("ethernet: IPv4 multicast groups map to 01:00:5e plus the low 23 bits (RFC 1112)", () => {
  assert.equal(formatMac(ipv4MulticastMac(0xe00000fb)), "01:00:5e:00:00:fb"); // 224.0.0.251
  assert.equal(formatMac(ipv4MulticastMac(0xefff_fffa)), "01:00:5e:7f:ff:fa"); // 239.255.255.250
});

Deno.test("ethernet: header writer and view agree; payload follows the header", () => {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + 4);
  writeEthernetHeader(frame, 0, BROADCAST_MAC, 0x020000000001, EtherType.ARP);
  frame.set([1, 2, 3, 4], ETHERNET_HEADER_LENGTH);
  assert.deepEqual(
    [...frame.subarray(0, 14)],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06],
  );
  const view = new EthernetFrame(frame);
  assert.equal(view.check(), null);
  assert.equal(view.dst, BROADCAST_MAC);
  assert.equal(view.src, 0x020000000001);
  assert.equal(view.etherType, EtherType.ARP);
  assert.deepEqual([...view.payload()], [1, 2, 3, 4]);
});

Deno.test("ethernet: check names truncated, VLAN-tagged and 802.3 length-field frames", () => {
  const view = new EthernetFrame();
  assert.equal(view.wrap(new Uint8Array(13)).check(), "truncated");
  const frame = new Uint8Array(60);
  writeEthernetHeader(frame, 0, BROADCAST_MAC, 2, EtherType.VLAN);
  assert.equal(view.wrap(frame).check(), "vlan-tagged");
  writeEthernetHeader(frame, 0, BROADCAST_MAC, 2, EtherType.QINQ);
  assert.equal(view.wrap(frame).check(), "vlan-tagged");
  writeEthernetHeader(frame, 0, BROADCAST_MAC, 2, 46);
  assert.equal(view.wrap(frame).check(), "length-field");
  writeEthernetHeader(frame, 0, BROADCAST_MAC, 2, EtherType.IPV6);
  assert.equal(view.wrap(frame).check(), null);
});

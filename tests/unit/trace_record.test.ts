import assert from "node:assert/strict";
import {
  decodePacket,
  decodeRecord,
  encodeRecord,
  RecordError,
  tcpFlagsText,
} from "../../lib/trace/record.ts";
import { arpRequest, ethernet, icmpEcho, ipv4, ipv6, tcp, udp, v6 } from "../helpers/trace_packets.ts";
import { Prng } from "../../lib/prng.ts";

Deno.test("trace record: encode/decode round trip at an offset", () => {
  const data = ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1000, 2000, [1, 2, 3])));
  const encoded = encodeRecord({
    timestampNs: 123456789012345,
    ifindex: 7,
    direction: "egress",
    wireLength: 1500,
    data,
  });
  const ring = new Uint8Array(encoded.length + 16);
  ring.set(encoded, 8);
  const record = decodeRecord(ring, 8, encoded.length);
  assert.equal(record.timestampNs, 123456789012345);
  assert.equal(record.ifindex, 7);
  assert.equal(record.direction, "egress");
  assert.equal(record.wireLength, 1500);
  assert.equal(record.capturedLength, data.length);
  assert.deepEqual([...record.data], [...data]);
});

// The byte layout against bpf/trace_record.h, as compiled, is checked in trace_layout.test.ts (from BTF).

Deno.test("trace record: malformed records are rejected with RecordError", () => {
  const good = encodeRecord({
    timestampNs: 1,
    ifindex: 1,
    direction: "ingress",
    wireLength: 100,
    data: new Uint8Array(40),
  });
  assert.throws(() => decodeRecord(good.subarray(0, 10)), RecordError);
  assert.throws(() => decodeRecord(good, 0, good.length + 8), RecordError);
  const badVersion = good.slice();
  badVersion[19] = 9;
  assert.throws(() => decodeRecord(badVersion), /version 9/);
  const badDirection = good.slice();
  badDirection[18] = 2;
  assert.throws(() => decodeRecord(badDirection), /direction 2/);
  const tooLong = good.slice();
  new DataView(tooLong.buffer).setUint16(16, 41, true);
  assert.throws(() => decodeRecord(tooLong), /claims 41/);
  const moreThanWire = good.slice();
  new DataView(moreThanWire.buffer).setUint32(12, 20, true);
  assert.throws(() => decodeRecord(moreThanWire), /captured 40 bytes of a 20-byte/);
});

Deno.test("trace decode: UDP over IPv4", () => {
  const p = decodePacket(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(40000, 5555, [104, 105]))));
  assert.equal(p.proto, "UDP");
  assert.equal(p.src, "10.0.0.1");
  assert.equal(p.dst, "10.0.0.2");
  assert.equal(p.sport, 40000);
  assert.equal(p.dport, 5555);
  assert.equal(p.length, 2);
  assert.equal(p.truncated, false);
});

Deno.test("trace decode: TCP flags, seq, ack, payload length, IPv4 options", () => {
  const frame = ethernet(
    0x0800,
    ipv4("10.0.0.2", "10.0.0.1", 6, tcp(80, 43210, 1000, 2000, 0x12, [1, 2, 3, 4]), {
      ipOptions: [1, 1, 1, 1],
    }),
  );
  const p = decodePacket(frame);
  assert.equal(p.proto, "TCP");
  assert.equal(p.tcpFlags, "S.");
  assert.equal(p.seq, 1000);
  assert.equal(p.ack, 2000);
  assert.equal(p.window, 65535);
  assert.equal(p.sport, 80);
  assert.equal(p.dport, 43210);
  assert.equal(p.length, 4);
  const syn = decodePacket(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 5, 0, 0x02))));
  assert.equal(syn.tcpFlags, "S");
  assert.equal(syn.ack, undefined);
  assert.equal(tcpFlagsText(0x18), "P.");
  assert.equal(tcpFlagsText(0x11), "F.");
  assert.equal(tcpFlagsText(0), "none");
});

Deno.test("trace decode: truncated capture keeps lengths from the headers", () => {
  const frame = ethernet(
    0x0800,
    ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 5, 0, 0x02, new Array(100).fill(0))),
  );
  const p = decodePacket(frame.subarray(0, 14 + 20 + 10), frame.length);
  assert.equal(p.proto, "TCP");
  assert.equal(p.sport, 1);
  assert.equal(p.dport, 2);
  assert.equal(p.tcpFlags, undefined);
  assert.equal(p.truncated, true);
  assert.equal(p.length, 120); // IP payload: the TCP header length was not captured
});

Deno.test("trace decode: ICMP echo and ARP", () => {
  const echo = decodePacket(
    ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 1, icmpEcho(8, 77, 3, new Array(56).fill(0)))),
  );
  assert.equal(echo.proto, "ICMP");
  assert.equal(echo.info, "echo request, id 77, seq 3");
  assert.equal(echo.icmpType, 8);
  assert.equal(echo.length, 64);
  const arp = decodePacket(ethernet(0x0806, arpRequest("10.0.0.1", "10.0.0.2")));
  assert.equal(arp.proto, "ARP");
  assert.equal(arp.src, "10.0.0.1");
  assert.equal(arp.dst, "10.0.0.2");
  assert.equal(arp.info, "request who-has 10.0.0.2 tell 10.0.0.1");
  assert.equal(arp.length, 28);
});

Deno.test("trace decode: VLAN tags (802.1ad + 802.1Q)", () => {
  const p = decodePacket(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, [])), [100, 200]));
  assert.deepEqual(p.vlans, [100, 200]);
  assert.equal(p.proto, "UDP");
  assert.equal(p.dport, 2);
});

Deno.test("trace decode: IPv6 with hop-by-hop, destination options and fragment headers", () => {
  const hop = [60, 0, 1, 4, 0, 0, 0, 0]; // next: destination options
  const dest = [44, 0, 1, 4, 0, 0, 0, 0]; // next: fragment
  const fragment = [17, 0, 0, 1, 0, 0, 0, 9]; // offset 0, more fragments; next: UDP
  const p = decodePacket(
    ethernet(0x86dd, ipv6(v6(1), v6(2), 0, [...hop, ...dest, ...fragment, ...udp(53, 5353, [1])])),
  );
  assert.equal(p.proto, "UDP");
  assert.equal(p.src, "2001:db8::1");
  assert.equal(p.dst, "2001:db8::2");
  assert.equal(p.sport, 53);
  assert.equal(p.dport, 5353);
  assert.equal(p.length, 1);
  const later = [17, 0, 0, 0x10, 0, 0, 0, 9]; // offset 2 (×8): not the first fragment
  const q = decodePacket(ethernet(0x86dd, ipv6(v6(1), v6(2), 44, [...later, 1, 2, 3, 4])));
  assert.equal(q.fragment, true);
  assert.equal(q.sport, undefined);
  const icmp6 = decodePacket(ethernet(0x86dd, ipv6(v6(1), v6(2), 58, icmpEcho(128, 5, 6))));
  assert.equal(icmp6.proto, "ICMP6");
  assert.equal(icmp6.info, "echo request, id 5, seq 6");
});

Deno.test("trace decode: malformed frames never throw", () => {
  const samples: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array(5),
    ethernet(0x0800, []),
    ethernet(0x0800, [0x45, 0, 0, 10]),
    ethernet(0x0800, ipv4("1.1.1.1", "2.2.2.2", 6, [], { totalLength: 4 })),
    ethernet(0x0800, [0x4f, ...new Array(19).fill(0xff)]),
    ethernet(0x86dd, ipv6(v6(1), v6(2), 0, [0, 255])),
    ethernet(0x86dd, ipv6(v6(1), v6(2), 0, [0, 255, 0, 0, 0, 0, 0, 0])),
    ethernet(0x0806, [0, 1]),
    ethernet(0x8100, [0]),
    new Uint8Array([...ethernet(0x8100, [0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x08, 0])]),
  ];
  for (const sample of samples) {
    const p = decodePacket(sample, sample.length + 10);
    assert.equal(typeof p.proto, "string");
    assert.ok(p.length >= 0);
  }
  assert.equal(decodePacket(new Uint8Array(5)).truncated, true);
  const badIp = decodePacket(ethernet(0x0800, ipv4("1.1.1.1", "2.2.2.2", 6, [], { totalLength: 4 })));
  assert.equal(badIp.truncated, true);
});

Deno.test("trace decode: random bytes never throw", () => {
  const prng = new Prng(12345);
  const random = () => prng.nextU32() & 0xff;
  // Two frames in three get an IPv4, IPv6 or VLAN EtherType in turn, so that random bytes reach those
  // decoders and not only the Ethernet one; the counts below prove each kind was generated.
  const kinds = [[0x08, 0x00], [0x86, 0xdd], [0x81, 0x00]];
  const decoded = { ipv4: 0, ipv6: 0, vlan: 0 };
  for (let i = 0; i < 2000; i++) {
    const frame = new Uint8Array(random() % 96);
    for (let j = 0; j < frame.length; j++) frame[j] = random();
    if (frame.length >= 14 && i % 3 !== 0) {
      [frame[12], frame[13]] = kinds[Math.floor(i / 3) % kinds.length];
    }
    const packet = decodePacket(frame);
    if (packet.vlans.length > 0) decoded.vlan++;
    else if (packet.etherType === 0x0800) decoded.ipv4++;
    else if (packet.etherType === 0x86dd) decoded.ipv6++;
  }
  assert.ok(decoded.ipv4 > 100 && decoded.ipv6 > 100 && decoded.vlan > 100, JSON.stringify(decoded));
});

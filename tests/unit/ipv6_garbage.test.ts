/** Hostile input: random IPv6 packets and NDP messages never throw out of ingress, and every one is counted. */

import assert from "node:assert/strict";
import { Ipv6Ethernet } from "../../lib/iface/ipv6_ethernet.ts";
import { Ipv6Interface } from "../../lib/iface/ipv6_interface.ts";
import { UdpLayer } from "../../lib/udp/layer.ts";
import { Ipv4Interface } from "../../lib/iface/ipv4_interface.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import { parseIpv6Cidr } from "../../lib/wire/ipv6_address.ts";
import { finishIcmpv6Checksum } from "../../lib/wire/icmpv6.ts";

/** A small deterministic PRNG (xorshift32), so a failure can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

Deno.test("ipv6 garbage: 20,000 random chains and ICMPv6/NDP bodies never throw", () => {
  const random = prng(12345);
  const ipv6 = new Ipv6Interface({ mtu: 1500, addresses: [parseIpv6Cidr("fd00::2/64")!] });
  const udp = new UdpLayer(new Ipv4Interface({ address: parseIpv4Cidr("10.0.0.2/24")!, mtu: 1500 }));
  udp.attachIpv6(ipv6);
  ipv6.register(17, udp);
  udp.bind(7, (d, _now, out) => udp.reply(out, d, d.data));
  let sent = 0;
  const link = new Ipv6Ethernet<null>({ sendPayload: () => sent++ }, { ipv6, mac: 0x020000000001 });
  for (const a of ipv6.addresses) a.state = "preferred";
  const nextHeaders = [0, 6, 17, 43, 44, 58, 59, 60, 50, 132];
  for (let i = 0; i < 20_000; i++) {
    const length = 40 + Math.floor(random() * 200);
    const packet = new Uint8Array(length);
    for (let j = 0; j < length; j++) packet[j] = Math.floor(random() * 256);
    packet[0] = 0x60;
    const payload = random() < 0.9 ? length - 40 : Math.floor(random() * 400);
    packet[4] = payload >> 8;
    packet[5] = payload & 0xff;
    packet[6] = nextHeaders[Math.floor(random() * nextHeaders.length)];
    packet[7] = random() < 0.5 ? 255 : packet[7];
    packet.set(random() < 0.5 ? [0xfe, 0x80] : [0xfd, 0], 8);
    packet.set(
      random() < 0.7
        ? [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        : [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
      24,
    );
    if (packet[6] === 58 && length >= 48 && payload === length - 40) {
      packet[40] = [1, 2, 3, 4, 128, 130, 133, 134, 135, 136, 137, 143][Math.floor(random() * 12)];
      packet[41] = 0;
      finishIcmpv6Checksum(packet, 0, 40, length);
    }
    link.ingress(packet, i, null, 0, random() < 0.3);
    if (i % 100 === 0) link.poll(i, null);
  }
  const counted = ipv6.ipv6.rxPackets + ipv6.ipv6.drops.total + ipv6.ipv6.fragmentsIn;
  assert.ok(counted >= 20_000 * 0.99, `every packet counted (${counted})`);
  assert.ok(ipv6.icmp6.rxPackets > 100, "some ICMPv6 got through the checks");
  assert.ok(link.ndp.drops.total > 0);
  assert.equal(ipv6.ipv6.drops.get("protocol-error"), 0, "no handler threw (the layer would hide it)");
});

/**
 * The steppable core: the whole stack (IPv4, IPv6, UDP, TCP; Ethernet/ARP) driven synchronously by ingress and
 * poll with a virtual clock, packets out through one function, no I/O loop and no device.
 */

import assert from "node:assert/strict";
import { StackCore } from "../../lib/stack/core.ts";
import { TcpEvent } from "../../lib/tcp/connection.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import { EthernetFrame, EtherType } from "../../lib/wire/ethernet.ts";
import { echoRequest, expectIcmp, ip } from "../helpers/packets.ts";
import { type Ipv6Cidr, parseIpv6Cidr } from "../../lib/wire/ipv6_address.ts";
import { echoRequest6, ip6 } from "../helpers/ipv6_packets.ts";

function core(
  address: string,
  out: Uint8Array[],
  medium: "ip" | "ethernet" = "ip",
  now = 0,
  ipv6: { ipv6?: boolean; address6?: Ipv6Cidr } = { ipv6: false },
): StackCore {
  return new StackCore(
    {
      medium,
      mtu: 1500,
      address: parseIpv4Cidr(address)!,
      ...ipv6,
      mac: 0x020000000002,
      tcp: { secret: new Uint8Array(16).fill(1), random: () => 7, timeWaitMs: 100 },
    },
    (packet) => out.push(packet.slice()),
    now,
  );
}

Deno.test("stack core: a ping is answered inside ingress, with no loop, device or clock", () => {
  const out: Uint8Array[] = [];
  const c = core("10.0.0.2/24", out);
  c.ingress(echoRequest("10.0.0.1", "10.0.0.2", 9, 1, new Uint8Array([1, 2, 3])), 5);
  assert.equal(out.length, 1);
  expectIcmp(out[0], { type: 0, dst: "10.0.0.1" });
  assert.equal(c.poll(5), null, "nothing scheduled");
  const stats = c.stats() as { icmp: { echoReplies?: number }; ipv4: { rxPackets: number } };
  assert.equal(stats.ipv4.rxPackets, 1);
});

Deno.test("stack core: on an IP medium IPv6 packets go to the IPv6 layer, or are counted when it is off", () => {
  const out: Uint8Array[] = [];
  const address6 = parseIpv6Cidr("fd00::2/64")!;
  const c = core("10.0.0.2/24", out, "ip", 0, { address6 });
  c.ingress(echoRequest6(ip6("fd00::1"), ip6("fd00::2"), new Uint8Array([7, 8]), 5, 1), 0);
  assert.equal(out.length, 1, "the echo request is answered inside ingress");
  assert.equal(out[0][0] >> 4, 6);
  assert.equal(out[0][40], 129, "an ICMPv6 echo reply");
  const stats = c.stats() as { icmp6: { echoReplies: number } };
  assert.equal(stats.icmp6.echoReplies, 1);
  const off: Uint8Array[] = [];
  const v4only = core("10.0.0.2/24", off, "ip", 0, { ipv6: false });
  v4only.ingress(echoRequest6(ip6("fd00::1"), ip6("fd00::2"), new Uint8Array([7, 8]), 5, 1), 0);
  assert.equal(off.length, 0);
  const offStats = v4only.stats() as { ipv6: { disabled: boolean; drops: Record<string, number> } };
  assert.deepEqual(offStats.ipv6, { disabled: true, drops: { "ipv6-disabled": 1 } });
});

Deno.test("stack core: on Ethernet it announces its address when created, and again at the deadline poll gives", () => {
  const out: Uint8Array[] = [];
  const c = core("10.0.0.2/24", out, "ethernet", 1000);
  assert.equal(out.length, 1, "the first announcement goes out at once");
  assert.equal(new EthernetFrame(out[0]).etherType, EtherType.ARP);
  const deadline = c.poll(1000);
  assert.equal(out.length, 1);
  assert.ok(deadline !== null && deadline > 1000, "the second announcement is scheduled");
  assert.equal(c.poll(deadline! - 1), deadline, "nothing before its deadline");
  assert.equal(out.length, 1);
  c.poll(deadline!);
  assert.equal(out.length, 2);
});

Deno.test("stack core: two cores stepped with a virtual clock connect, recover a lost segment on the RTO and close", () => {
  const toB: Uint8Array[] = [], toA: Uint8Array[] = [];
  const a = core("10.0.0.1/24", toB), b = core("10.0.0.2/24", toA);
  let wakeups = 0;
  a.onWake = () => wakeups++;
  let received = "";
  const listener = b.tcp.listen(80);
  listener.onAcceptable = (l) => {
    const conn = l.accept()!;
    conn.onEvent = (_c, events) => {
      const buffer = new Uint8Array(64);
      let n: number | null;
      while ((n = conn.recv(buffer)) !== null && n > 0) {
        received += new TextDecoder().decode(buffer.subarray(0, n));
      }
      if (n === null || events & TcpEvent.CLOSED) conn.close();
    };
  };
  const client = a.tcp.connect(ip("10.0.0.1"), ip("10.0.0.2"), 80, 0);
  let now = 0;
  let dropNext = false;
  /** Delivers what is in flight (dropping one packet on request), then polls both; returns the next deadline. */
  const step = (): number | null => {
    for (const [queue, to] of [[toB, b], [toA, a]] as const) {
      for (const packet of queue.splice(0)) {
        if (dropNext && to === b && packet.length > 40) {
          dropNext = false;
          continue;
        }
        to.ingress(packet, now);
      }
    }
    const deadlines = [a.poll(now), b.poll(now)].filter((d): d is number => d !== null);
    return deadlines.length === 0 ? null : Math.min(...deadlines);
  };
  for (let i = 0; i < 20 && client.state !== "ESTABLISHED"; i++) step();
  assert.equal(client.state, "ESTABLISHED");
  dropNext = true;
  client.send(new TextEncoder().encode("hello"));
  assert.ok(wakeups > 0, "the application's send asks the driver for a poll");
  let deadline = step();
  assert.equal(received, "", "the segment was lost");
  // Only time makes the retransmission happen: advance the virtual clock to each deadline the core gives.
  for (let i = 0; i < 20 && received === ""; i++) {
    assert.ok(deadline !== null, "a retransmission is scheduled");
    now = deadline!;
    deadline = step();
  }
  assert.equal(received, "hello");
  assert.ok(now >= 200, `retransmitted after an RTO, at ${now} ms`);
  assert.equal((a.stats().tcp as { retransmissions: number }).retransmissions, 1);
  client.close();
  for (let i = 0; i < 50 && (a.tcp.connectionCount > 0 || b.tcp.connectionCount > 0); i++) {
    const next = step();
    if (toA.length === 0 && toB.length === 0 && next !== null) now = next;
  }
  assert.equal(a.tcp.connectionCount + b.tcp.connectionCount, 0, "both sides closed, TIME-WAIT expired");
});

/** TCP under abuse, sans-I/O: RSTs for segments to no connection are rate-limited and counted. */

import assert from "node:assert/strict";
import { TcpLayer } from "../../lib/tcp/layer.ts";
import { emptyIpv4Datagram } from "../../lib/iface/protocol.ts";
import { TcpFlags, TcpSegment } from "../../lib/wire/tcp.ts";
import { Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { tcpPacket } from "../helpers/fuzz/build.ts";
import { CollectingSink } from "../helpers/packets.ts";
import { readLinkCounters } from "../../lib/phy/link_counters.ts";

function deliver(layer: TcpLayer, packet: Uint8Array, now: number, out: CollectingSink): void {
  const ip = new Ipv4Packet(packet);
  const d = emptyIpv4Datagram();
  d.src = ip.src;
  d.dst = ip.dst;
  d.protocol = ip.protocol;
  d.bytes = packet;
  d.payloadOffset = ip.headerLength;
  d.payloadEnd = ip.totalLength;
  layer.ingress(d, now, out);
}

function strayAck(i: number): Uint8Array {
  return tcpPacket(0x0a000100 + (i & 0xff), 0x0a000002, {
    srcPort: 1024 + i,
    dstPort: 4001,
    seq: i * 1000,
    ack: 0x12345678 + i,
    flags: TcpFlags.ACK,
    window: 1000,
  });
}

Deno.test("tcp: RSTs for segments to no connection are rate-limited (burst, then the rate), and counted", () => {
  const layer = new TcpLayer({ resetRateLimit: 100, resetBurst: 20 });
  const out = new CollectingSink();
  for (let i = 0; i < 500; i++) deliver(layer, strayAck(i), 1000, out);
  assert.equal(out.packets.length, 20, "the burst goes out at once");
  assert.equal(layer.stats.resetsOut, 20);
  assert.equal(layer.stats.resetsRateLimited, 480);
  assert.equal(layer.stats.drops["no-socket"], 500, "every stray is still counted as a drop");
  // Each RST is the exact answer to its segment (RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>).
  const first = new Ipv4Packet(out.packets[0]);
  const rst = new TcpSegment().wrap(out.packets[0], first.headerLength, first.totalLength);
  assert.equal(rst.flags, TcpFlags.RST);
  assert.equal(rst.seq, 0x12345678);
  out.take();
  // 100 ms later, the bucket has refilled by 10.
  for (let i = 0; i < 50; i++) deliver(layer, strayAck(i), 1100, out);
  assert.equal(out.packets.length, 10);
});

Deno.test("tcp: an ACK to a listening port is answered by a rate-limited RST too", () => {
  const layer = new TcpLayer({ resetRateLimit: 10, resetBurst: 5 });
  layer.listen(80);
  const out = new CollectingSink();
  for (let i = 0; i < 30; i++) {
    deliver(
      layer,
      tcpPacket(0x0a000100 + i, 0x0a000002, {
        srcPort: 2000 + i,
        dstPort: 80,
        seq: 1,
        ack: 2,
        flags: TcpFlags.ACK,
        window: 100,
      }),
      5000,
      out,
    );
  }
  assert.equal(out.packets.length, 5);
  assert.equal(layer.stats.drops["listen-bad-segment"], 30);
  assert.equal(layer.stats.resetsRateLimited, 25);
});

Deno.test("link counters: the kernel's per-interface counters are read from /proc/net/dev", () => {
  const text = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  tun0: 1005413   24861    0    7    0     0          0         0  2115684   49196    0 50814    0     0       0          0
`;
  assert.deepEqual(readLinkCounters("tun0", text), {
    rxPackets: 24861,
    rxDropped: 7,
    txPackets: 49196,
    txDropped: 50814,
  });
  assert.equal(readLinkCounters("tun1", text), null);
  assert.ok(readLinkCounters("lo") !== null, "this process's namespace has a loopback");
});

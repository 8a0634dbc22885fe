/**
 * The DHCP client against scripted server replies on a virtual clock: DORA, retransmission backoff, NAK,
 * renewal at T1, rebinding at T2, expiry, a silent server, release, and replies it must ignore.
 */

import assert from "node:assert/strict";
import { DhcpClient, type DhcpLease, type DhcpLossReason } from "../../lib/dhcp/client.ts";
import {
  BootpOp,
  DHCP_FLAG_BROADCAST,
  DHCP_MIN_MESSAGE_LENGTH,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  DhcpOptions,
  DhcpOptionWriter,
  writeDhcpHeader,
} from "../../lib/wire/dhcp.ts";
import type { UdpReceived } from "../../lib/udp/layer.ts";
import { IpProtocol, Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { UDP_HEADER_LENGTH, UdpDatagram } from "../../lib/wire/udp.ts";
import { CollectingSink, ip } from "../helpers/packets.ts";

const MAC = 0x020000000002;
const SERVER = ip("192.168.77.1");
const OFFERED = ip("192.168.77.50");

interface Sent {
  src: number;
  dst: number;
  message: DhcpMessage;
  options: DhcpOptions;
  type: number | null;
  length: number;
}

/** Parses what the client sent: IPv4 → UDP 68→67 → DHCP. */
function parseSent(packet: Uint8Array): Sent {
  const ipv4 = new Ipv4Packet(packet);
  assert.equal(ipv4.check(), null);
  assert.equal(ipv4.protocol, IpProtocol.UDP);
  const udp = new UdpDatagram(ipv4.payload());
  assert.equal(udp.check(ipv4.src, ipv4.dst), null, "valid UDP checksum");
  assert.equal(udp.srcPort, 68);
  assert.equal(udp.dstPort, 67);
  const data = udp.bytes.subarray(UDP_HEADER_LENGTH, udp.length);
  const message = new DhcpMessage(data);
  assert.equal(message.check(), null);
  assert.equal(message.op, BootpOp.REQUEST);
  assert.equal(message.chaddr, MAC);
  const options = new DhcpOptions(message.options());
  assert.equal(options.malformed, false);
  return { src: ipv4.src, dst: ipv4.dst, message, options, type: options.messageType, length: data.length };
}

interface ReplyFields {
  xid: number;
  yiaddr?: number;
  server?: number | null;
  lease?: number | null;
  mask?: number | null;
  router?: number | null;
  dns?: number[];
  t1?: number;
  t2?: number;
  chaddr?: number;
  srcPort?: number;
  op?: number;
  message?: string;
}

/** A server reply as the UDP layer hands it to the client. */
function reply(type: number, f: ReplyFields): UdpReceived {
  const buf = new Uint8Array(600);
  const w = new DhcpOptionWriter(
    buf,
    writeDhcpHeader(buf, 0, {
      op: f.op ?? BootpOp.REPLY,
      xid: f.xid,
      chaddr: f.chaddr ?? MAC,
      yiaddr: type === DhcpMessageType.NAK ? 0 : (f.yiaddr ?? OFFERED),
      flags: DHCP_FLAG_BROADCAST,
    }),
  );
  w.u8(DhcpOption.MESSAGE_TYPE, type);
  if (f.server !== null) w.u32(DhcpOption.SERVER_ID, f.server ?? SERVER);
  if (type !== DhcpMessageType.NAK) {
    if (f.lease !== null) w.u32(DhcpOption.LEASE_TIME, f.lease ?? 120);
    if (f.mask !== null) w.u32(DhcpOption.SUBNET_MASK, f.mask ?? 0xffffff00);
    if (f.router !== null) w.u32(DhcpOption.ROUTER, f.router ?? SERVER);
    if (f.dns) {
      w.bytes(
        DhcpOption.DNS_SERVERS,
        new Uint8Array(f.dns.flatMap((a) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255])),
      );
    }
    if (f.t1 !== undefined) w.u32(DhcpOption.RENEWAL_TIME, f.t1);
    if (f.t2 !== undefined) w.u32(DhcpOption.REBINDING_TIME, f.t2);
  }
  if (f.message) w.bytes(DhcpOption.MESSAGE, new TextEncoder().encode(f.message));
  const length = w.end();
  return {
    src: f.server ?? SERVER,
    srcPort: f.srcPort ?? 67,
    dst: 0xffffffff,
    dstPort: 68,
    data: buf.subarray(0, length),
  };
}

class Harness {
  readonly out = new CollectingSink();
  readonly bound: DhcpLease[] = [];
  readonly renewed: DhcpLease[] = [];
  readonly lost: DhcpLossReason[] = [];
  readonly client: DhcpClient;
  constructor(random: () => number = () => 0.5, maxRequestAttempts?: number) {
    this.client = new DhcpClient({
      mac: MAC,
      random,
      hostname: "netstack",
      maxRequestAttempts,
      onBound: (lease) => this.bound.push(lease),
      onRenewed: (lease) => this.renewed.push(lease),
      onLost: (reason) => this.lost.push(reason),
    });
  }
  poll(now: number): number | null {
    return this.client.poll(now, this.out);
  }
  sent(): Sent[] {
    return this.out.take().map(parseSent);
  }
  deliver(r: UdpReceived, now: number): void {
    this.client.ingress(r, now, this.out);
  }
  /** Runs DORA at t=0 with the given ACK fields and returns the xid. */
  bind(ack: Partial<ReplyFields> = {}): number {
    this.client.start(0);
    this.poll(0);
    const [discover] = this.sent();
    const xid = discover.message.xid;
    this.deliver(reply(DhcpMessageType.OFFER, { xid }), 10);
    this.sent();
    this.deliver(reply(DhcpMessageType.ACK, { xid, ...ack }), 20);
    assert.equal(this.client.state, "bound");
    return xid;
  }
}

Deno.test("dhcp client: full DORA from 0.0.0.0 to broadcast, then bound with the lease reported", () => {
  const h = new Harness();
  assert.equal(h.client.state, "stopped");
  assert.equal(h.poll(0), null, "a stopped client wants no poll");
  h.client.start(0);
  assert.equal(h.poll(0), 4000);
  const [discover] = h.sent();
  assert.equal(discover.type, DhcpMessageType.DISCOVER);
  assert.equal(discover.src, 0);
  assert.equal(discover.dst, 0xffffffff);
  assert.equal(
    discover.message.flags,
    DHCP_FLAG_BROADCAST,
    "BROADCAST flag: replies must reach a client with no address",
  );
  assert.equal(discover.message.ciaddr, 0);
  assert.ok(discover.length >= DHCP_MIN_MESSAGE_LENGTH);
  assert.deepEqual([...discover.options.get(DhcpOption.CLIENT_ID)!], [1, 2, 0, 0, 0, 0, 2]);
  assert.deepEqual([...discover.options.get(DhcpOption.PARAMETER_REQUEST_LIST)!], [1, 3, 6, 51, 54, 58, 59]);
  assert.equal(discover.options.hostname, "netstack");
  assert.equal(h.client.state, "selecting");

  const xid = discover.message.xid;
  h.deliver(reply(DhcpMessageType.OFFER, { xid }), 100);
  const [request] = h.sent();
  assert.equal(request.type, DhcpMessageType.REQUEST);
  assert.equal(request.message.xid, xid);
  assert.equal(request.src, 0);
  assert.equal(request.dst, 0xffffffff);
  assert.equal(request.message.ciaddr, 0);
  assert.equal(request.options.requestedAddress, OFFERED, "option 50 names the offered address");
  assert.equal(request.options.serverId, SERVER, "option 54 names the chosen server");
  assert.equal(h.client.state, "requesting");

  h.deliver(reply(DhcpMessageType.ACK, { xid, dns: [ip("192.168.77.53")] }), 150);
  assert.equal(h.client.state, "bound");
  assert.equal(h.bound.length, 1);
  const lease = h.bound[0];
  assert.deepEqual(
    { ...lease },
    {
      address: OFFERED,
      prefixLength: 24,
      router: SERVER,
      dns: [ip("192.168.77.53")],
      leaseSeconds: 120,
      renewalSeconds: 60,
      rebindingSeconds: 105,
      server: SERVER,
      startedAt: 100,
    },
  );
  assert.equal(h.poll(200), 100 + 60_000, "next deadline is T1, counted from when the REQUEST was sent");
  assert.equal(h.out.packets.length, 0);
});

Deno.test("dhcp client: DISCOVER retransmission backs off 4, 8, 16, 32, 64, 64 s with ±1 s jitter", () => {
  for (const [random, jitter] of [[0.5, 0], [0, -1000], [0.999, 998]] as const) {
    const h = new Harness(() => random);
    h.client.start(0);
    let now = 0;
    const gaps: number[] = [];
    let deadline = h.poll(now)!;
    for (let i = 0; i < 6; i++) {
      gaps.push(deadline - now);
      assert.equal(h.poll(deadline - 1), deadline, "nothing before the deadline");
      now = deadline;
      deadline = h.poll(now)!;
    }
    const expected = [4000, 8000, 16000, 32000, 64000, 64000].map((g) => g + jitter);
    assert.deepEqual(gaps.map(Math.round), expected, `random ${random}`);
    const discovers = h.sent();
    assert.equal(discovers.length, 7);
    assert.ok(discovers.every((d) => d.type === DhcpMessageType.DISCOVER));
    assert.equal(new Set(discovers.map((d) => d.message.xid)).size, 1, "retransmissions keep the xid");
    // secs counts whole seconds since the exchange began (RFC 2131 §2).
    let elapsed = 0;
    const secs = [0, ...gaps.map((g) => Math.floor((elapsed += g) / 1000))];
    assert.deepEqual(discovers.map((d) => d.message.secs), secs);
  }
});

Deno.test("dhcp client: server gone while requesting: 4 REQUESTs, then back to INIT with a new DISCOVER", () => {
  const h = new Harness();
  h.client.start(0);
  h.poll(0);
  const xid = h.sent()[0].message.xid;
  h.deliver(reply(DhcpMessageType.OFFER, { xid }), 0);
  let now = 0;
  let deadline = h.poll(now)!;
  const times = [0];
  while (h.client.state === "requesting") {
    now = deadline;
    deadline = h.poll(now)!;
    if (h.client.state === "requesting") times.push(now);
  }
  assert.deepEqual(times, [0, 4000, 12000, 28000]);
  const sent = h.sent();
  assert.deepEqual(sent.map((s) => s.type), [3, 3, 3, 3, DhcpMessageType.DISCOVER]);
  assert.equal(now, 60_000, "given up 32 s after the fourth REQUEST");
  assert.equal(h.client.state, "selecting");
  assert.notEqual(sent[4].message.xid, xid, "a new transaction");
  assert.equal(h.client.stats().drops["request-timeout"], 1);
});

Deno.test("dhcp client: NAK while requesting restarts at INIT; a second NAK waits 10 s first", () => {
  const h = new Harness();
  h.client.start(0);
  h.poll(0);
  let xid = h.sent()[0].message.xid;
  h.deliver(reply(DhcpMessageType.OFFER, { xid }), 10);
  h.sent();
  h.deliver(reply(DhcpMessageType.NAK, { xid, message: "wrong network" }), 20);
  assert.equal(h.client.state, "init");
  assert.equal(h.poll(20), 4020);
  const [discover] = h.sent();
  assert.equal(discover.type, DhcpMessageType.DISCOVER);
  assert.notEqual(discover.message.xid, xid);
  assert.equal(h.lost.length, 0, "no lease was held, so nothing was lost");

  xid = discover.message.xid;
  h.deliver(reply(DhcpMessageType.OFFER, { xid }), 30);
  h.sent();
  h.deliver(reply(DhcpMessageType.NAK, { xid }), 40);
  assert.equal(h.poll(40), 10_040, "RFC 2131 §3.1.5: wait before restarting again");
  assert.equal(h.out.packets.length, 0);
  h.poll(10_040);
  assert.equal(h.sent()[0].type, DhcpMessageType.DISCOVER);
  assert.equal(h.client.stats().naks, 2);
});

Deno.test("dhcp client: renewal at T1 is a REQUEST unicast to the server from our address", () => {
  const h = new Harness();
  h.bind();
  // REQUEST was sent at t=10: T1 = 10 + 60 s.
  assert.equal(h.poll(60_009), 60_010);
  assert.equal(h.out.packets.length, 0);
  const deadline = h.poll(60_010);
  const [renew] = h.sent();
  assert.equal(h.client.state, "renewing");
  assert.equal(renew.type, DhcpMessageType.REQUEST);
  assert.equal(renew.src, OFFERED);
  assert.equal(renew.dst, SERVER, "RENEWING: unicast to the server");
  assert.equal(renew.message.ciaddr, OFFERED);
  assert.equal(renew.message.flags, 0);
  assert.equal(renew.options.has(DhcpOption.REQUESTED_ADDRESS), false, "no option 50 in RENEWING");
  assert.equal(renew.options.has(DhcpOption.SERVER_ID), false, "no option 54 in RENEWING");
  assert.equal(deadline, 105_010, "retransmit after max(60 s, half the time to T2), at most T2");

  h.deliver(reply(DhcpMessageType.ACK, { xid: renew.message.xid }), 60_050);
  assert.equal(h.client.state, "bound");
  assert.equal(h.renewed.length, 1);
  assert.equal(h.bound.length, 1, "the same address: renewed, not bound again");
  assert.equal(h.poll(60_100), 60_010 + 60_000, "new T1 from the renewal REQUEST");
});

Deno.test("dhcp client: rebinding at T2 broadcasts; any server's ACK keeps the lease", () => {
  const h = new Harness();
  h.bind({ t1: 30, t2: 90, lease: 200 });
  h.poll(30_010);
  assert.equal(h.sent()[0].dst, SERVER);
  assert.equal(h.poll(90_009), 90_010);
  h.poll(90_010);
  const [rebind] = h.sent();
  assert.equal(h.client.state, "rebinding");
  assert.equal(rebind.type, DhcpMessageType.REQUEST);
  assert.equal(rebind.dst, 0xffffffff, "REBINDING: broadcast");
  assert.equal(rebind.src, OFFERED);
  assert.equal(rebind.message.ciaddr, OFFERED);
  const other = ip("192.168.77.2");
  h.deliver(reply(DhcpMessageType.ACK, { xid: rebind.message.xid, server: other, lease: 300 }), 90_020);
  assert.equal(h.client.state, "bound");
  assert.equal(h.client.lease!.server, other);
  assert.equal(h.client.lease!.leaseSeconds, 300);
  assert.equal(h.renewed.length, 1);
});

Deno.test("dhcp client: server gone after binding: renew, rebind, then expiry gives the address up", () => {
  const h = new Harness();
  h.bind();
  const times: number[] = [];
  let now = 0;
  let deadline = h.poll(now);
  while (h.lost.length === 0 && deadline !== null && now < 200_000) {
    now = deadline;
    deadline = h.poll(now);
    for (const s of h.sent()) {
      times.push(now, s.dst === SERVER ? 1 : s.type === DhcpMessageType.DISCOVER ? 2 : 0);
    }
  }
  // T1 at 60.01 s (unicast), T2 at 105.01 s (broadcast), expiry at 120.01 s, then a new DISCOVER at once.
  assert.deepEqual(times, [60_010, 1, 105_010, 0, 120_010, 2]);
  assert.deepEqual(h.lost, ["expired"]);
  assert.equal(h.client.state, "selecting");
  assert.equal(h.client.lease, null);
});

Deno.test("dhcp client: a late poll crosses T1 and T2 at once and goes straight to rebinding", () => {
  const h = new Harness();
  h.bind();
  h.poll(110_000);
  const sent = h.sent();
  assert.deepEqual(sent.map((s) => s.dst), [SERVER, 0xffffffff]);
  assert.equal(h.client.state, "rebinding");
});

Deno.test("dhcp client: NAK while renewing loses the lease and restarts", () => {
  const h = new Harness();
  h.bind();
  h.poll(60_010);
  const [renew] = h.sent();
  h.deliver(reply(DhcpMessageType.NAK, { xid: renew.message.xid }), 60_020);
  assert.deepEqual(h.lost, ["nak"]);
  assert.equal(h.client.lease, null);
  h.poll(60_020);
  assert.equal(h.sent()[0].type, DhcpMessageType.DISCOVER);
});

Deno.test("dhcp client: release sends RELEASE unicast to the server and stops", () => {
  const h = new Harness();
  h.bind();
  h.client.release(1000, h.out);
  const [release] = h.sent();
  assert.equal(release.type, DhcpMessageType.RELEASE);
  assert.equal(release.src, OFFERED);
  assert.equal(release.dst, SERVER);
  assert.equal(release.message.ciaddr, OFFERED);
  assert.equal(release.options.serverId, SERVER);
  assert.equal(h.client.state, "stopped");
  assert.deepEqual(h.lost, ["released"]);
  assert.equal(h.poll(1_000_000), null);
  assert.equal(h.out.packets.length, 0);
});

Deno.test("dhcp client: replies for others, malformed ones and unexpected types are counted and ignored", () => {
  const h = new Harness();
  h.client.start(0);
  h.poll(0);
  const xid = h.sent()[0].message.xid;
  const garbage: UdpReceived = {
    src: SERVER,
    srcPort: 67,
    dst: 0xffffffff,
    dstPort: 68,
    data: new Uint8Array(100),
  };
  const cookieless = reply(DhcpMessageType.OFFER, { xid });
  cookieless.data[236] = 0;
  const badOptions = reply(DhcpMessageType.OFFER, { xid });
  badOptions.data[241] = 200; // the message type option's length runs past the end
  h.deliver(reply(DhcpMessageType.OFFER, { xid: xid + 1 }), 1);
  h.deliver(reply(DhcpMessageType.OFFER, { xid, chaddr: 0x020000000099 }), 1);
  h.deliver(reply(DhcpMessageType.OFFER, { xid, srcPort: 1067 }), 1);
  h.deliver(reply(DhcpMessageType.OFFER, { xid, op: BootpOp.REQUEST }), 1);
  h.deliver(reply(DhcpMessageType.OFFER, { xid, server: null }), 1);
  h.deliver(reply(DhcpMessageType.OFFER, { xid, yiaddr: ip("127.0.0.1") }), 1);
  h.deliver(reply(DhcpMessageType.ACK, { xid }), 1);
  h.deliver(garbage, 1);
  h.deliver(cookieless, 1);
  h.deliver(badOptions, 1);
  assert.equal(h.client.state, "selecting");
  assert.equal(h.out.packets.length, 0);
  assert.deepEqual(h.client.stats().drops, {
    "bad-cookie": 1,
    "bad-offered-address": 1,
    "bad-source-port": 1,
    "malformed-options": 1,
    "not-reply": 1,
    "offer-without-server-id": 1,
    "truncated": 1,
    "unexpected-type-5-in-selecting": 1,
    "wrong-chaddr": 1,
    "wrong-xid": 1,
  });
  // An ACK without a lease time is refused (RFC 2131 table 3), a proper one accepted.
  h.deliver(reply(DhcpMessageType.OFFER, { xid }), 2);
  h.sent();
  h.deliver(reply(DhcpMessageType.ACK, { xid, lease: null }), 3);
  assert.equal(h.client.state, "requesting");
  assert.equal(h.client.stats().drops["ack-without-lease-time"], 1);
  h.deliver(reply(DhcpMessageType.ACK, { xid, server: ip("10.9.9.9") }), 3);
  assert.equal(h.client.stats().drops["other-server"], 1, "REQUESTING: only the chosen server");
  h.deliver(reply(DhcpMessageType.ACK, { xid }), 4);
  assert.equal(h.client.state, "bound");
});

Deno.test("dhcp client: lease details: defaults for T1/T2, classful prefix without a mask, infinite lease", () => {
  const bad = new Harness();
  bad.bind({ t1: 100, t2: 50, lease: 1000, mask: null, router: null });
  const lease = bad.client.lease!;
  assert.equal(lease.renewalSeconds, 500, "T1 > T2 is ignored: defaults 0.5 × lease");
  assert.equal(lease.rebindingSeconds, 875);
  assert.equal(lease.prefixLength, 24, "192.168.x.x without a mask: class C");
  assert.equal(lease.router, null);

  const forever = new Harness();
  forever.bind({ lease: 0xffffffff });
  assert.equal(forever.client.lease!.leaseSeconds, Infinity);
  assert.equal(forever.poll(10 ** 12), null, "an infinite lease is never renewed");
});

Deno.test("dhcp client: a renewal that assigns another address reports a new binding", () => {
  const h = new Harness();
  h.bind();
  h.poll(60_010);
  const [renew] = h.sent();
  h.deliver(reply(DhcpMessageType.ACK, { xid: renew.message.xid, yiaddr: ip("192.168.77.51") }), 60_020);
  assert.equal(h.bound.length, 2);
  assert.equal(h.bound[1].address, ip("192.168.77.51"));
  assert.equal(h.renewed.length, 0);
});

Deno.test("dhcp client: with an address check, binding waits for it; a conflict is declined", () => {
  for (const conflict of [false, true]) {
    const checks: string[] = [];
    const bound: DhcpLease[] = [];
    const out = new CollectingSink();
    const client = new DhcpClient({
      mac: MAC,
      random: () => 0.5,
      addressCheck: {
        start: (address, now) => checks.push(`start ${address} ${now}`),
        inUse: (address) => (checks.push(`verdict ${address}`), conflict),
      },
      onBound: (lease) => bound.push(lease),
    });
    client.start(0);
    client.poll(0, out);
    const xid = parseSent(out.take()[0]).message.xid;
    client.ingress(reply(DhcpMessageType.OFFER, { xid }), 10, out);
    out.take();
    client.ingress(reply(DhcpMessageType.ACK, { xid }), 20, out);
    assert.equal(client.state, "checking");
    assert.deepEqual(checks, [`start ${OFFERED} 20`]);
    assert.equal(client.poll(1019, out), 1020);
    assert.equal(out.packets.length, 0);
    const deadline = client.poll(1020, out);
    assert.deepEqual(checks, [`start ${OFFERED} 20`, `verdict ${OFFERED}`]);
    if (!conflict) {
      assert.equal(client.state, "bound");
      assert.equal(bound.length, 1);
      assert.equal(deadline, 10 + 60_000, "T1 counts from the REQUEST, not from the end of the check");
      assert.equal(out.packets.length, 0);
    } else {
      assert.equal(bound.length, 0);
      const [decline] = out.take().map(parseSent);
      assert.equal(decline.type, DhcpMessageType.DECLINE);
      assert.equal(decline.src, 0);
      assert.equal(decline.dst, 0xffffffff);
      assert.equal(decline.message.ciaddr, 0);
      assert.equal(decline.options.requestedAddress, OFFERED);
      assert.equal(decline.options.serverId, SERVER);
      assert.equal(client.state, "init");
      assert.equal(deadline, 11_020);
      client.poll(11_020, out);
      const [discover] = out.take().map(parseSent);
      assert.equal(discover.type, DhcpMessageType.DISCOVER);
      assert.equal(
        discover.options.has(DhcpOption.REQUESTED_ADDRESS),
        false,
        "the declined address is not asked for again",
      );
    }
  }
});

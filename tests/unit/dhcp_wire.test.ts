/** DHCP message view, options parser (never throws) and writer. */

import assert from "node:assert/strict";
import {
  BootpOp,
  DHCP_FLAG_BROADCAST,
  DHCP_MIN_MESSAGE_LENGTH,
  DHCP_OPTIONS_OFFSET,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  DhcpOptions,
  DhcpOptionWriter,
  writeDhcpHeader,
} from "../../lib/wire/dhcp.ts";
import { ip } from "../helpers/packets.ts";
import { Prng } from "../../lib/prng.ts";

Deno.test("dhcp wire: header writer and view agree; end pads to 300 bytes", () => {
  const buf = new Uint8Array(600).fill(0xee);
  const position = writeDhcpHeader(buf, 10, {
    op: BootpOp.REQUEST,
    xid: 0xdeadbeef,
    chaddr: 0x020000000002,
    secs: 3.7,
    flags: DHCP_FLAG_BROADCAST,
    ciaddr: ip("10.0.0.2"),
  });
  assert.equal(position, 10 + DHCP_OPTIONS_OFFSET);
  const length = new DhcpOptionWriter(buf, position).u8(DhcpOption.MESSAGE_TYPE, DhcpMessageType.REQUEST)
    .u32(DhcpOption.SERVER_ID, ip("10.0.0.1")).end();
  assert.equal(length, DHCP_MIN_MESSAGE_LENGTH);
  const bytes = buf.subarray(10, 10 + length);
  assert.deepEqual([...bytes.subarray(0, 12)], [1, 1, 6, 0, 0xde, 0xad, 0xbe, 0xef, 0, 3, 0x80, 0]);
  assert.deepEqual([...bytes.subarray(236, 240)], [99, 130, 83, 99], "magic cookie");
  assert.ok(bytes.subarray(44, 236).every((b) => b === 0), "chaddr padding, sname and file zeroed");
  const view = new DhcpMessage(bytes);
  assert.equal(view.check(), null);
  assert.equal(view.op, BootpOp.REQUEST);
  assert.equal(view.xid, 0xdeadbeef);
  assert.equal(view.secs, 3);
  assert.equal(view.flags, DHCP_FLAG_BROADCAST);
  assert.equal(view.ciaddr, ip("10.0.0.2"));
  assert.equal(view.yiaddr, 0);
  assert.equal(view.chaddr, 0x020000000002);
  const options = new DhcpOptions(view.options());
  assert.equal(options.messageType, DhcpMessageType.REQUEST);
  assert.equal(options.serverId, ip("10.0.0.1"));
  assert.equal(options.malformed || options.unterminated, false);
  assert.deepEqual(options.codes(), [DhcpOption.MESSAGE_TYPE, DhcpOption.SERVER_ID]);
});

Deno.test("dhcp wire: check names truncated, bad cookie and non-Ethernet hardware", () => {
  const buf = new Uint8Array(300);
  writeDhcpHeader(buf, 0, { op: BootpOp.REPLY, xid: 1, chaddr: 2 });
  const view = new DhcpMessage();
  assert.equal(view.wrap(buf).check(), null);
  assert.equal(view.wrap(buf.subarray(0, 239)).check(), "truncated");
  const cookie = buf.slice();
  cookie[239] = 0;
  assert.equal(view.wrap(cookie).check(), "bad-cookie");
  const hardware = buf.slice();
  hardware[1] = 6;
  assert.equal(view.wrap(hardware).check(), "unsupported-hardware");
});

Deno.test("dhcp wire: options parser reads lists and times, skips pads, concatenates split options", () => {
  // deno-fmt-ignore
  const bytes = new Uint8Array([
    0, 0,                                  // pads
    53, 1, 5,                              // ACK
    1, 4, 255, 255, 255, 0,                // mask
    3, 8, 10, 0, 0, 1, 10, 0, 0, 254,      // two routers
    6, 4, 8, 8, 8, 8,                      // DNS part 1
    51, 4, 0, 0, 0x0e, 0x10,               // 3600 s
    6, 4, 1, 1, 1, 1,                      // DNS part 2 (RFC 3396: concatenated)
    56, 2, 0x6e, 0x6f,                     // "no"
    255, 99, 99,                           // end; what follows is ignored
  ]);
  const o = new DhcpOptions(bytes);
  assert.equal(o.malformed, false);
  assert.equal(o.unterminated, false);
  assert.equal(o.messageType, DhcpMessageType.ACK);
  assert.equal(o.subnetMask, 0xffffff00);
  assert.deepEqual(o.routers, [ip("10.0.0.1"), ip("10.0.0.254")]);
  assert.deepEqual(o.dnsServers, [ip("8.8.8.8"), ip("1.1.1.1")]);
  assert.equal(o.leaseTime, 3600);
  assert.equal(o.message, "no");
  assert.equal(o.serverId, null);
  assert.equal(o.has(99), false);
});

Deno.test("dhcp wire: malformed options are flagged, and typed getters reject wrong lengths", () => {
  const cut = new DhcpOptions(new Uint8Array([53, 1, 2, 51, 4, 0, 0]));
  assert.equal(cut.malformed, true);
  assert.equal(cut.messageType, 2, "what came before the bad option is kept");
  assert.equal(cut.leaseTime, null);
  const lonelyCode = new DhcpOptions(new Uint8Array([53]));
  assert.equal(lonelyCode.malformed, true);
  const unterminated = new DhcpOptions(new Uint8Array([53, 1, 2]));
  assert.equal(unterminated.malformed, false);
  assert.equal(unterminated.unterminated, true);
  const wrongLengths = new DhcpOptions(
    new Uint8Array([53, 2, 1, 2, 1, 3, 255, 255, 0, 3, 5, 1, 2, 3, 4, 5, 54, 0, 255]),
  );
  assert.equal(wrongLengths.messageType, null);
  assert.equal(wrongLengths.subnetMask, null);
  assert.equal(wrongLengths.routers, null);
  assert.equal(wrongLengths.serverId, null);
  assert.equal(new DhcpOptions(new Uint8Array([52, 1, 3, 255])).overloaded, true);
});

Deno.test("dhcp wire: random option bytes never throw", () => {
  const prng = new Prng(99);
  const rand = () => prng.next();
  for (let i = 0; i < 5000; i++) {
    const bytes = new Uint8Array(Math.floor(rand() * 64));
    for (let j = 0; j < bytes.length; j++) {
      bytes[j] = rand() < 0.3 ? [1, 3, 4, 51, 53, 54, 255][j % 7] : rand() * 256;
    }
    const o = new DhcpOptions(bytes);
    void [o.messageType, o.subnetMask, o.routers, o.dnsServers, o.leaseTime, o.serverId, o.renewalTime];
    void [o.rebindingTime, o.requestedAddress, o.message, o.hostname];
  }
});

Deno.test("dhcp wire: the writer refuses options that do not fit", () => {
  const buf = new Uint8Array(DHCP_OPTIONS_OFFSET + 4);
  const w = new DhcpOptionWriter(buf, writeDhcpHeader(buf, 0, { op: 1, xid: 1, chaddr: 1 }));
  assert.throws(() => w.u32(DhcpOption.SERVER_ID, 1), RangeError);
  assert.throws(
    () => new DhcpOptionWriter(new Uint8Array(1000), 240).bytes(12, new Uint8Array(256)),
    RangeError,
  );
});

/** The rtnetlink route request and acknowledgement parsing, byte by byte (no privileges). */

import assert from "node:assert/strict";
import { parseAck, writeDefaultRouteRequest } from "../../lib/phy/rtnetlink.ts";
import { parseIpv4 } from "../../lib/wire/ipv4_address.ts";

Deno.test("rtnetlink: the default route request has the layout of linux/rtnetlink.h", () => {
  const buffer = new Uint8Array(64);
  const length = writeDefaultRouteRequest(buffer, 7, parseIpv4("10.0.0.2")!, 5);
  const view = new DataView(buffer.buffer);
  assert.equal(length, 44);
  assert.equal(view.getUint32(0, true), 44); // nlmsg_len
  assert.equal(view.getUint16(4, true), 24); // RTM_NEWROUTE
  assert.equal(view.getUint16(6, true), 0x1 | 0x4 | 0x200 | 0x400); // REQUEST|ACK|EXCL|CREATE
  assert.equal(view.getUint32(8, true), 7);
  assert.deepEqual([...buffer.subarray(16, 24)], [2, 0, 0, 0, 254, 4, 0, 1]); // AF_INET, /0, main, static
  assert.deepEqual([...buffer.subarray(28, 36)], [8, 0, 5, 0, 10, 0, 0, 2]); // RTA_GATEWAY 10.0.0.2
  assert.deepEqual([...buffer.subarray(36, 44)], [8, 0, 4, 0, 5, 0, 0, 0]); // RTA_OIF 5
});

Deno.test("rtnetlink: acknowledgements are read by sequence; errors come back positive", () => {
  const ack = (sequence: number, error: number) => {
    const bytes = new Uint8Array(36);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 36, true);
    view.setUint16(4, 2, true); // NLMSG_ERROR
    view.setUint32(8, sequence, true);
    view.setInt32(16, error, true);
    return bytes;
  };
  assert.equal(parseAck(ack(3, 0), 36, 3), 0);
  assert.equal(parseAck(ack(3, -17), 36, 3), 17); // EEXIST
  assert.equal(parseAck(ack(2, 0), 36, 3), null);
  assert.equal(parseAck(ack(3, 0), 10, 3), null); // truncated
});

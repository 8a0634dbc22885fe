import assert from "node:assert/strict";
import { parseLinkMessages } from "../../lib/trace/link_watch.ts";

Deno.test("link watch: RTM_NEWLINK messages report interfaces that are up, not loopback", () => {
  const message = (type: number, ifindex: number, flags: number, name: string) => {
    const ifname = new TextEncoder().encode(name + "\0");
    const attr = 4 + ifname.length;
    const size = 32 + ((attr + 3) & ~3);
    const bytes = new Uint8Array(size);
    const v = new DataView(bytes.buffer);
    v.setUint32(0, size, true);
    v.setUint16(4, type, true);
    v.setInt32(20, ifindex, true);
    v.setUint32(24, flags, true);
    v.setUint16(32, attr, true);
    v.setUint16(34, 3, true); // IFLA_IFNAME
    bytes.set(ifname, 36);
    return [...bytes];
  };
  const buffer = Uint8Array.from([
    ...message(16, 7, 0x1003, "veth9"), // RTM_NEWLINK, up
    ...message(16, 8, 0x1002, "down0"), // not up
    ...message(16, 1, 0x9, "lo"), // loopback
    ...message(17, 7, 0x1003, "veth9"), // RTM_DELLINK
    ...message(16, 9, 0x1, "tun0"),
  ]);
  assert.deepEqual(parseLinkMessages(buffer), [{ name: "veth9", ifindex: 7 }, { name: "tun0", ifindex: 9 }]);
  assert.deepEqual(parseLinkMessages(buffer.subarray(0, 20)), []); // cut short: nothing, no throw
});

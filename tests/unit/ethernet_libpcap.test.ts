/** libpcap through FFI without privileges: the library and every declared symbol load; errors are plain. */

import assert from "node:assert/strict";
import { PcapError, PcapHandle, PcapStatus, pcapVersion } from "../../lib/ffi/libpcap.ts";
import { PcapDevice } from "../../lib/phy/pcap_device.ts";

Deno.test("libpcap: the library loads with all declared symbols and reports its version", () => {
  assert.match(pcapVersion(), /^libpcap version \d+\.\d+/);
});

Deno.test("libpcap: opening a missing interface says so in one line", () => {
  assert.throws(
    () => PcapHandle.openLive({ iface: "nosuch-if0" }),
    (error: unknown) =>
      error instanceof PcapError && error.status === PcapStatus.NO_SUCH_DEVICE &&
      error.message === "no interface named nosuch-if0 in this namespace",
  );
  assert.throws(
    () => PcapDevice.open({ iface: "nosuch-if0" }),
    /no interface named nosuch-if0 in this namespace/,
  );
});

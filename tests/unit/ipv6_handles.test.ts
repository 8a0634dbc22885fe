import assert from "node:assert/strict";
import { IPV6_HANDLE_BASE, Ipv6Handles, isIpv6Handle } from "../../lib/iface/ipv6_handles.ts";
import { ip6 } from "../helpers/ipv6_packets.ts";

Deno.test("ipv6 handles: numbers above every IPv4 address, reference-counted, reused after release", () => {
  const handles = new Ipv6Handles();
  const a = handles.acquire(ip6("fd00::1"));
  const b = handles.acquire(ip6("fd00::2"));
  assert.ok(isIpv6Handle(a) && isIpv6Handle(b));
  assert.equal(isIpv6Handle(0xffffffff), false);
  assert.equal(a, IPV6_HANDLE_BASE);
  assert.notEqual(a, b);
  assert.equal(handles.acquire(ip6("fd00::1")), a, "the same address, the same handle");
  const packet = new Uint8Array(40);
  packet.set(ip6("fd00::2"), 24);
  assert.equal(handles.find(packet, 24), b);
  assert.equal(handles.find(ip6("fd00::3")), -1);
  assert.equal(handles.format(a), "fd00::1");
  handles.release(a);
  assert.equal(handles.find(ip6("fd00::1")), a, "one reference is left");
  handles.release(a);
  assert.equal(handles.find(ip6("fd00::1")), -1);
  assert.equal(handles.size, 1);
  assert.throws(() => handles.address(a), RangeError);
  assert.equal(handles.acquire(ip6("fd00::9")), a, "the freed slot is reused");
  handles.release(0x0a000001); // an IPv4 address: ignored
  assert.equal(handles.size, 2);
});

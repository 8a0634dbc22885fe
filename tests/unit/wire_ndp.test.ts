import assert from "node:assert/strict";
import {
  MAX_PREFIXES_PER_RA,
  NaFlag,
  NdpOptions,
  ndpOptionsOffset,
  RouterAdvertisement,
  writeNeighborAdvertisement,
  writeNeighborSolicitation,
  writeRouterAdvertisement,
  writeRouterSolicitation,
} from "../../lib/wire/ndp.ts";
import { MldRecordType, writeMldv2Report } from "../../lib/wire/mld.ts";
import { formatIpv6 } from "../../lib/wire/ipv6_address.ts";
import { ip6 } from "../helpers/ipv6_packets.ts";

const MAC = 0x02_00_00_00_00_01;

Deno.test("ndp: a router advertisement's fields and options parse back", () => {
  const buf = new Uint8Array(200);
  const length = writeRouterAdvertisement(buf, 0, {
    routerLifetime: 1800,
    reachableTime: 30000,
    retransTimer: 1000,
    sourceMac: MAC,
    mtu: 1400,
    prefixes: [{
      prefix: ip6("2001:db8:1::"),
      prefixLength: 64,
      onLink: true,
      autonomous: true,
      validLifetime: 86400,
      preferredLifetime: 14400,
    }],
  });
  const m = buf.subarray(0, length);
  assert.equal(RouterAdvertisement.routerLifetime(m), 1800);
  assert.equal(RouterAdvertisement.reachableTime(m), 30000);
  assert.equal(RouterAdvertisement.retransTimer(m), 1000);
  const options = new NdpOptions();
  assert.equal(options.parse(m, ndpOptionsOffset(134), length), null);
  assert.equal(options.sourceMac, MAC);
  assert.equal(options.mtu, 1400);
  assert.equal(options.prefixes.length, 1);
  const p = options.prefixes[0];
  assert.equal(formatIpv6(p.prefix), "2001:db8:1::");
  assert.deepEqual([p.prefixLength, p.onLink, p.autonomous, p.validLifetime, p.preferredLifetime], [
    64,
    true,
    true,
    86400,
    14400,
  ]);
});

Deno.test("ndp: malformed option lists are refused (zero length, truncated, wrong size)", () => {
  const options = new NdpOptions();
  assert.equal(options.parse(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]), 0, 8), "zero-length-option");
  assert.equal(options.parse(new Uint8Array([1, 2, 0, 0, 0, 0, 0, 0]), 0, 8), "truncated-option");
  assert.equal(options.parse(new Uint8Array([1]), 0, 1), "truncated-option");
  assert.equal(
    options.parse(new Uint8Array(16).fill(0).map((_, i) => (i === 0 ? 1 : i === 1 ? 2 : 0)), 0, 16),
    "bad-option",
  );
  // An unknown option (RDNSS, 25) is skipped.
  assert.equal(options.parse(new Uint8Array([25, 1, 0, 0, 0, 0, 0, 0]), 0, 8), null);
});

Deno.test("ndp: prefix options beyond the bound are counted, not kept", () => {
  const buf = new Uint8Array(16 + 32 * (MAX_PREFIXES_PER_RA + 3));
  const prefixes = Array.from({ length: MAX_PREFIXES_PER_RA + 3 }, (_, i) => ({
    prefix: ip6(`2001:db8:${i}::`),
    prefixLength: 64,
    onLink: true,
    autonomous: true,
    validLifetime: 100,
    preferredLifetime: 50,
  }));
  const length = writeRouterAdvertisement(buf, 0, { routerLifetime: 0, prefixes });
  const options = new NdpOptions();
  assert.equal(options.parse(buf, 16, length), null);
  assert.equal(options.prefixes.length, MAX_PREFIXES_PER_RA);
  assert.equal(options.prefixesIgnored, 3);
});

Deno.test("ndp: solicitations and advertisements carry target and link-layer options", () => {
  const buf = new Uint8Array(64);
  const options = new NdpOptions();
  let length = writeNeighborSolicitation(buf, 0, ip6("fd00::1"), MAC);
  assert.equal(length, 32);
  assert.equal(formatIpv6(buf, 8), "fd00::1");
  assert.equal(options.parse(buf, 24, length), null);
  assert.equal(options.sourceMac, MAC);
  assert.equal(
    writeNeighborSolicitation(buf, 0, ip6("fd00::1"), -1),
    24,
    "DAD probes carry no source option",
  );
  length = writeNeighborAdvertisement(buf, 0, ip6("fd00::2"), NaFlag.SOLICITED | NaFlag.OVERRIDE, MAC);
  assert.equal(buf[4], 0x60);
  assert.equal(options.parse(buf, 24, length), null);
  assert.equal(options.targetMac, MAC);
  assert.equal(writeRouterSolicitation(buf, 0, MAC), 16);
});

Deno.test("mld: a version 2 report holds one record per group", () => {
  const buf = new Uint8Array(100);
  const length = writeMldv2Report(
    buf,
    0,
    [ip6("ff02::1:ff00:2"), ip6("ff02::1:ff00:3")],
    MldRecordType.CHANGE_TO_EXCLUDE,
  );
  assert.equal(length, 8 + 2 * 20);
  assert.equal(buf[0], 143);
  assert.equal((buf[6] << 8) | buf[7], 2);
  assert.equal(buf[8], 4);
  assert.equal(formatIpv6(buf, 12), "ff02::1:ff00:2");
  assert.equal(formatIpv6(buf, 32), "ff02::1:ff00:3");
});

/** What the command line reads from the host: routes (subnet overlap), /etc/hosts; and its error wording. */

import assert from "node:assert/strict";
import { conflictingRoute, parseProcRoutes, subnetOverlap } from "../../lib/cli/subnet_overlap.ts";
import { isHostName, lookupHostsFile, resolveIpv4 } from "../../lib/cli/resolve.ts";
import { parseTraceArguments } from "../../lib/cli/trace_cmd.ts";
import { UsageError } from "../../lib/cli/errors.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";

/** /proc/net/route as Linux writes it (x86: addresses as little-endian hex words). */
const ROUTES = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
tun0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
down0\t0000010A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;

const cidr = (text: string) => parseIpv4Cidr(text)!;

Deno.test("overlap: /proc/net/route is parsed; routes that are down are left out", () => {
  const routes = parseProcRoutes(ROUTES);
  assert.deepEqual(routes.map((r) => `${r.iface} ${r.destination.toString(16)}/${r.prefixLength}`), [
    "eth0 0/0",
    "eth0 c0000200/24",
    "tun0 a000000/24",
  ]);
});

Deno.test("overlap: a second stack on the subnet another interface routes is refused, naming it", () => {
  const routes = parseProcRoutes(ROUTES);
  const message = subnetOverlap(routes, "tun1", cidr("10.0.0.2/24"), cidr("10.0.0.1/24"));
  assert.equal(
    message,
    "10.0.0.2 is already routed through tun0 (10.0.0.0/24), so the host would send the stack's traffic " +
      "there; choose a free subnet with --addr and --host-addr (e.g. --addr 10.0.1.2/24 --host-addr 10.0.1.1/24)",
  );
  // The same device (a restart, or a busy device reported elsewhere), a free subnet, the default route and
  // a less specific route (the new /24 wins by longest prefix) are no conflict.
  assert.equal(subnetOverlap(routes, "tun0", cidr("10.0.0.2/24"), cidr("10.0.0.1/24")), null);
  assert.equal(subnetOverlap(routes, "tun1", cidr("10.0.1.2/24"), cidr("10.0.1.1/24")), null);
  assert.equal(conflictingRoute(routes, "tun1", cidr("192.0.2.9/25")), null);
  // A more specific route inside our subnet that holds our address does conflict.
  assert.equal(conflictingRoute(routes, "tun1", cidr("10.0.0.2/20"))?.iface, "tun0");
  assert.match(subnetOverlap(routes, "tun1", cidr("192.0.2.9/24"), cidr("192.0.2.8/24"))!, /through eth0/);
});

Deno.test("resolve: /etc/hosts format, names, and addresses as they are", async () => {
  const hosts = "# comment\n127.0.0.1 localhost\n::1 ip6-localhost peer\n10.0.0.1   peer Peer.Local # x\n";
  assert.equal(lookupHostsFile(hosts, "peer"), "10.0.0.1");
  assert.equal(lookupHostsFile(hosts, "PEER.local"), "10.0.0.1");
  assert.equal(lookupHostsFile(hosts, "nobody"), null);
  assert.ok(isHostName("peer.example") && isHostName("a-b"));
  assert.ok(!isHostName("bad_name") && !isHostName("-x") && !isHostName(""));
  assert.equal(await resolveIpv4("10.1.2.3", "/nonexistent"), "10.1.2.3");
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, hosts);
    assert.equal(await resolveIpv4("peer", file), "10.0.0.1");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("cli: trace's mistakes are worded like the rest (lower case, naming the flag)", () => {
  const cases: [string[], RegExp][] = [
    [["-c", "-5"], /^--count must be at least 1, got -5$/],
    [["--count"], /^--count needs a value$/],
    [["--bogus"], /^unknown option '--bogus'$/],
    [["-x"], /^unknown option '-x'$/],
    [["-s", "-1"], /^--snaplen must be between \d+ and \d+, got -1$/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseTraceArguments(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      assert.match(error.message, pattern, args.join(" "));
      return true;
    });
  }
  // Grouped short flags and attached values still work.
  const parsed = parseTraceArguments(["-qc5", "-s64"]);
  assert.equal(parsed.quiet, true);
  assert.equal(parsed.count, 5);
  assert.equal(parsed.filter.snaplen, 64);
});

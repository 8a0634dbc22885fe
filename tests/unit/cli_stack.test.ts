/** `netstack stack` argument parsing, and the program's exit codes for help, version and usage mistakes. */

import assert from "node:assert/strict";
import { parseStackArgs } from "../../lib/cli/stack_cmd.ts";
import { UsageError } from "../../lib/cli/errors.ts";
import { formatIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import { formatIpv6, formatIpv6Cidr } from "../../lib/wire/ipv6_address.ts";
import { VERSION } from "../../lib/version.ts";
import { run } from "../helpers/netns.ts";
import { netstackCommand, REPO } from "../helpers/stack_process.ts";

Deno.test("cli: defaults follow docs/cli.md", () => {
  const config = parseStackArgs([])!;
  assert.equal(config.iface, "tun0");
  assert.equal(formatIpv4Cidr(config.address), "10.0.0.2/24");
  assert.equal(formatIpv4Cidr(config.hostAddress!), "10.0.0.1/24");
  assert.equal(config.mtu, 1500);
  assert.deepEqual(config.services, ["echo", "discard", "chargen", "http"]);
  assert.equal(config.connect, undefined);
  assert.equal(config.impairment, undefined);
  assert.equal(config.logLevel, "info");
  assert.equal(config.capturePath, undefined);
  assert.equal(config.memoryBudget, 256 << 20);
  assert.equal(parseStackArgs(["--mem-budget", "64"])!.memoryBudget, 64 << 20);
  assert.throws(() => parseStackArgs(["--mem-budget", "0"]), /--mem-budget/);
  assert.equal(config.maxConnections, 256);
  assert.equal(parseStackArgs(["--max-connections", "100000"])!.maxConnections, 100_000);
  assert.throws(() => parseStackArgs(["--max-connections", "0"]), /--max-connections/);
});

Deno.test("cli: flags are parsed", () => {
  const config = parseStackArgs([
    "--iface",
    "tun7",
    "--addr",
    "192.168.50.2/30",
    "--no-configure",
    "--mtu",
    "9000",
    "--services",
    "none",
    "--capture",
    "x.pcap",
    "--log-level",
    "debug",
    "--connect",
    "10.0.0.1:19",
    "--impair",
    "loss=0.1,seed=3",
  ])!;
  assert.deepEqual(config.connect, { hostname: "10.0.0.1", port: 19 });
  assert.equal(config.impairment?.loss, 0.1);
  assert.equal(config.impairment?.seed, 3);
  assert.equal(config.iface, "tun7");
  assert.equal(formatIpv4Cidr(config.address), "192.168.50.2/30");
  assert.equal(config.hostAddress, null);
  assert.equal(config.mtu, 9000);
  assert.deepEqual(config.services, []);
  assert.equal(config.capturePath, "x.pcap");
  assert.equal(config.logLevel, "debug");
  assert.equal(parseStackArgs(["--help"]), null);
});

Deno.test("cli: usage mistakes are UsageErrors naming the problem", () => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /^unknown option '--bogus'$/],
    [["--addr", "10.0.0.2"], /--addr needs an IPv4 address with prefix/],
    [["--host-addr", "300.1.1.1/24"], /--host-addr/],
    [["--addr", "10.0.0.1/24"], /must differ/],
    [["--mtu", "abc"], /--mtu needs a whole number/],
    [["--mtu", "67"], /between 68 and 65535/],
    [["--log-level", "loud"], /--log-level must be one of/],
    [["--services", "echo,gopher"], /unknown service 'gopher'/],
    [["--connect", "10.0.0.1"], /--connect needs HOST:PORT/],
    [["--connect", "10.0.0.300:80"], /--connect needs HOST:PORT with an IPv4 address or a host name/],
    [["--connect", "bad_name:80"], /--connect needs HOST:PORT/],
    [["--wait", "3"], /--wait applies to --connect only/],
    [["--connect", "10.0.0.1:80", "-w", "0"], /--wait needs a positive number of seconds/],
    [["--mtu", "-5"], /^--mtu must be between 68 and 65535, got -5$/],
    [["--mtu"], /^--mtu needs a value$/],
    [["--iface", "-v"], /^--iface needs a value, got the option '-v'/],
    [["--help=yes"], /^--help takes no value$/],
    [["-c", "-5"], /^unknown option '-c'$/],
    [["--services", ",,"], /^--services needs a comma list/],
    [["--addr", "0.0.0.0/0"], /^--addr 0\.0\.0\.0\/0 is in 0\.0\.0\.0\/8/],
    [["--addr", "224.0.0.1/24"], /is a multicast address/],
    [["--addr", "10.0.0.255/24"], /is the broadcast address of 10\.0\.0\.255\/24/],
    [["--addr", "10.0.0.0/24"], /is the network address/],
    [["--addr", "127.0.0.2/8"], /is a loopback address/],
    [["--host-addr", "10.0.0.255/24"], /^--host-addr 10\.0\.0\.255\/24 is the broadcast address/],
    [["--host-addr", "10.1.0.1/24"], /^--addr 10\.0\.0\.2 is not in the host side's subnet 10\.1\.0\.0\/24/],
    [["--connect", "10.0.0.1:70000"], /--connect needs HOST:PORT/],
    [["--impair", "loss=5"], /--impair: loss must be a probability/],
    [["--backend", "pcap"], /--backend pcap needs --iface NAME/],
    [["--backend", "pcap", "--iface", "my0", "--host-addr", "10.0.0.1/24"], /apply to tun and tap/],
    [["--backend", "pcap", "--iface", "my0", "--mtu", "9000"], /--mtu applies to tun and tap/],
    [["--promiscuous"], /--promiscuous applies to --backend pcap only/],
    [["--backend", "tap", "--dhcp", "--addr", "10.0.0.2/24"], /--dhcp and --addr exclude each other/],
    [
      ["--backend", "tap", "--gateway", "192.168.1.1"],
      /--gateway 192\.168\.1\.1 is not in the stack's subnet/,
    ],
    [["--backend", "tap", "--gateway", "nope"], /--gateway needs an IPv4 address/],
    [["--backend", "tap", "--mac", "01:00:5e:00:00:01"], /--mac needs a unicast MAC/],
    [["--backend", "tap", "--mac", "zz"], /--mac needs a unicast MAC/],
    [["--backend", "wifi"], /--backend must be tun, tap, packet or pcap/],
    [["--backend", "packet"], /--backend packet needs --iface NAME/],
    [["--backend", "packet", "--iface", "my0", "--no-configure"], /packet opens an interface as it is/],
    [["--backend", "packet", "--iface", "my0", "--mtu", "9000"], /packet uses the interface's MTU/],
    [
      ["--backend", "packet", "--iface", "my0", "--promiscuous"],
      /packet turns promiscuous mode on by itself/,
    ],
    [["--dhcp"], /--dhcp needs an Ethernet backend/],
    [["--gateway", "10.0.0.1"], /--gateway needs an Ethernet backend/],
    [["--mac", "02:00:00:00:00:01"], /--mac needs an Ethernet backend/],
    [["--iface", "a-very-long-interface-name"], /--iface must be an interface name/],
    [["extra"], /^unexpected argument 'extra': this command takes options only$/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseStackArgs(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(" ")}: ${error}`);
      assert.match(error.message, pattern, args.join(" "));
      return true;
    });
  }
});

Deno.test("cli: --connect takes host names and -w like nc, and is quiet unless asked", () => {
  const quiet = parseStackArgs(["--connect", "peer.example:5000", "-w", "2.5"])!;
  assert.deepEqual(quiet.connect, { hostname: "peer.example", port: 5000 });
  assert.equal(quiet.connectTimeoutMs, 2500);
  assert.equal(quiet.logLevel, "warning");
  assert.equal(parseStackArgs(["--connect", "10.0.0.1:1", "-v"])!.logLevel, "info");
  assert.equal(parseStackArgs(["--connect", "10.0.0.1:1", "--log-level", "debug"])!.logLevel, "debug");
  assert.equal(parseStackArgs([])!.logLevel, "info");
});

Deno.test("cli: Ethernet backends take --dhcp, --mac, --gateway and (pcap) --promiscuous", () => {
  const tap = parseStackArgs(["--backend", "tap", "--mac", "02:00:00:00:00:07", "--gateway", "10.0.0.254"])!;
  assert.equal(tap.backend, "tap");
  assert.equal(tap.iface, "tap0");
  assert.equal(tap.mac, 0x020000000007);
  assert.equal(tap.gateway, 0x0a0000fe);
  assert.equal(formatIpv4Cidr(tap.hostAddress!), "10.0.0.1/24");
  const pcap = parseStackArgs(["--backend", "pcap", "--iface", "my0", "--dhcp", "--promiscuous"])!;
  assert.equal(pcap.backend, "pcap");
  assert.equal(pcap.iface, "my0");
  assert.equal(pcap.dhcp, true);
  assert.equal(pcap.promiscuous, true);
  assert.equal(pcap.hostAddress, null);
  const packet = parseStackArgs([
    "--backend",
    "packet",
    "--iface",
    "my0",
    "--dhcp",
    "--mac",
    "02:00:00:00:00:08",
  ])!;
  assert.equal(packet.backend, "packet");
  assert.equal(packet.iface, "my0");
  assert.equal(packet.dhcp, true);
  assert.equal(packet.mac, 0x020000000008);
  assert.equal(packet.promiscuous, false);
  assert.equal(packet.hostAddress, null);
  assert.equal(
    packet.address6,
    null,
    "no default IPv6 address on an attached interface (link-local and SLAAC)",
  );
});

Deno.test("cli: the version matches deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${REPO}deno.json`));
  assert.equal(VERSION, config.version);
  const result = await run(netstackCommand("--version"));
  assert.equal(result.code, 0);
  assert.equal(result.stdout.trim(), `netstack ${VERSION}`);
});

Deno.test("cli: --help on the program and on stack exits 0 with usage on stdout", async () => {
  for (const args of [["--help"], ["stack", "--help"], ["stack", "-h"]]) {
    const result = await run(netstackCommand(...args));
    assert.equal(result.code, 0, args.join(" "));
    assert.match(result.stdout, /^Usage: netstack/);
    assert.equal(result.stderr, "");
  }
});

Deno.test("cli: a usage mistake exits 2 with one line and a hint, no stack trace", async () => {
  for (const args of [["stack", "--bogus"], ["stack", "--mtu", "1"], ["frobnicate"], []]) {
    const result = await run(netstackCommand(...args));
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 2, result.stderr);
    assert.match(lines[0], /^netstack( stack)?: /);
    assert.match(lines[1], /^Try 'netstack( stack)? --help' for more information\.$/);
    assert.equal(result.stdout, "");
  }
});

Deno.test("cli: IPv6 flags — defaults on tun, --addr6/--host-addr6/--gateway6, --no-ipv6, [ADDR]:PORT", () => {
  const defaults = parseStackArgs([])!;
  assert.equal(defaults.ipv6, true);
  assert.equal(formatIpv6Cidr(defaults.address6!), "fd00::2/64");
  assert.equal(formatIpv6Cidr(defaults.hostAddress6!), "fd00::1/64");
  assert.equal(defaults.gateway6, null);
  const set = parseStackArgs([
    "--addr6",
    "fd10::5/80",
    "--host-addr6",
    "fd10::6/80",
    "--connect",
    "[fd10::6]:19",
  ])!;
  assert.equal(formatIpv6Cidr(set.address6!), "fd10::5/80");
  assert.equal(formatIpv6Cidr(set.hostAddress6!), "fd10::6/80");
  assert.deepEqual(set.connect, { hostname: "fd10::6", port: 19 });
  const off = parseStackArgs(["--no-ipv6"])!;
  assert.equal(off.ipv6, false);
  assert.equal(off.address6, null);
  assert.equal(off.hostAddress6, null);
  const pcap = parseStackArgs(["--backend", "pcap", "--iface", "my0", "--gateway6", "fe80::1"])!;
  assert.equal(pcap.address6, null, "pcap: link-local and SLAAC only unless --addr6");
  assert.equal(formatIpv6(pcap.gateway6!), "fe80::1");
  for (
    const args of [
      ["--addr6", "fd00::2"],
      ["--addr6", "ff02::1/64"],
      ["--host-addr6", "fd00::2/64"],
      ["--no-ipv6", "--addr6", "fd00::2/64"],
      ["--gateway6", "fe80::1"],
      ["--connect", "fd00::1:19"],
      ["--connect", "[10.0.0.1]:19"],
    ]
  ) {
    assert.throws(() => parseStackArgs(args), UsageError, args.join(" "));
  }
});

Deno.test("cli: --netns and --forward with their limits", () => {
  const plain = parseStackArgs([])!;
  assert.equal(plain.netns, undefined);
  assert.equal(plain.forward, undefined);
  const config = parseStackArgs([
    "--netns",
    "confined",
    "--forward",
    "--max-flows",
    "8",
    "--udp-timeout",
    "5",
  ])!;
  assert.equal(config.netns, "confined");
  assert.deepEqual(config.forward, { maxFlows: 8, udpIdleMs: 5000 });
  assert.deepEqual(parseStackArgs(["--forward"])!.forward, { maxFlows: 1024, udpIdleMs: 60_000 });
  const mistakes: [string[], RegExp][] = [
    [["--netns", "a/b"], /--netns needs the name of a network namespace/],
    [["--backend", "pcap", "--iface", "eth9", "--netns", "x"], /--netns applies to tun and tap/],
    [["--max-flows", "8"], /apply to --forward/],
    [["--forward", "--max-flows", "0"], /--max-flows must be between 1 and 65536/],
    [["--forward", "--udp-timeout", "x"], /--udp-timeout needs a whole number/],
  ];
  for (const [args, message] of mistakes) {
    assert.throws(
      () => parseStackArgs(args),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
  }
});

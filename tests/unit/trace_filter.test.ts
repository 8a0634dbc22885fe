import assert from "node:assert/strict";
import {
  describeFilter,
  encodeFilter,
  parseHostPrefix,
  parseProtocol,
  TRACE_CONFIG_BYTES,
  TRACE_MAX_SNAPLEN,
} from "../../lib/trace/filter.ts";
import { TRACE_CONFIG_LAYOUT } from "../../lib/trace/layout.ts";
import { parseTraceArguments } from "../../lib/cli/trace_cmd.ts";
import { UsageError } from "../../lib/cli/errors.ts";

Deno.test("trace filter: protocols and aliases", () => {
  assert.equal(parseProtocol("tcp"), "tcp");
  assert.equal(parseProtocol("UDP"), "udp");
  assert.equal(parseProtocol("icmpv6"), "icmp6");
  assert.equal(parseProtocol("ipv4"), "ip");
  assert.equal(parseProtocol("ipv6"), "ip6");
  assert.equal(parseProtocol("arp"), "arp");
  assert.equal(parseProtocol("toString"), null);
  assert.equal(parseProtocol("gre"), null);
});

Deno.test("trace filter: host prefixes are masked", () => {
  const v4 = parseHostPrefix("10.1.2.3/16");
  assert.deepEqual(v4 && { ...v4, address: [...v4.address] }, {
    family: 4,
    address: [10, 1, 0, 0],
    prefixLength: 16,
  });
  assert.equal(parseHostPrefix("10.1.2.3")?.prefixLength, 32);
  const v6 = parseHostPrefix("2001:db8::ff/120");
  assert.equal(v6?.family, 6);
  assert.equal(v6?.address[15], 0);
  assert.equal(v6?.prefixLength, 120);
  assert.equal(parseHostPrefix("10.0.0.1/33"), null);
  assert.equal(parseHostPrefix("2001:db8::/129"), null);
  assert.equal(parseHostPrefix("10.0.0.1/"), null);
  assert.equal(parseHostPrefix("host.example"), null);
});

Deno.test("trace filter: encoding matches struct trace_config", () => {
  // Offsets from lib/trace/layout.ts, which trace_layout.test.ts checks against the object's BTF.
  const at = Object.fromEntries(Object.entries(TRACE_CONFIG_LAYOUT.fields).map(([k, v]) => [k, v.offset]));
  const host = parseHostPrefix("192.168.7.9/20")!;
  const bytes = encodeFilter({ snaplen: 256, proto: "udp", host, port: 5353 });
  assert.equal(bytes.length, TRACE_CONFIG_BYTES);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(at.snaplen, true), 256);
  assert.equal(bytes[at.proto], 2); // TRACE_PROTO_UDP
  assert.equal(bytes[at.host_family], 4); // TRACE_HOST_IPV4
  assert.equal(bytes[at.port_set], 1); // port_set
  assert.equal(view.getUint16(at.port, true), 5353);
  assert.deepEqual([...bytes.subarray(at.host_addr, at.host_addr + 4)], [192, 168, 0, 0]);
  assert.deepEqual([...bytes.subarray(at.host_addr + 4, at.host_addr + 16)], new Array(12).fill(0));
  assert.deepEqual([...bytes.subarray(at.host_mask, at.host_mask + 4)], [255, 255, 240, 0]);
  const none = encodeFilter({ snaplen: 128, proto: "any" });
  assert.deepEqual(
    [...none].filter((_, i) => i < at.snaplen || i >= at.snaplen + 4),
    new Array(TRACE_CONFIG_BYTES - 4).fill(0),
  );
  const raw = encodeFilter({ snaplen: 128, proto: "any" }, true);
  assert.equal(raw[at.link_raw], 1); // frames start at the IP header
  const v6 = encodeFilter({ snaplen: 64, proto: "icmp6", host: parseHostPrefix("fe80::1/64")! });
  assert.equal(v6[at.proto], 4);
  assert.equal(v6[at.host_family], 6);
  assert.deepEqual([...v6.subarray(at.host_addr, at.host_addr + 16)], [0xfe, 0x80, ...new Array(14).fill(0)]);
  assert.deepEqual([...v6.subarray(at.host_mask, at.host_mask + 16)], [
    ...new Array(8).fill(255),
    ...new Array(8).fill(0),
  ]);
  assert.equal(
    describeFilter({ snaplen: 64, proto: "tcp", host: parseHostPrefix("fe80::1/64")!, port: 80 }),
    "proto=tcp host=fe80::/64 port=80 snaplen=64",
  );
});

Deno.test("trace filter: encoding rejects out-of-range values", () => {
  assert.throws(() => encodeFilter({ snaplen: 0, proto: "any" }), RangeError);
  assert.throws(() => encodeFilter({ snaplen: 5000, proto: "any" }), RangeError);
  assert.throws(() => encodeFilter({ snaplen: 64, proto: "any", port: 70000 }), RangeError);
  assert.throws(
    () =>
      encodeFilter({
        snaplen: 64,
        proto: "any",
        host: { family: 6, address: new Uint8Array(4), prefixLength: 8 },
      }),
    RangeError,
  );
});

Deno.test("trace arguments: defaults and repeatable --iface", () => {
  const a = parseTraceArguments([]);
  assert.deepEqual(a.interfaces, ["eth0"]);
  assert.equal(a.mode, "auto");
  assert.equal(a.direction, "both"); // as tcpdump: both halves of every conversation
  assert.equal(a.filter.snaplen, 128);
  assert.equal(a.filter.proto, "any");
  assert.equal(a.quiet, false);
  assert.equal(a.print, false);
  assert.equal(a.utc, false);
  assert.equal(a.any, false);
  const b = parseTraceArguments([
    "-i",
    "veth0",
    "--iface",
    "veth1",
    "--direction",
    "both",
    "--proto",
    "tcp",
    "--host",
    "10.0.0.0/8",
    "--port",
    "443",
    "-s",
    "96",
    "-w",
    "x.pcap",
    "-c",
    "5",
    "--duration",
    "1.5",
    "--stats-interval",
    "2",
    "-q",
    "--json",
  ]);
  assert.deepEqual(b.interfaces, ["veth0", "veth1"]);
  assert.equal(b.direction, "both");
  assert.equal(b.filter.proto, "tcp");
  assert.equal(b.filter.port, 443);
  assert.equal(b.filter.snaplen, 96);
  assert.equal(b.write, "x.pcap");
  assert.equal(b.count, 5);
  assert.equal(b.durationSeconds, 1.5);
  assert.equal(b.statsIntervalSeconds, 2);
  assert.equal(b.quiet, true);
  assert.equal(b.json, true);
});

Deno.test("trace arguments: usage errors", () => {
  for (
    const args of [
      ["--bogus"],
      ["--mode", "turbo"],
      ["--direction", "sideways"],
      ["--proto", "gre"],
      ["--host", "300.1.1.1"],
      ["--port", "65536"],
      ["--snaplen", "-1"],
      ["--snaplen", "262145"],
      ["-C", "1"], // needs -w
      ["-w", "x", "-W", "3"], // needs -C
      ["-w", "x", "-C", "0"],
      ["-w", "-", "-C", "1"], // stdout does not rotate
      ["-w", "-", "--print"], // stdout carries the capture
      ["-w", "-", "--json"],
      ["-c", "0"],
      ["--duration", "-1"],
      ["--duration", "abc"],
      ["-i", ""],
    ]
  ) {
    assert.throws(() => parseTraceArguments(args), UsageError, args.join(" "));
  }
});

Deno.test("trace arguments: tcpdump habits (-s 0, -n/-nn, -w/--print, -C/-W, -i any, --utc)", () => {
  assert.equal(parseTraceArguments(["-s", "0"]).filter.snaplen, TRACE_MAX_SNAPLEN);
  const big = parseTraceArguments(["-s", "65535"]);
  assert.equal(big.filter.snaplen, TRACE_MAX_SNAPLEN);
  assert.equal(big.snaplenClamped, 65535);
  assert.equal(parseTraceArguments(["-s", "96"]).snaplenClamped, undefined);
  for (const args of [["-n"], ["-nn"], ["-n", "-n"], ["-nnq"]]) {
    assert.deepEqual(parseTraceArguments(args).interfaces, ["eth0"], args.join(" "));
  }
  const rotate = parseTraceArguments(["-w", "f.pcap", "--print", "-C", "2", "-W", "5", "--utc"]);
  assert.equal(rotate.write, "f.pcap");
  assert.equal(rotate.print, true);
  assert.equal(rotate.fileSizeBytes, 2_000_000); // millions of bytes, as tcpdump
  assert.equal(rotate.fileCount, 5);
  assert.equal(rotate.utc, true);
  assert.equal(parseTraceArguments(["-w", "-"]).write, "-");
  const any = parseTraceArguments(["-i", "any", "-i", "tun0"]);
  assert.equal(any.any, true);
  assert.deepEqual(any.interfaces, ["tun0"]);
});

Deno.test("trace arguments: trailing words are the expression, joined with spaces, flags anywhere", () => {
  const a = parseTraceArguments(["-i", "vb", "tcp", "port", "80", "-q", "and", "not host 10.0.0.1"]);
  assert.equal(a.expression, "tcp port 80 and not host 10.0.0.1");
  assert.equal(a.quiet, true);
  assert.deepEqual(a.interfaces, ["vb"]);
  assert.equal(parseTraceArguments(["-i", "vb"]).expression, undefined);
  const b = parseTraceArguments(["-d", "--", "ip[8]", "-", "1", ">", "3"]);
  assert.equal(b.dumpBpf, true);
  assert.equal(b.expression, "ip[8] - 1 > 3");
});

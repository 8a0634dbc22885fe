import assert from "node:assert/strict";
import { formatJson, formatLine, formatTime, type PacketEvent } from "../../lib/trace/format.ts";
import { decodePacket } from "../../lib/trace/record.ts";
import { formatIpv6, parseIpv6 } from "../../lib/trace/ipv6_text.ts";
import { arpRequest, ethernet, icmpEcho, ipv4, ipv6, tcp, udp, v6 } from "../helpers/trace_packets.ts";

// 2026-11-24T05:21:01.123456Z
const T = Date.UTC(2026, 10, 24, 5, 21, 1) * 1000 + 123456;

function event(
  frame: Uint8Array,
  direction: "ingress" | "egress" = "ingress",
  captured = frame.length,
): PacketEvent {
  return {
    timestampMicros: T,
    iface: "veth1",
    direction,
    wireLength: frame.length,
    capturedLength: captured,
    packet: decodePacket(frame.subarray(0, captured), frame.length),
  };
}

/** The text line with its time in UTC, whatever the machine's zone. */
const line = (e: PacketEvent) => formatLine(e, true);

Deno.test("trace format: time with microseconds, UTC", () => {
  assert.equal(formatTime(T, true), "05:21:01.123456");
  assert.equal(formatTime(Date.UTC(2026, 0, 1) * 1000 + 7, true), "00:00:00.000007");
  assert.equal(formatTime(Date.UTC(2026, 0, 1) * 1000 + 999_999, true), "00:00:00.999999");
});

Deno.test("trace format: local time by default, as tcpdump (TZ applies)", async () => {
  // V8 reads the zone at start-up, so the check runs in a child with TZ set: +05:30, no DST.
  const module = new URL("../../lib/trace/format.ts", import.meta.url).href;
  const code = `import { formatTime } from "${module}";
console.log(formatTime(${T}), formatTime(${T}, true), formatTime(${T + 1_000_000}));`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { TZ: "Asia/Kolkata" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.equal(
    new TextDecoder().decode(output.stdout).trim(),
    "10:51:01.123456 05:21:01.123456 10:51:02.123456",
  );
});

Deno.test("trace format: TCP line with flags, seq, ack and payload length", () => {
  const frame = ethernet(
    0x0800,
    ipv4("10.0.0.2", "10.0.0.1", 6, tcp(80, 43210, 1000, 2000, 0x18, [1, 2, 3], 501)),
  );
  assert.equal(
    line(event(frame, "egress")),
    "05:21:01.123456 veth1 egress TCP 10.0.0.2.80 > 10.0.0.1.43210: Flags [P.], seq 1000, ack 2000, win 501, length 3",
  );
});

Deno.test("trace format: UDP, ICMP, ARP, IPv6 and unknown EtherType lines", () => {
  assert.equal(
    line(event(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 17, udp(40000, 5555, [104, 105]))))),
    "05:21:01.123456 veth1 ingress UDP 10.0.0.1.40000 > 10.0.0.2.5555: length 2",
  );
  assert.equal(
    line(
      event(ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 1, icmpEcho(8, 9, 1, new Array(56).fill(0))))),
    ),
    "05:21:01.123456 veth1 ingress ICMP 10.0.0.1 > 10.0.0.2: echo request, id 9, seq 1, length 64",
  );
  assert.equal(
    line(event(ethernet(0x0806, arpRequest("10.0.0.1", "10.0.0.2")))),
    "05:21:01.123456 veth1 ingress ARP 10.0.0.1 > 10.0.0.2: request who-has 10.0.0.2 tell 10.0.0.1, length 28",
  );
  assert.equal(
    line(event(ethernet(0x86dd, ipv6(v6(1), v6(2), 17, udp(53, 53, []))))),
    "05:21:01.123456 veth1 ingress UDP 2001:db8::1.53 > 2001:db8::2.53: length 0",
  );
  assert.equal(
    line(event(ethernet(0x88cc, [1, 2, 3]))),
    "05:21:01.123456 veth1 ingress ether 02:00:00:00:00:0a > 02:00:00:00:00:0b: ethertype 0x88cc, length 3",
  );
});

Deno.test("trace format: truncated packets are marked", () => {
  const frame = ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, 3, 4, 0x10)));
  assert.match(
    line(event(frame, "ingress", 14 + 20 + 6)),
    /TCP 10\.0\.0\.1\.1 > 10\.0\.0\.2\.2: length 20 \[truncated\]$/,
  );
});

Deno.test("trace format: JSON carries the line's fields", () => {
  const frame = ethernet(0x0800, ipv4("10.0.0.1", "10.0.0.2", 6, tcp(43210, 80, 7, 0, 0x02)));
  const json = JSON.parse(formatJson(event(frame)));
  assert.equal(json.time, "2026-11-24T05:21:01.123Z");
  assert.equal(json.timestampMicros, T);
  assert.equal(json.iface, "veth1");
  assert.equal(json.direction, "ingress");
  assert.equal(json.proto, "TCP");
  assert.equal(json.src, "10.0.0.1");
  assert.equal(json.dst, "10.0.0.2");
  assert.equal(json.sport, 43210);
  assert.equal(json.dport, 80);
  assert.equal(json.tcpFlags, "S");
  assert.equal(json.seq, 7);
  assert.equal(json.ack, undefined);
  assert.equal(json.length, 0);
  assert.equal(json.wireLength, frame.length);
  assert.equal(json.capturedLength, frame.length);
  assert.equal(json.truncated, undefined);
});

Deno.test("trace format: IPv6 text round trip, RFC 5952", () => {
  for (
    const [input, canonical] of [
      ["2001:db8::1", "2001:db8::1"],
      ["2001:0DB8:0:0:0:0:0:1", "2001:db8::1"],
      ["::", "::"],
      ["::1", "::1"],
      ["fe80::", "fe80::"],
      ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
      ["::ffff:10.0.0.1", "::ffff:a00:1"],
      ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ]
  ) {
    const bytes = parseIpv6(input);
    assert.ok(bytes, input);
    assert.equal(formatIpv6(bytes), canonical, input);
  }
  for (
    const bad of ["", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "g::1", "::1.2.3"]
  ) {
    assert.equal(parseIpv6(bad), null, bad);
  }
});

Deno.test("trace format: raw-IP frames (TUN) decode from the IP header", () => {
  const packet = decodePacket(
    Uint8Array.from(ipv4("10.0.0.1", "10.0.0.2", 1, icmpEcho(8, 7, 1, [1, 2]))),
    30,
    true,
  );
  assert.equal(packet.proto, "ICMP");
  assert.equal(packet.src, "10.0.0.1");
  assert.equal(packet.info, "echo request, id 7, seq 1");
  assert.equal(packet.srcMac, undefined);
  const tcp6 = decodePacket(
    Uint8Array.from(ipv6(v6(1), v6(2), 6, tcp(443, 5000, 1, 0, 0x02, [], 100))),
    60,
    true,
  );
  assert.equal(tcp6.proto, "TCP");
  assert.equal(tcp6.sport, 443);
  assert.equal(tcp6.tcpFlags, "S");
  assert.equal(decodePacket(new Uint8Array([0x10, 0, 0]), 3, true).truncated, true);
});

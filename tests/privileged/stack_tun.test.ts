/**
 * The stack on a real TUN device inside a fresh network namespace, with the Linux kernel as the peer:
 * ping, UDP echo, port unreachable, pcap capture read back with tcpdump, clean shutdown, busy device.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run, withNetns } from "../helpers/netns.ts";
import { netstackCommand, startStack } from "../helpers/stack_process.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";
import { LinkType } from "../../lib/pcap/writer.ts";
import { Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { Icmpv4Message } from "../../lib/wire/icmpv4.ts";

const PY_UDP_ECHO = `
import socket, sys
payload = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.bind(("10.0.0.1", 40007))
s.sendto(payload, ("10.0.0.2", 7))
data, addr = s.recvfrom(65535)
print(data.hex(), addr[0], addr[1])
`;

const PY_UDP_REFUSED = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("10.0.0.2", 9999))
s.send(b"anyone there?")
try:
    s.recv(100)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
`;

privilegedTest("stack on TUN answers ping with the sent payload, and the capture reads back", async () => {
  await withNetns("ns-tun", async (ns) => {
    const capture = await Deno.makeTempFile({ suffix: ".pcap" });
    const stack = await startStack(ns, ["--capture", capture]);
    try {
      const ping = await ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "-p", "c0ffee42", "10.0.0.2"]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      assert.match(ping.stdout, /3 packets transmitted, 3 received/);
      assert.doesNotMatch(ping.stdout, /wrong data byte|DUP!/);
    } finally {
      assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
    }
    // The device was removed at shutdown.
    const link = await ns.run(["ip", "link", "show", "tun0"]);
    assert.notEqual(link.code, 0, "tun0 should be gone after shutdown");

    // tcpdump reads the capture: three requests and three replies.
    const dump = await run(["tcpdump", "-n", "-r", capture, "icmp"]);
    assert.equal(dump.code, 0, dump.stderr);
    assert.equal(dump.stdout.match(/ICMP echo request/g)?.length, 3, dump.stdout);
    assert.equal(dump.stdout.match(/ICMP echo reply/g)?.length, 3, dump.stdout);

    // Each reply carries the identifier, sequence and data of its request exactly.
    const file = parsePcap(await Deno.readFile(capture));
    assert.equal(file.linkType, LinkType.RAW);
    const requests = new Map<number, Uint8Array>();
    let replies = 0;
    for (const record of file.records) {
      const ip = new Ipv4Packet(record.data);
      if (ip.check() !== null || ip.protocol !== 1) continue;
      const icmp = new Icmpv4Message(ip.payload());
      assert.equal(icmp.check(), null);
      const key = (icmp.identifier << 16) | icmp.sequence;
      if (icmp.type === 8) requests.set(key, icmp.data());
      if (icmp.type === 0) {
        assert.deepEqual(icmp.data(), requests.get(key));
        replies++;
      }
    }
    assert.equal(replies, 3);
    await Deno.remove(capture);
  });
});

privilegedTest(
  "stack on TUN echoes UDP byte for byte (fragmented too), answers large pings, refuses closed ports",
  async () => {
    await withNetns("ns-udp", async (ns) => {
      const stack = await startStack(ns);
      try {
        const payload = crypto.getRandomValues(new Uint8Array(1200));
        const hex = Array.from(payload, (b) => b.toString(16).padStart(2, "0")).join("");
        const echo = await ns.exec(["python3", "-c", PY_UDP_ECHO, hex]);
        assert.equal(echo.trim(), `${hex} 10.0.0.2 7`);

        const big = await ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "4000", "10.0.0.2"]);
        assert.equal(big.code, 0, big.stdout + big.stderr);
        assert.match(big.stdout, /2 packets transmitted, 2 received/);
        assert.match(big.stdout, /4008 bytes from 10\.0\.0\.2/);
        // 8000 bytes: the kernel fragments the request, the stack reassembles it and fragments the reply.
        const large = Array.from(
          crypto.getRandomValues(new Uint8Array(8000)),
          (b) => b.toString(16).padStart(2, "0"),
        )
          .join("");
        const largeEcho = await ns.exec(["python3", "-c", PY_UDP_ECHO, large]);
        assert.equal(largeEcho.trim(), `${large} 10.0.0.2 7`);

        const refused = await ns.exec(["python3", "-c", PY_UDP_REFUSED]);
        assert.equal(refused.trim(), "refused");
      } finally {
        assert.equal(await stack.stop("SIGINT"), 0, stack.stderr);
      }
      assert.match(stack.stderr, /"unreachableSent":1/);
    });
  },
);

privilegedTest("a second stack on the same TUN name fails with one line and exit 1", async () => {
  await withNetns("ns-busy", async (ns) => {
    const stack = await startStack(ns, ["--iface", "nsbusy0"]);
    try {
      const second = await ns.run(netstackCommand("stack", "--iface", "nsbusy0"), { timeoutMs: 20_000 });
      assert.equal(second.code, 1, second.stderr);
      const lines = second.stderr.trim().split("\n");
      assert.equal(lines.length, 1, second.stderr);
      assert.match(
        lines[0],
        /^netstack: creating TUN device nsbusy0 failed: EBUSY .*another process holds it/,
      );
    } finally {
      assert.equal(await stack.stop(), 0, stack.stderr);
    }
  });
});

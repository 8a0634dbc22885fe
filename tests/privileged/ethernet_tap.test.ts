/**
 * The Ethernet stack on a TAP device inside a fresh namespace, with the Linux kernel as the peer: ARP both
 * ways (our MAC in the kernel's neighbour table), ping, UDP echo, and replies routed through a gateway.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { startEthernetEntry } from "../helpers/ethernet_process.ts";

const MAC = "02:00:00:00:00:b2";

const PY_UDP_ECHO = `
import socket, sys
payload = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.bind((sys.argv[2], 40007))
s.sendto(payload, ("10.0.0.2", 7))
data, addr = s.recvfrom(65535)
print(data.hex(), addr[0], addr[1])
`;

const PY_UDP_LISTEN = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.bind(("0.0.0.0", 40009))
print("listening", flush=True)
data, addr = s.recvfrom(65535)
print(data.decode(), addr[0], addr[1], flush=True)
`;

privilegedTest(
  "ethernet on TAP: ARP both ways, ping, UDP echo, replies via the gateway; our MAC in the kernel neighbour table",
  async () => {
    await withNetns("ns-tap", async (ns) => {
      // A host listener for the stack's first datagram: the stack has to resolve 10.0.0.1 by ARP itself.
      const listener = new Deno.Command("ip", {
        args: ["netns", "exec", ns.name, "python3", "-c", PY_UDP_LISTEN],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait until it is bound: Python may start slower than the stack on a busy machine.
      let heardText = "";
      const heard = (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of listener.stdout) heardText += decoder.decode(chunk, { stream: true });
        return (await listener.status).code;
      })();
      const listenerError = new Response(listener.stderr).text();
      const bindDeadline = Date.now() + 10_000;
      while (!heardText.includes("listening") && Date.now() < bindDeadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.match(heardText, /listening/, "the host listener did not start");
      const entry = await startEthernetEntry(ns, [
        "--hello",
        "10.0.0.1:40009",
        "--backend",
        "tap",
        "--iface",
        "tap0",
        "--addr",
        "10.0.0.2/24",
        "--host-addr",
        "10.0.0.1/24",
        "--mac",
        MAC,
        "--gateway",
        "10.0.0.1",
      ]);
      let stats: Record<string, Record<string, unknown>>;
      try {
        assert.equal(await heard, 0, heardText + (await listenerError) + entry.process.stderr);
        assert.match(heardText, /^hello from netstack 10\.0\.0\.2 40000$/m);

        const ping = await ns.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.2"]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr + entry.process.stderr);
        assert.match(ping.stdout, /3 packets transmitted, 3 received/);

        const neigh = await ns.exec(["ip", "neigh", "show", "dev", "tap0"]);
        assert.match(neigh, new RegExp(`^10\\.0\\.0\\.2 lladdr ${MAC} `, "m"), neigh);

        const payload = "00ff" + "6e6574737461636b".repeat(50);
        const echo = await ns.run(["python3", "-c", PY_UDP_ECHO, payload, "10.0.0.1"]);
        assert.equal(echo.code, 0, echo.stderr);
        assert.equal(echo.stdout.trim(), `${payload} 10.0.0.2 7`);

        // From an address outside the subnet: the reply goes through the gateway (the host, 10.0.0.1).
        await ns.exec(["ip", "addr", "add", "10.9.0.1/32", "dev", "lo"]);
        const routed = await ns.run(["python3", "-c", PY_UDP_ECHO, "abcd", "10.9.0.1"]);
        assert.equal(routed.code, 0, routed.stderr + entry.process.stderr);
        assert.equal(routed.stdout.trim(), "abcd 10.0.0.2 7");
      } finally {
        assert.equal(await entry.process.stop("SIGTERM"), 0, entry.process.stderr);
        stats = JSON.parse(await entry.stdout);
      }
      assert.equal(stats.icmp.echoReplies, 3);
      assert.ok((stats.arp.requestsSent as number) >= 1, "resolved the host by ARP for the hello datagram");
      assert.ok((stats.arp.announcementsSent as number) >= 1, "gratuitous ARP at start");
      assert.equal((stats.arp.drops as Record<string, number>).unresolved ?? 0, 0);
      assert.equal((stats.ethernet.drops as Record<string, number>)["no-route"] ?? 0, 0);
      const link = await ns.run(["ip", "link", "show", "tap0"]);
      assert.notEqual(link.code, 0, "tap0 is removed at shutdown");
    });
  },
);

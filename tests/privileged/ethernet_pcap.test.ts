/**
 * The "MIP over pcap" scenario with the product (`netstack stack --backend pcap --dhcp`): a veth pair
 * my0/my1, dnsmasq serving DHCP on my1 in one namespace (the "host"), the stack opening my0 through libpcap
 * in another. The lease is obtained (after an ARP probe) and logged, and the stack becomes ready; the host
 * pings the leased address, gets UDP echo back, curls the HTTP service, and a TCP echo round trip matches
 * byte for byte; our MAC lands in the host's neighbour table; the lease is renewed at T1 and released at
 * shutdown. Also: an address another host holds is declined, a missing or down interface is one clear
 * error line, and with the veth's transmit offload left on (no ethtool step) the unfinished checksums are
 * named in one warning line and counted as partial-checksum. Needs dnsmasq, ethtool, python3 and libpcap.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { escapeRegExp, loggedStats, waitUntil, withMipTopology } from "../helpers/mip.ts";
import { kernelPeer, netstackCommand, spawnStack, startStack } from "../helpers/stack_process.ts";

const MAC = "02:00:00:00:00:a1";

const PY_UDP_ECHO = `
import socket, sys
payload = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.bind(("192.168.77.1", 40007))
s.sendto(payload, (sys.argv[2], 7))
data, addr = s.recvfrom(65535)
print(data.hex(), addr[0], addr[1])
`;

privilegedTest(
  "ethernet over pcap: DHCP lease from dnsmasq, ping, UDP and TCP echo, HTTP, renewal, release",
  async () => {
    // The shortest lease dnsmasq allows is 2 minutes; T1 = 3 s (option 58) makes the renewal happen during
    // the test (dnsmasq 2.90 sends a configured T1 only together with T2).
    const dnsmasqArgs = [
      "--dhcp-range=192.168.77.50,192.168.77.60,2m",
      "--dhcp-option=option:T1,3",
      "--dhcp-option=option:T2,100",
    ];
    await withMipTopology({ dnsmasqArgs }, async (t) => {
      const stack = await startStack(t.stackNs, [
        "--backend",
        "pcap",
        "--iface",
        "my0",
        "--dhcp",
        "--mac",
        MAC,
      ]);
      let leased = "";
      try {
        const bound =
          /dhcp: bound address=(192\.168\.77\.\d+)\/24 mask=255\.255\.255\.0 router=192\.168\.77\.1 dns=none lease=120s server=192\.168\.77\.1/
            .exec(stack.stderr);
        assert.ok(bound, `the lease is logged with address, mask, router and lease time:\n${stack.stderr}`);
        leased = bound[1];
        assert.match(
          stack.stderr,
          new RegExp(escapeRegExp(`ready iface=my0 addr=${leased}/24 mac=${MAC} gateway=192.168.77.1 `)),
        );
        assert.match(t.dnsmasqLog(), new RegExp(escapeRegExp(`DHCPACK(my1) ${leased} ${MAC}`)));

        const ping = await t.hostNs.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", leased]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr + stack.stderr);
        assert.match(ping.stdout, /3 packets transmitted, 3 received/);

        const payload = "0102" + "6d6970".repeat(100);
        const echo = await t.hostNs.run(["python3", "-c", PY_UDP_ECHO, payload, leased]);
        assert.equal(echo.code, 0, echo.stderr + stack.stderr);
        assert.equal(echo.stdout.trim(), `${payload} ${leased} 7`);

        const page = await t.hostNs.run(["curl", "-sS", "-m", "5", "-f", `http://${leased}/stats`]);
        assert.equal(page.code, 0, page.stderr + stack.stderr);
        assert.equal(JSON.parse(page.stdout).address, `${leased}/24`);

        const tcp = await kernelPeer(t.hostNs, ["echo", leased, 7, 1 << 20]);
        assert.equal(tcp.matching, 1, JSON.stringify(tcp));

        const neigh = await t.hostNs.exec(["ip", "neigh", "show", "dev", "my1"]);
        assert.match(neigh, new RegExp(`^${escapeRegExp(leased)} lladdr ${MAC} `, "m"), neigh);

        // Renewal at T1: a REQUEST unicast to the server (resolved by ARP), answered by a unicast ACK.
        await stack.waitFor(`dhcp: renewed ${leased}/24 lease=120s`, 10_000);
        const acks = t.dnsmasqLog().match(new RegExp(escapeRegExp(`DHCPACK(my1) ${leased} ${MAC}`), "g"));
        assert.ok((acks?.length ?? 0) >= 2, t.dnsmasqLog());
        const after = await t.hostNs.run(["ping", "-c", "1", "-W", "2", leased]);
        assert.equal(after.code, 0, "still reachable after the renewal");
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      const stats = loggedStats(stack.stderr);
      assert.ok((stats.dhcp.acks as number) >= 2, "the first ACK and the renewal's");
      assert.equal(stats.dhcp.declines, 0);
      assert.equal(stats.arp.probesSent, 2, "the address was probed before use");
      assert.equal(stats.dhcp.releases, 1);
      await waitUntil(
        () => t.dnsmasqLog().includes(`DHCPRELEASE(my1) ${leased} ${MAC}`),
        "dnsmasq to log the release",
        5000,
      );
      assert.equal((stats.udp.drops as Record<string, number>)["bad-checksum"] ?? 0, 0);
      assert.equal((stats.tcp.drops as Record<string, number>)["bad-checksum"], 0);
    });
  },
);

privilegedTest(
  "ethernet over pcap: an address another host holds is probed, declined and not used",
  async () => {
    // dnsmasq is told to hand out 192.168.77.50 (no ping check), which the host itself holds on my1.
    await withMipTopology({
      dnsmasqArgs: [
        "--no-ping",
        "--dhcp-range=192.168.77.50,192.168.77.51,2m",
        `--dhcp-host=${MAC},192.168.77.50`,
      ],
      extraHostAddresses: ["192.168.77.50/24"],
    }, async (t) => {
      const stack = spawnStack(t.stackNs, ["--backend", "pcap", "--iface", "my0", "--dhcp", "--mac", MAC]);
      try {
        await stack.waitFor("192.168.77.50 is already in use on the link; declining it", 15_000);
        await waitUntil(
          () => t.dnsmasqLog().includes(`DHCPDECLINE(my1) 192.168.77.50 ${MAC}`),
          "dnsmasq to log the decline",
          5000,
        );
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      assert.doesNotMatch(stack.stderr, /ready iface=/);
      const stats = loggedStats(stack.stderr);
      assert.equal(stats.dhcp.declines, 1);
      assert.equal(stats.address, "0.0.0.0/0");
    });
  },
);

privilegedTest(
  "ethernet over pcap: a missing or down interface is one clear error line, exit 1",
  async () => {
    await withNetns("ns-pcap-missing", async (ns) => {
      const missing = await ns.run(
        netstackCommand("stack", "--backend", "pcap", "--iface", "nosuch0", "--dhcp"),
      );
      assert.equal(missing.code, 1, missing.stderr);
      assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
      assert.match(missing.stderr, /^netstack: .*no interface named nosuch0 in this namespace/);
      await ns.exec(["ip", "link", "add", "down0", "type", "veth", "peer", "name", "down1"]);
      const down = await ns.run(netstackCommand("stack", "--backend", "pcap", "--iface", "down0", "--dhcp"));
      assert.equal(down.code, 1, down.stderr);
      assert.match(down.stderr, /interface down0 is down; bring it up: ip link set down0 up/);
    });
  },
);

privilegedTest(
  "ethernet over pcap: with the veth's transmit offload on, unfinished checksums are named once in one " +
    "warning line with both remedies and counted as partial-checksum",
  async () => {
    await withMipTopology({
      dnsmasqArgs: ["--dhcp-range=192.168.77.100,192.168.77.110,2m"],
      hostTxOffload: true,
    }, async (t) => {
      const stack = await startStack(t.stackNs, [
        "--backend",
        "pcap",
        "--iface",
        "my0",
        "--addr",
        "192.168.77.50/24",
        "--mac",
        MAC,
      ]);
      try {
        // ARP and ICMP carry no offloaded checksum: ping works; UDP and TCP from the host do not.
        const ping = await t.hostNs.run(["ping", "-c", "1", "-W", "2", "192.168.77.50"]);
        assert.equal(ping.code, 0, ping.stdout + stack.stderr);
        for (let i = 0; i < 3; i++) {
          const echo = await t.hostNs.run([
            "python3",
            "-c",
            PY_UDP_ECHO.replace("settimeout(3)", "settimeout(0.5)"),
            "0102",
            "192.168.77.50",
          ]);
          assert.notEqual(echo.code, 0, "no echo: the datagram was dropped");
        }
        const curl = await t.hostNs.run(["curl", "-sS", "-m", "2", "http://192.168.77.50/"]);
        assert.notEqual(curl.code, 0, "no HTTP: the SYNs were dropped");
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      const warnings = stack.stderr.split("\n").filter((line) => line.includes("unfinished"));
      assert.equal(warnings.length, 1, stack.stderr);
      assert.match(
        warnings[0],
        /WARN.*frames on my0 arrive with unfinished TCP\/UDP checksums: .*transmit offload/,
      );
      assert.match(warnings[0], /--backend packet/);
      assert.match(warnings[0], /ethtool -K <peer> tx off/);
      const stats = loggedStats(stack.stderr);
      const drops = stats.device.drops as Record<string, number>;
      assert.ok(drops["partial-checksum"] >= 4, `3 datagrams and at least one SYN: ${JSON.stringify(drops)}`);
      assert.equal((stats.udp.drops as Record<string, number>)["bad-checksum"] ?? 0, 0, "not counted twice");
      assert.equal((stats.tcp.drops as Record<string, number>)["bad-checksum"], 0);
    });
  },
);

/**
 * The MIP-over-pcap scenario at the ping/UDP level: a veth pair my0/my1, dnsmasq serving DHCP on my1 in
 * one namespace (the "host"), the stack opening my0 through libpcap in another with the DHCP client. The
 * lease is obtained (after an ARP probe) and logged, the host pings the leased address and gets UDP echo
 * back, our MAC lands in the host's neighbour table, the lease is renewed at T1 and released at shutdown.
 * Also: an address another host holds is declined (DHCPDECLINE), and a missing or down interface is one
 * clear error line.
 *
 * my1 has TX checksum offload turned off (`ethtool -K my1 tx off`): a veth hands its peer packets with
 * CHECKSUM_PARTIAL, whose UDP/TCP checksums libpcap delivers unfinished, so the stack would rightly drop
 * them as bad-checksum. Needs dnsmasq, ethtool, python3 and libpcap.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { Netns, runOk } from "../helpers/netns.ts";
import { spawnEthernetEntry, startEthernetEntry } from "../helpers/ethernet_process.ts";

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

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The veth pair my0 (stack side) / my1 (host side: 192.168.77.1/24 plus `extraHostAddresses`), dnsmasq on my1. */
interface MipTopology {
  stackNs: Netns;
  hostNs: Netns;
  /** Everything dnsmasq logged so far. */
  dnsmasqLog(): string;
}

async function withMipTopology(
  options: { dnsmasqArgs: string[]; extraHostAddresses?: string[] },
  fn: (topology: MipTopology) => Promise<void>,
): Promise<void> {
  const stackNs = await Netns.create("ns-mip");
  let hostNs: Netns | null = null;
  let dnsmasq: Deno.ChildProcess | null = null;
  let dnsmasqDone: Promise<void> = Promise.resolve();
  const tmp = await Deno.makeTempDir({ prefix: "netstack-dnsmasq-" });
  try {
    hostNs = await Netns.create("ns-mip-host");
    await runOk([
      "ip",
      "link",
      "add",
      "my0",
      "netns",
      stackNs.name,
      "type",
      "veth",
      "peer",
      "name",
      "my1",
      "netns",
      hostNs.name,
    ]);
    await stackNs.exec(["ip", "link", "set", "my0", "up"]);
    for (const address of ["192.168.77.1/24", ...(options.extraHostAddresses ?? [])]) {
      await hostNs.exec(["ip", "addr", "add", address, "dev", "my1"]);
    }
    await hostNs.exec(["ip", "link", "set", "my1", "up"]);
    await hostNs.exec(["ethtool", "-K", "my1", "tx", "off"]);

    dnsmasq = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        hostNs.name,
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--interface=my1",
        "--bind-interfaces",
        "--except-interface=lo",
        "--port=0",
        "--log-facility=-",
        "--log-dhcp",
        `--dhcp-leasefile=${tmp}/leases`,
        `--pid-file=${tmp}/pid`,
        ...options.dnsmasqArgs,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let log = "";
    const stderr = dnsmasq.stderr;
    dnsmasqDone = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of stderr) log += decoder.decode(chunk, { stream: true });
    })();
    await waitFor(() => log.includes("DHCP, IP range"), "dnsmasq to start");
    await fn({ stackNs, hostNs, dnsmasqLog: () => log });
  } finally {
    if (dnsmasq !== null) {
      // `ip netns exec` execs dnsmasq, so this PID is dnsmasq's own.
      try {
        dnsmasq.kill("SIGTERM");
      } catch { /* gone */ }
      await dnsmasq.status;
      await dnsmasqDone;
    }
    await stackNs.delete();
    await hostNs?.delete();
    await Deno.remove(tmp, { recursive: true });
  }
}

const escape = (text: string) => text.replaceAll(".", "\\.").replaceAll("(", "\\(").replaceAll(")", "\\)");

privilegedTest(
  "ethernet over pcap: DHCP lease from dnsmasq on a veth peer, ping, UDP echo, renewal, release",
  async () => {
    // The shortest lease dnsmasq allows is 2 minutes; T1 = 3 s (option 58) makes the renewal happen during
    // the test. Observed with dnsmasq 2.90: it sends a configured T1 only together with T2, and it sent its
    // default (1 min) when T1 was set to 2 s.
    const dnsmasqArgs = [
      "--dhcp-range=192.168.77.50,192.168.77.60,2m",
      "--dhcp-option=option:T1,3",
      "--dhcp-option=option:T2,100",
    ];
    await withMipTopology({ dnsmasqArgs }, async (t) => {
      const entry = await startEthernetEntry(t.stackNs, [
        "--backend",
        "pcap",
        "--iface",
        "my0",
        "--dhcp",
        "--mac",
        MAC,
      ]);
      let stats: Record<string, Record<string, unknown>>;
      let leased = "";
      try {
        const bound =
          /dhcp: bound address=(192\.168\.77\.\d+)\/24 mask=255\.255\.255\.0 router=192\.168\.77\.1 dns=none lease=120s server=192\.168\.77\.1/
            .exec(entry.process.stderr);
        assert.ok(
          bound,
          `the lease is logged with address, mask, router and lease time:\n${entry.process.stderr}`,
        );
        leased = bound[1];
        assert.match(entry.process.stderr, new RegExp(escape(`ready iface=my0 addr=${leased}/24`)));
        assert.match(t.dnsmasqLog(), new RegExp(escape(`DHCPACK(my1) ${leased} ${MAC}`)));

        const ping = await t.hostNs.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", leased]);
        assert.equal(ping.code, 0, ping.stdout + ping.stderr + entry.process.stderr);
        assert.match(ping.stdout, /3 packets transmitted, 3 received/);

        const payload = "0102" + "6d6970".repeat(100);
        const echo = await t.hostNs.run(["python3", "-c", PY_UDP_ECHO, payload, leased]);
        assert.equal(echo.code, 0, echo.stderr + entry.process.stderr);
        assert.equal(echo.stdout.trim(), `${payload} ${leased} 7`);

        const neigh = await t.hostNs.exec(["ip", "neigh", "show", "dev", "my1"]);
        assert.match(neigh, new RegExp(`^${escape(leased)} lladdr ${MAC} `, "m"), neigh);

        // Renewal at T1: a REQUEST unicast to the server (resolved by ARP), answered by a unicast ACK.
        await entry.process.waitFor(`dhcp: renewed ${leased}/24 lease=120s`, 10_000);
        const acks = t.dnsmasqLog().match(new RegExp(escape(`DHCPACK(my1) ${leased} ${MAC}`), "g"));
        assert.equal(acks?.length, 2, t.dnsmasqLog());
        const after = await t.hostNs.run(["ping", "-c", "1", "-W", "2", leased]);
        assert.equal(after.code, 0, "still reachable after the renewal");
      } finally {
        assert.equal(await entry.process.stop("SIGTERM"), 0, entry.process.stderr);
        stats = JSON.parse(await entry.stdout);
      }
      assert.equal(stats.dhcp.acks, 2, "the first ACK and the renewal's");
      assert.equal(stats.dhcp.declines, 0);
      assert.equal(stats.arp.probesSent, 2, "the address was probed before use");
      assert.equal(stats.dhcp.releases, 1);
      await waitFor(
        () => t.dnsmasqLog().includes(`DHCPRELEASE(my1) ${leased} ${MAC}`),
        "dnsmasq to log the release",
        5000,
      );
      assert.equal((stats.udp.drops as Record<string, number>)["bad-checksum"] ?? 0, 0);
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
      const entry = spawnEthernetEntry(t.stackNs, [
        "--backend",
        "pcap",
        "--iface",
        "my0",
        "--dhcp",
        "--mac",
        MAC,
        "--max-ms",
        "3000",
      ]);
      assert.equal(await entry.process.exited(), 0, entry.process.stderr);
      const stats = JSON.parse(await entry.stdout);
      assert.match(entry.process.stderr, /192\.168\.77\.50 is already in use on the link; declining it/);
      assert.doesNotMatch(entry.process.stderr, /ready iface=/);
      assert.equal(stats.dhcp.declines, 1);
      assert.equal(stats.address, "0.0.0.0/0");
      await waitFor(
        () => t.dnsmasqLog().includes(`DHCPDECLINE(my1) 192.168.77.50 ${MAC}`),
        "dnsmasq to log the decline",
        5000,
      );
    });
  },
);

privilegedTest("ethernet over pcap: a missing interface is one clear error line", async () => {
  const ns = await Netns.create("ns-pcap-missing");
  try {
    const entry = spawnEthernetEntry(ns, ["--backend", "pcap", "--iface", "nosuch0", "--dhcp"]);
    const code = await entry.process.exited();
    await entry.stdout;
    assert.notEqual(code, 0);
    assert.match(entry.process.stderr, /no interface named nosuch0 in this namespace/);
    // The interface exists but is down: libpcap says so, and so do we.
    await ns.exec(["ip", "link", "add", "down0", "type", "veth", "peer", "name", "down1"]);
    const down = spawnEthernetEntry(ns, ["--backend", "pcap", "--iface", "down0", "--dhcp"]);
    await down.process.exited();
    await down.stdout;
    assert.match(down.process.stderr, /interface down0 is down; bring it up: ip link set down0 up/);
  } finally {
    await ns.delete();
  }
});

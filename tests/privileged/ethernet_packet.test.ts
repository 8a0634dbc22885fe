/**
 * `netstack stack --backend packet`: the stack attached to an existing interface through an AF_PACKET
 * socket with virtio_net_hdr, following the "MIP over pcap" recipe to the letter — a veth pair my0/my1,
 * 192.168.0.1/24 on my1, dnsmasq on my1, the stack on my0, and no ethtool step: my1 keeps its transmit
 * checksum offload (the veth default), so every DHCP offer and TCP segment reaches the stack with a partial
 * checksum, which the virtio_net_hdr says it may trust.
 *
 * Run inside namespaces only: the recipe with both ends in one namespace (as written for a machine), and
 * the README's two-namespace variant; then a Linux bridge with the stack on a veth whose peer is a bridge
 * port and a second namespace as a container on the same bridge; then loopback, a killed process, the
 * interface going down and away, and frames of a VLAN (tagged in metadata, so they look untagged).
 * Assertions: lease (and its renewal at T1), ping, curl, a 4 MiB TCP echo, the host's neighbour entry,
 * 256 MiB to discard, TCP super-segments in both directions, no checksum drop, and the interface's
 * promiscuity back to what it was.
 */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { type Netns, runOk, withNetns } from "../helpers/netns.ts";
import {
  escapeRegExp,
  loggedStats,
  promiscuity,
  startDnsmasq,
  waitUntil,
  withMipTopology,
} from "../helpers/mip.ts";
import {
  kernelPeer,
  netstackCommand,
  spawnStack,
  type StackProcess,
  startStack,
} from "../helpers/stack_process.ts";

/** The stack's counters over HTTP, fetched from `ns`. */
async function httpStats(ns: Netns, address: string): Promise<Record<string, Record<string, unknown>>> {
  const page = await ns.run(["curl", "-sS", "-m", "5", "-f", `http://${address}/stats`]);
  assert.equal(page.code, 0, page.stderr);
  return JSON.parse(page.stdout);
}

/** The address and MAC of the `ready` line after a DHCP lease on `subnet`. */
function readyLine(stack: StackProcess, subnet: string): { address: string; mac: string } {
  const ready = new RegExp(
    `ready iface=my0 addr=(${escapeRegExp(subnet)}\\.\\d+)/24 mac=([0-9a-f:]{17}) gateway=${
      escapeRegExp(subnet)
    }\\.1 `,
  ).exec(stack.stderr);
  assert.ok(ready, `the stack is ready with a leased address:\n${stack.stderr}`);
  return { address: ready[1], mac: ready[2] };
}

/** Ping, curl, a 4 MiB echo, the neighbour entry, and 256 MiB to discard, from `hostNs` over `hostIface`. */
async function exercise(hostNs: Netns, hostIface: string, address: string, mac: string): Promise<void> {
  const ping = await hostNs.run(["ping", "-c", "3", "-i", "0.2", "-W", "2", address]);
  assert.equal(ping.code, 0, ping.stdout + ping.stderr);
  assert.match(ping.stdout, /3 packets transmitted, 3 received/);

  const page = await hostNs.run(["curl", "-sS", "-m", "5", "-f", `http://${address}/`]);
  assert.equal(page.code, 0, page.stderr);
  assert.match(page.stdout, /<title>netstack/);

  const echo = await kernelPeer(hostNs, ["echo", address, 7, 4 << 20]);
  assert.equal(echo.matching, 1, JSON.stringify(echo));

  const neigh = await hostNs.exec(["ip", "neigh", "show", "dev", hostIface]);
  assert.match(neigh, new RegExp(`^${escapeRegExp(address)} lladdr ${mac} `, "m"), neigh);

  const before = await httpStats(hostNs, address);
  const discard = await kernelPeer(hostNs, ["discard", address, 9, 256 << 20], 120_000);
  assert.equal(discard.sent, 256 << 20, JSON.stringify(discard));
  const after = await httpStats(hostNs, address);
  const bytesIn = (after.tcp.bytesIn as number) - (before.tcp.bytesIn as number);
  assert.ok(bytesIn >= 256 << 20, `the stack received the 256 MiB: ${bytesIn}`);
  // The kernel sender's 64 KiB segments arrived whole: far fewer frames than 1500-byte ones would be.
  const frames = (after.device.rxPackets as number) - (before.device.rxPackets as number);
  assert.ok(bytesIn / frames > 4 * 1514, `super-segments received: ${bytesIn} bytes in ${frames} frames`);
}

/** Our super-segments go out whole and the kernel takes them: 16 MiB from chargen in few frames. */
async function assertSendsSuperSegments(hostNs: Netns, address: string): Promise<void> {
  const before = await httpStats(hostNs, address);
  const chargen = await kernelPeer(hostNs, ["chargen", address, 19, 16 << 20]);
  assert.equal(chargen.received, 16 << 20, JSON.stringify(chargen));
  const after = await httpStats(hostNs, address);
  const bytes = (after.device.txBytes as number) - (before.device.txBytes as number);
  const frames = (after.device.txPackets as number) - (before.device.txPackets as number);
  assert.ok(bytes >= 16 << 20, `${bytes}`);
  assert.ok(bytes / frames > 4 * 1514, `super-segments sent: ${bytes} bytes in ${frames} frames`);
}

/** Nothing was dropped for a checksum anywhere, and the device used offloads. */
function assertNoChecksumDrops(stats: Record<string, Record<string, unknown>>): void {
  assert.equal(stats.device.offloads, true);
  assert.equal((stats.udp.drops as Record<string, number>)["bad-checksum"] ?? 0, 0);
  assert.equal((stats.tcp.drops as Record<string, number>)["bad-checksum"] ?? 0, 0);
  assert.deepEqual(stats.device.drops, {});
}

privilegedTest(
  "packet backend: the recipe verbatim (both veth ends in one namespace, tx offload on): lease, renewal, " +
    "ping, curl, 4 MiB echo, neighbour, 256 MiB, super-segments both ways, promiscuity restored",
  async () => {
    // T1 = 3 s (option 58; dnsmasq sends it only together with T2) makes the renewal happen during the test.
    const dnsmasqArgs = [
      "--dhcp-range=192.168.0.50,192.168.0.60,2m",
      "--dhcp-option=option:T1,3",
      "--dhcp-option=option:T2,100",
    ];
    await withMipTopology(
      { dnsmasqArgs, layout: "one-namespace", subnet: "192.168.0", hostTxOffload: true },
      async (t) => {
        const tx = await t.hostNs.exec(["ethtool", "-k", "my1"]);
        assert.match(tx, /^tx-checksumming: on/m, "the veth keeps its default transmit offload");
        const promiscBefore = await promiscuity(t.stackNs, "my0");
        const stack = await startStack(t.stackNs, ["--backend", "packet", "--iface", "my0", "--dhcp"]);
        let leased = "";
        try {
          const { address, mac } = readyLine(stack, "192.168.0");
          leased = address;
          assert.match(stack.stderr, /dhcp: bound address=192\.168\.0\.\d+\/24 .*router=192\.168\.0\.1 /);
          assert.match(t.dnsmasqLog(), new RegExp(escapeRegExp(`DHCPACK(my1) ${address} ${mac}`)));
          // A random MAC is not my0's: the socket holds a promiscuous membership while it runs.
          assert.equal(await promiscuity(t.stackNs, "my0"), promiscBefore + 1);

          await exercise(t.hostNs, "my1", address, mac);
          await assertSendsSuperSegments(t.hostNs, address);

          await stack.waitFor(`dhcp: renewed ${address}/24 lease=120s`, 10_000);
          const acks = t.dnsmasqLog().match(new RegExp(escapeRegExp(`DHCPACK(my1) ${address} ${mac}`), "g"));
          assert.ok((acks?.length ?? 0) >= 2, t.dnsmasqLog());
          const after = await t.hostNs.run(["ping", "-c", "1", "-W", "2", address]);
          assert.equal(after.code, 0, "still reachable after the renewal");
        } finally {
          assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
        }
        assert.equal(await promiscuity(t.stackNs, "my0"), promiscBefore, "promiscuity as found");
        const stats = loggedStats(stack.stderr);
        assertNoChecksumDrops(stats);
        assert.ok((stats.dhcp.acks as number) >= 2, "the first ACK and the renewal's");
        assert.equal(stats.dhcp.releases, 1);
        assert.equal(
          (stats.device.socket as Record<string, number>).drops,
          0,
          "the socket buffer never overflowed",
        );
        await waitUntil(
          () => t.dnsmasqLog().includes(`DHCPRELEASE(my1) ${leased}`),
          "dnsmasq to log the release",
          5000,
        );
      },
    );
  },
);

privilegedTest(
  "packet backend: the README's two-namespace variant with a fixed MAC: lease, ping, curl, 4 MiB echo, " +
    "neighbour, 256 MiB",
  async () => {
    const MAC = "02:00:00:00:00:01";
    const dnsmasqArgs = ["--dhcp-range=192.168.77.50,192.168.77.60,2m", `--dhcp-host=${MAC},192.168.77.50`];
    await withMipTopology({ dnsmasqArgs, hostTxOffload: true }, async (t) => {
      const stack = await startStack(t.stackNs, [
        "--backend",
        "packet",
        "--iface",
        "my0",
        "--dhcp",
        "--mac",
        MAC,
      ]);
      try {
        const { address, mac } = readyLine(stack, "192.168.77");
        assert.equal(address, "192.168.77.50");
        assert.equal(mac, MAC);
        await exercise(t.hostNs, "my1", address, mac);
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      assertNoChecksumDrops(loggedStats(stack.stderr));
    });
  },
);

/** A namespace's veth `inner` whose peer `port` is enslaved to `bridge` in `bridgeNs`. */
async function plugIntoBridge(bridgeNs: Netns, bridge: string, port: string, ns: Netns, inner: string) {
  await runOk([
    "ip",
    "link",
    "add",
    inner,
    "netns",
    ns.name,
    "type",
    "veth",
    "peer",
    "name",
    port,
    "netns",
    bridgeNs.name,
  ]);
  await bridgeNs.exec(["ip", "link", "set", port, "master", bridge]);
  await bridgeNs.exec(["ip", "link", "set", port, "up"]);
  await ns.exec(["ip", "link", "set", inner, "up"]);
}

privilegedTest(
  "packet backend on a bridge (as docker0): lease from a server on the bridge, reachable from the bridge's " +
    "host and from a container, unbothered by the container's broadcast and multicast",
  async () => {
    await withNetns("ns-br-host", async (host) => {
      await withNetns("ns-br-stack", async (stackNs) => {
        await withNetns("ns-br-ctr", async (container) => {
          await host.exec(["ip", "link", "add", "br0", "type", "bridge"]);
          await host.exec(["ip", "addr", "add", "192.168.0.1/24", "dev", "br0"]);
          await host.exec(["ip", "link", "set", "br0", "up"]);
          await plugIntoBridge(host, "br0", "my1", stackNs, "my0");
          await plugIntoBridge(host, "br0", "veth-ctr", container, "eth0");
          await container.exec(["ip", "addr", "add", "192.168.0.10/24", "dev", "eth0"]);
          const dnsmasq = await startDnsmasq(host, "br0", ["--dhcp-range=192.168.0.50,192.168.0.60,2m"]);
          try {
            const stack = await startStack(stackNs, ["--backend", "packet", "--iface", "my0", "--dhcp"]);
            try {
              const { address, mac } = readyLine(stack, "192.168.0");
              assert.match(dnsmasq.log(), new RegExp(escapeRegExp(`DHCPACK(br0) ${address} ${mac}`)));
              // From the bridge's host.
              const ping = await host.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", address]);
              assert.equal(ping.code, 0, ping.stdout + ping.stderr);
              const neigh = await host.exec(["ip", "neigh", "show", "dev", "br0"]);
              assert.match(neigh, new RegExp(`^${escapeRegExp(address)} lladdr ${mac} `, "m"), neigh);
              // From the container, while it floods the bridge with broadcast and multicast.
              const noise = container.run([
                "python3",
                "-c",
                NOISE,
                "2000",
              ], { timeoutMs: 60_000 });
              const echo = await kernelPeer(container, ["echo", address, 7, 4 << 20]);
              assert.equal(echo.matching, 1, JSON.stringify(echo));
              const page = await container.run(["curl", "-sS", "-m", "5", "-f", `http://${address}/`]);
              assert.equal(page.code, 0, page.stderr);
              const sent = await noise;
              assert.equal(sent.code, 0, sent.stderr);
              assert.equal(sent.stdout.trim(), "4000");
              const stats = await httpStats(container, address);
              const drops = stats.ethernet.drops as Record<string, number>;
              assert.ok(
                drops.multicast >= 2000,
                `the multicast frames are counted: ${JSON.stringify(drops)}`,
              );
              // RFC 1122 §3.2.2: no ICMP error answers a broadcast (the datagrams found no socket).
              assert.equal((stats.icmp as Record<string, number>).unreachableSent, 0);
              const ctrPing = await container.run(["ping", "-c", "2", "-i", "0.2", "-W", "2", address]);
              assert.equal(ctrPing.code, 0, ctrPing.stdout);
            } finally {
              assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
            }
            assertNoChecksumDrops(loggedStats(stack.stderr));
          } finally {
            await dnsmasq.stop();
          }
        });
      });
    });
  },
);

/** N broadcast UDP datagrams and N multicast ones (mDNS group), as container chatter; prints the count. */
const NOISE = `
import socket, sys, time
n = int(sys.argv[1])
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
m = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
m.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("192.168.0.10"))
sent = 0
for i in range(n):
    b.sendto(b"chatter" * 20, ("192.168.0.255", 5353)); sent += 1
    m.sendto(b"mdns-ish" * 20, ("224.0.0.251", 5353)); sent += 1
    if i % 100 == 0: time.sleep(0.01)
print(sent)
`;

privilegedTest(
  "packet backend: loopback is refused in one line (exit 1), a missing interface too; a killed stack " +
    "leaves the interface's promiscuity as found; the interface going down, up and away is logged",
  async () => {
    await withNetns("ns-packet-misc", async (ns) => {
      for (const backend of ["packet", "pcap"]) {
        const lo = await ns.run(netstackCommand("stack", "--backend", backend, "--iface", "lo", "--dhcp"));
        assert.equal(lo.code, 1, lo.stderr);
        assert.equal(lo.stderr.trim().split("\n").length, 1, lo.stderr);
        assert.match(lo.stderr, /^netstack: lo is the loopback device: .*attach to a veth pair instead/);
      }
      const missing = await ns.run(netstackCommand("stack", "--backend", "packet", "--iface", "nosuch0"));
      assert.equal(missing.code, 1, missing.stderr);
      assert.match(missing.stderr, /^netstack: no interface named nosuch0 in this namespace\n$/);
      await ns.exec(["ip", "link", "add", "my0", "type", "veth", "peer", "name", "my1"]);
      const down = await ns.run(netstackCommand("stack", "--backend", "packet", "--iface", "my0"));
      assert.equal(down.code, 1, down.stderr);
      assert.match(down.stderr, /interface my0 is down; bring it up: ip link set my0 up/);
      await ns.exec(["ip", "link", "set", "my0", "up"]);
      await ns.exec(["ip", "link", "set", "my1", "up"]);
      assert.equal(await promiscuity(ns, "my0"), 0);
      const stack = spawnStack(ns, ["--backend", "packet", "--iface", "my0", "--addr", "192.168.0.2/24"]);
      try {
        await stack.waitFor("ready iface=my0 addr=192.168.0.2/24");
        assert.equal(await promiscuity(ns, "my0"), 1);
      } finally {
        await stack.stop("SIGKILL");
      }
      await waitUntil(async () => (await promiscuity(ns, "my0")) === 0, "promiscuity to return to 0", 5000);

      // The interface going down and up, then away: named in the log, and the stack carries on.
      await ns.exec(["ip", "addr", "add", "192.168.0.1/24", "dev", "my1"]);
      const again = await startStack(ns, [
        "--backend",
        "packet",
        "--iface",
        "my0",
        "--addr",
        "192.168.0.2/24",
      ]);
      try {
        await ns.exec(["ip", "link", "set", "my0", "down"]);
        await again.waitFor("my0 went down; frames flow again once it is up (ip link set my0 up)", 5000);
        await ns.exec(["ip", "link", "set", "my0", "up"]);
        const ping = await ns.run(["ping", "-c", "1", "-W", "3", "192.168.0.2"]);
        assert.equal(ping.code, 0, ping.stdout + again.stderr);
        await ns.exec(["ip", "link", "del", "my0"]);
        await again.waitFor("my0 was removed: no frame will arrive any more", 5000);
      } finally {
        assert.equal(await again.stop("SIGTERM"), 0, again.stderr);
      }
    });
  },
);

/** Sends on `argv[1]` N ARP requests for 192.168.10.2, with an 802.1Q tag (VLAN argv[3]) unless it is 0. */
const ARP_INJECT = `
import socket, struct, sys
iface, n, vlan = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
src = bytes.fromhex("020000000010")
arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, src, socket.inet_aton("192.168.10.1"),
                  b"\\0" * 6, socket.inet_aton("192.168.10.2"))
tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
frame = b"\\xff" * 6 + src + tag + struct.pack("!H", 0x0806) + arp
frame += b"\\0" * max(0, 64 - len(frame))
for _ in range(n): s.send(frame)
`;

privilegedTest(
  "packet backend: frames of a VLAN on the link (their tag moved to metadata by the kernel) are dropped " +
    "as vlan-tagged, not taken as the stack's own; untagged ones are answered",
  async () => {
    await withNetns("ns-packet-vlan", async (ns) => {
      await ns.exec(["ip", "link", "add", "my0", "type", "veth", "peer", "name", "my1"]);
      for (const iface of ["my0", "my1"]) await ns.exec(["ip", "link", "set", iface, "up"]);
      const stack = await startStack(ns, [
        "--backend",
        "packet",
        "--iface",
        "my0",
        "--addr",
        "192.168.10.2/24",
      ]);
      try {
        // ARP requests for the stack's address, tagged for VLAN 10, then untagged.
        await ns.exec(["python3", "-c", ARP_INJECT, "my1", "3", "10"]);
        await ns.exec(["python3", "-c", ARP_INJECT, "my1", "2", "0"]);
        await new Promise((resolve) => setTimeout(resolve, 500)); // let the stack read and answer them
      } finally {
        assert.equal(await stack.stop("SIGTERM"), 0, stack.stderr);
      }
      const stats = loggedStats(stack.stderr);
      const drops = stats.device.drops as Record<string, number>;
      assert.equal(drops["vlan-tagged"], 3, `the tagged requests are counted: ${JSON.stringify(drops)}`);
      assert.equal(stats.arp.repliesSent, 2, "only the untagged requests are answered");
    });
  },
);

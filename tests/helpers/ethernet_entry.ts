/**
 * A minimal Ethernet stack for privileged tests, run inside a namespace with `ip netns exec`:
 * TAP or libpcap device → EthernetInterface → Ipv4Interface (ICMP echo) + UdpLayer with UDP echo on port 7,
 * optionally configured by the DHCP client. It is not the product shell (that is `lib/stack/stack.ts`);
 * it exists so that the Ethernet pieces can be tested end to end on their own.
 *
 * Usage: ethernet_entry.ts --backend tap|pcap --iface NAME [--addr CIDR | --dhcp] [--host-addr CIDR]
 *        [--gateway ADDR] [--mac MAC] [--max-ms N] [--hello ADDR:PORT]
 * `--hello` sends one UDP datagram "hello from netstack" from port 40000 to ADDR:PORT once configured, so
 * that a test sees the stack resolve a next hop by ARP on its own initiative.
 * Logs `ready iface=… addr=… mac=…` on stderr once configured; on SIGTERM (or after --max-ms) it releases
 * a DHCP lease, closes the device and prints the counters as one JSON line on stdout.
 *
 * @module
 */

import { configureLogging } from "../../lib/log.ts";
import { Ipv4Interface } from "../../lib/iface/ipv4_interface.ts";
import { EthernetInterface, type FrameSink } from "../../lib/iface/ethernet_interface.ts";
import { UdpLayer } from "../../lib/udp/layer.ts";
import { bindUdpEcho } from "../../lib/services/udp_echo.ts";
import { attachDhcpClient, type DhcpClient } from "../../lib/dhcp/mod.ts";
import { IpProtocol } from "../../lib/wire/ipv4.ts";
import { formatIpv4Cidr, type Ipv4Cidr, parseIpv4, parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import { formatMac, parseMac, randomLocalMac } from "../../lib/wire/ethernet.ts";
import type { Device } from "../../lib/phy/device.ts";
import { TunDevice } from "../../lib/phy/tun.ts";
import { PcapDevice } from "../../lib/phy/pcap_device.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function fail(message: string): never {
  console.error(`ethernet_entry: ${message}`);
  Deno.exit(2);
}

await configureLogging("info");

const backend = flag("backend") ?? "tap";
const ifaceName = flag("iface") ?? (backend === "tap" ? "tap0" : "my0");
const useDhcp = Deno.args.includes("--dhcp");
const staticAddress: Ipv4Cidr = useDhcp
  ? { address: 0, prefixLength: 0 }
  : parseIpv4Cidr(flag("addr") ?? "10.0.0.2/24") ?? fail("bad --addr");
const gatewayText = flag("gateway");
const gateway = gatewayText === undefined ? null : parseIpv4(gatewayText) ?? fail("bad --gateway");
const macText = flag("mac");
const mac = macText === undefined ? randomLocalMac() : parseMac(macText) ?? fail("bad --mac");
const maxMs = Number(flag("max-ms") ?? "30000");

let device: Device;
if (backend === "tap") {
  const hostText = flag("host-addr") ?? "10.0.0.1/24";
  device = TunDevice.open({ name: ifaceName, kind: "tap", hostAddress: parseIpv4Cidr(hostText) });
} else if (backend === "pcap") {
  device = PcapDevice.open({ iface: ifaceName });
} else {
  fail(`unknown backend ${backend}`);
}

const clock = () => performance.now();
const ipv4 = new Ipv4Interface({ address: staticAddress, mtu: device.mtu });
const udp = new UdpLayer(ipv4, device.mtu);
ipv4.register(IpProtocol.UDP, udp);
bindUdpEcho(udp, () => ipv4.address.address);
const ethernet = new EthernetInterface({ mac, ipv4, gateway });

const txErrors = { count: 0 };
const sink: FrameSink = {
  sendFrame(frame) {
    if (!device.send(frame)) txErrors.count++;
  },
};

const helloText = flag("hello");
const hello = helloText === undefined ? null : {
  address: parseIpv4(helloText.split(":")[0]) ?? fail("bad --hello"),
  port: Number(helloText.split(":")[1]),
};
const ready = (address: Ipv4Cidr) => {
  console.error(`ready iface=${device.name} addr=${formatIpv4Cidr(address)} mac=${formatMac(mac)}`);
  if (hello !== null) {
    udp.enqueue(
      address.address,
      40000,
      hello.address,
      hello.port,
      new TextEncoder().encode("hello from netstack"),
    );
  }
};

let dhcp: DhcpClient | null = null;
if (useDhcp) {
  dhcp = attachDhcpClient(ethernet, udp, clock(), {
    onBound: (lease) => ready({ address: lease.address, prefixLength: lease.prefixLength }),
  });
} else {
  ethernet.announce(clock(), sink);
  ready(staticAddress);
}

let stopping = false;
const stop = () => {
  stopping = true;
  device.wake();
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));
let now = clock();
const onFrame = (frame: Uint8Array) => ethernet.ingress(frame, now, sink);
const endAt = clock() + maxMs;
const runUntil = async (condition: () => boolean) => {
  while (!condition()) {
    now = clock();
    const received = device.receive(onFrame, 64);
    now = clock();
    const deadline = ethernet.poll(now, sink);
    if (received > 0) {
      await yieldNow();
      continue;
    }
    const timeout = deadline === null ? 100 : Math.min(100, Math.max(0, deadline - clock()));
    if (timeout > 0) await device.wait(timeout);
    else await yieldNow();
  }
};
await runUntil(() => stopping || clock() >= endAt);

if (dhcp !== null && dhcp.lease !== null) {
  // RELEASE is unicast to the server: give ARP up to a second to resolve it before closing.
  dhcp.release(clock(), ethernet.ipv4Sink(clock(), sink));
  const releaseEnd = clock() + 1000;
  await runUntil(() => ethernet.cache.pendingCount === 0 || clock() >= releaseEnd);
}
device.close();
console.log(JSON.stringify({
  mac: formatMac(mac),
  address: formatIpv4Cidr(ipv4.address),
  txErrors: txErrors.count,
  ...ethernet.snapshot(),
  ...ipv4.snapshot(),
  udp: udp.snapshot(),
  dhcp: dhcp?.snapshot() ?? null,
}));
Deno.exit(0);

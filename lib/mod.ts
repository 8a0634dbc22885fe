/**
 * netstack as a library: a user-space TCP/IP stack for Deno over TUN, with its wire formats, devices and
 * pcap writer.
 *
 * ```ts
 * import { openTunStack, parseIpv4Cidr } from "./lib/mod.ts";
 * const { stack, close } = openTunStack({
 *   iface: "tun0",
 *   address: parseIpv4Cidr("10.0.0.2/24")!,
 *   hostAddress: parseIpv4Cidr("10.0.0.1/24")!,
 * });
 * const udp = stack.listenDatagram({ port: 5000 });
 * for await (const [data, remote] of udp) await udp.send(data, remote);
 * await close();
 * ```
 *
 * @module
 */

export { AVAILABLE_SERVICES, type ServiceName, Stack, type StackOptions } from "./stack/stack.ts";
export { type OpenedStack, openTunStack, type TunStackOptions } from "./stack/open.ts";
export { DatagramEndpoint, type NetAddr, type ReceivedDatagram } from "./stack/datagram.ts";
export type { Device, Medium, PacketHandler } from "./phy/device.ts";
export { TunDevice, type TunOptions } from "./phy/tun.ts";
export { MemoryDevice, type MemoryDeviceOptions } from "./phy/memory.ts";
export { CaptureDevice } from "./phy/capture.ts";
export { LinkType, PcapWriter, type PcapWriterOptions } from "./pcap/writer.ts";
export * from "./wire/ipv4_address.ts";
export { VERSION } from "./version.ts";

/**
 * netstack as a library: a user-space TCP/IP stack for Deno over TUN, TAP or libpcap, with TCP
 * connections shaped like `Deno.Conn`, UDP like `Deno.DatagramConn`, its devices and pcap writer.
 * The tracer has its own entry point, `lib/trace/mod.ts`.
 *
 * ```ts
 * import { openTunStack, parseIpv4Cidr } from "./lib/mod.ts";
 * const { stack, close } = openTunStack({
 *   iface: "tun0",
 *   address: parseIpv4Cidr("10.0.0.2/24")!,
 *   hostAddress: parseIpv4Cidr("10.0.0.1/24")!,
 * });
 * const listener = stack.listen({ port: 7 });
 * for await (const conn of listener) conn.readable.pipeTo(conn.writable); // TCP echo
 * await close();
 * ```
 *
 * @module
 */

// The public API, and only it: the stack's protocol layers (IPv4, Ethernet, UDP, TCP, DHCP) stay internal.

export { Stack, type StackOptions } from "./stack/stack.ts";
export type { ForwardOptions } from "./forward/forwarder.ts";
export {
  type Backend,
  type OpenedStack,
  openStack,
  type OpenStackOptions,
  openTunStack,
  type TunStackOptions,
} from "./stack/open.ts";
export { DatagramEndpoint, type NetAddr, type ReceivedDatagram } from "./stack/datagram.ts";
export { TcpConn, TcpConnListener } from "./stack/tcp_conn.ts";
export type { StreamConn } from "./stack/stream_conn.ts";
export type { DatagramAnswer, DatagramResponder } from "./udp/responder.ts";
export {
  type RunningServices,
  SERVICE_NAMES as AVAILABLE_SERVICES,
  type ServiceHost,
  type ServiceListener,
  type ServiceName,
  type ServicesOptions,
  startServices,
} from "./services/mod.ts";
export { RuntimeError } from "./errors.ts";
export { SystemError } from "./ffi/errno.ts";
// Device.send takes a TxOffload descriptor, so a library user's own device needs it and its GsoType.
export {
  type Device,
  GsoType,
  type Medium,
  type PacketHandler,
  RxFlags,
  TxFlags,
  TxOffload,
} from "./phy/device.ts";
export { TunDevice, type TunOptions } from "./phy/tun.ts";
export { PcapDevice, type PcapDeviceOptions } from "./phy/pcap_device.ts";
export { PacketDevice, type PacketDeviceOptions } from "./phy/packet_device.ts";
export { InterfaceError } from "./phy/link.ts";
export type { PcapStats } from "./ffi/libpcap.ts";
export { MemoryDevice, type MemoryDeviceOptions } from "./phy/memory.ts";
export { DeviceMiddleware } from "./phy/middleware.ts";
export { CaptureDevice } from "./phy/capture.ts";
export {
  ImpairedDevice,
  type ImpairmentCounters,
  type ImpairmentSpec,
  parseImpairment,
} from "./phy/impair.ts";
export type { CongestionControlName, TcpConfig, TcpLayerOptions } from "./tcp/config.ts";
export type {
  AddressCheck,
  AttachDhcpOptions,
  DhcpClientOptions,
  DhcpLease,
  DhcpLossReason,
} from "./dhcp/mod.ts";
export { formatMac, type MacAddress, parseMac, randomLocalMac } from "./wire/ethernet.ts";
export { LinkType, PcapWriter, type PcapWriterOptions, type SyncWriter } from "./pcap/writer.ts";
export {
  formatIpv4,
  formatIpv4Cidr,
  inSubnet,
  type Ipv4Address,
  type Ipv4Cidr,
  parseIpv4,
  parseIpv4Cidr,
} from "./wire/ipv4_address.ts";
export {
  formatIpv6,
  formatIpv6Cidr,
  type Ipv6Address,
  type Ipv6Cidr,
  parseIpv6,
  parseIpv6Cidr,
} from "./wire/ipv6_address.ts";
export { VERSION } from "./version.ts";

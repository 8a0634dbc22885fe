/**
 * Opens a stack with the options of the command line: the device (a TUN or TAP device it creates, or an
 * existing interface through an AF_PACKET socket or libpcap), host-side configuration, optional impairment and pcap capture, in
 * one call, with everything closed again on failure.
 *
 * @module
 */

import { CaptureDevice } from "../phy/capture.ts";
import { CbpfFilter } from "../filter/interpreter.ts";
import { compileRunnableExpression, Dlt } from "../filter/expression.ts";
import type { Device } from "../phy/device.ts";
import { TunDevice } from "../phy/tun.ts";
import { PcapDevice } from "../phy/pcap_device.ts";
import { PacketDevice } from "../phy/packet_device.ts";
import { randomLocalMac } from "../wire/ethernet.ts";
import { ImpairedDevice, type ImpairmentSpec } from "../phy/impair.ts";
import type { TcpLayerOptions } from "../tcp/config.ts";
import type { Ipv4Address, Ipv4Cidr } from "../wire/ipv4_address.ts";
import type { MacAddress } from "../wire/ethernet.ts";
import type { Ipv6Address, Ipv6Cidr } from "../wire/ipv6_address.ts";
import type { AttachDhcpOptions } from "../dhcp/mod.ts";
import type { ForwardOptions } from "../forward/forwarder.ts";
import { Stack } from "./stack.ts";

/** Where the stack's packets go: see docs/cli.md `--backend`. */
export type Backend = "tun" | "tap" | "packet" | "pcap";

/** Options of {@link openStack}. */
export interface OpenStackOptions {
  /** Device kind; default `tun`. */
  backend?: Backend;
  /** Device to create (tun, tap; default `tun0`) or to open (packet, pcap; required). */
  iface?: string;
  /** The stack's address (ignored with `dhcp`). */
  address: Ipv4Cidr;
  /** tun/tap: address given to the host side; `null` leaves the host side unconfigured (but up). */
  hostAddress?: Ipv4Cidr | null;
  /** IPv6 on; default true. */
  ipv6?: boolean;
  /** The stack's static IPv6 address; none when omitted (Ethernet backends still get link-local and SLAAC). */
  address6?: Ipv6Cidr | null;
  /** tun/tap: IPv6 address given to the host side; none when omitted. */
  hostAddress6?: Ipv6Cidr | null;
  /** tap/packet/pcap: IPv6 next hop off the prefix; default from router advertisements. */
  gateway6?: Ipv6Address | null;
  /**
   * tun/tap: create the device in this network namespace (an `ip netns` name) and configure the host
   * side there; the stack and its own sockets stay in the caller's namespace.
   */
  netns?: string;
  /**
   * Forwarding mode (lib/forward): relay every TCP and UDP flow to any address through host sockets.
   * With `netns`, the host side also gets a default route via the stack.
   */
  forward?: boolean | ForwardOptions;
  /** tap/packet/pcap: next hop outside the subnet. */
  gateway?: Ipv4Address | null;
  /** tap/packet/pcap: obtain the address by DHCPv4. */
  dhcp?: boolean | AttachDhcpOptions;
  /** tap/packet/pcap: the stack's MAC; default random, locally administered. */
  mac?: MacAddress;
  /** pcap: receive frames for any MAC (needed on physical NICs). */
  promiscuous?: boolean;
  /** tun/tap: MTU; default 1500 (packet and pcap take the interface's). */
  mtu?: number;
  /** Path of a pcap file receiving every packet in and out (link type raw IP for tun, Ethernet else). */
  capturePath?: string;
  /**
   * A tcpdump expression: only matching packets go to the capture. Compiled by libpcap for the device's
   * link type (raw IP for tun, Ethernet else); throws FilterSyntaxError or UnsupportedFilterError.
   */
  captureFilter?: string;
  /** Test-only: impair traffic (loss, reordering, duplication) between the device and the stack. */
  impairment?: ImpairmentSpec;
  /** TCP tunables. */
  tcp?: TcpLayerOptions;
  /** tun/tap/packet: checksum and segmentation offload through virtio_net_hdr; default true. */
  offload?: boolean;
  /** How the I/O loop waits: see `StackOptions.wait`; default `async`. */
  wait?: "async" | "block";
}

/** Options of {@link openTunStack} (the TUN case of {@link openStack}). */
export type TunStackOptions = Omit<OpenStackOptions, "backend" | "gateway" | "dhcp" | "mac" | "promiscuous">;

/** A stack and what it opened, so that closing it closes everything. */
export interface OpenedStack {
  /** The running stack (in forwarding mode, with its relay). */
  stack: Stack;
  /** Closes the stack, the device and the capture file. */
  close(): Promise<void>;
}

function openDevice(options: OpenStackOptions & { mac: MacAddress | undefined }): Device {
  const backend = options.backend ?? "tun";
  if (backend === "packet") {
    if (!options.iface) throw new Error("the packet backend needs the name of an existing interface");
    return PacketDevice.open({ iface: options.iface, mac: options.mac, offload: options.offload ?? true });
  }
  if (backend === "pcap") {
    if (!options.iface) throw new Error("the pcap backend needs the name of an existing interface");
    return PcapDevice.open({ iface: options.iface, promiscuous: options.promiscuous, mac: options.mac });
  }
  return TunDevice.open({
    name: options.iface ?? "tun0",
    kind: backend,
    mtu: options.mtu ?? 1500,
    hostAddress: options.hostAddress ?? null,
    hostAddress6: options.ipv6 === false ? null : options.hostAddress6 ?? null,
    offload: options.offload ?? true,
    netns: options.netns,
    // Only in another namespace: here, a default route via the stack would capture the relay's own sockets.
    defaultRoute: options.forward && options.netns !== undefined ? options.address.address : undefined,
  });
}

/** Opens the device (and capture) and starts a stack on it. */
export function openStack(options: OpenStackOptions): OpenedStack {
  // The MAC is chosen before the device opens: the packet backend joins promiscuous mode for a foreign one.
  const mac = options.mac ??
    (options.backend === "tun" || options.backend === undefined ? undefined : randomLocalMac());
  const base = openDevice({ ...options, mac });
  let file: Deno.FsFile | null = null;
  let device: Device = base;
  try {
    if (options.impairment !== undefined) device = new ImpairedDevice(device, options.impairment);
    // The capture wraps the impairment: it shows what the stack itself received and sent.
    if (options.capturePath !== undefined) {
      const filter = options.captureFilter === undefined ? undefined : new CbpfFilter(
        compileRunnableExpression(options.captureFilter, device.medium === "ip" ? Dlt.RAW : Dlt.EN10MB),
      );
      file = Deno.openSync(options.capturePath, { write: true, create: true, truncate: true });
      device = new CaptureDevice(device, file, filter);
    }
    const stack = new Stack({
      device,
      address: options.address,
      ipv6: options.ipv6,
      address6: options.address6,
      gateway6: options.gateway6,
      tcp: options.tcp,
      mac,
      gateway: options.gateway,
      dhcp: options.dhcp,
      wait: options.wait,
      forward: options.forward,
    });
    return {
      stack,
      async close() {
        await stack.close();
        file?.close();
      },
    };
  } catch (error) {
    file?.close();
    base.close();
    throw error;
  }
}

/** Creates a TUN device (and capture) and starts a stack on it. */
export function openTunStack(options: TunStackOptions): OpenedStack {
  return openStack({ ...options, backend: "tun" });
}

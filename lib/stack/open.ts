/**
 * Opens a stack on a TUN device with the usual options of the command line: device creation, host-side
 * configuration and an optional pcap capture, in one call, with everything closed again on failure.
 *
 * @module
 */

import { CaptureDevice } from "../phy/capture.ts";
import type { Device } from "../phy/device.ts";
import { TunDevice } from "../phy/tun.ts";
import { ImpairedDevice, type ImpairmentSpec } from "../phy/impair.ts";
import type { TcpLayerOptions } from "../tcp/config.ts";
import type { Ipv4Cidr } from "../wire/ipv4_address.ts";
import { type ServiceName, Stack } from "./stack.ts";

/** Options of {@link openTunStack}. */
export interface TunStackOptions {
  /** Device name; default `tun0`. */
  iface?: string;
  /** The stack's address. */
  address: Ipv4Cidr;
  /** Address given to the host side; `null` leaves the host side unconfigured (but up). */
  hostAddress: Ipv4Cidr | null;
  /** MTU; default 1500. */
  mtu?: number;
  /** Services to run. */
  services?: readonly ServiceName[];
  /** Path of a pcap file receiving every packet in and out. */
  capturePath?: string;
  /** Test-only: impair traffic (loss, reordering, duplication) between the device and the stack. */
  impairment?: ImpairmentSpec;
  /** TCP tunables. */
  tcp?: TcpLayerOptions;
  /** Checksum and segmentation offload on the TUN device (see `TunOptions.offload`); default true. */
  offload?: boolean;
}

/** A stack and what it opened, so that closing it closes everything. */
export interface OpenedStack {
  /** The running stack. */
  stack: Stack;
  /** Closes the stack, the device and the capture file. */
  close(): Promise<void>;
}

/** Creates the TUN device (and capture) and starts a stack on it. */
export function openTunStack(options: TunStackOptions): OpenedStack {
  const tun = TunDevice.open({
    name: options.iface ?? "tun0",
    mtu: options.mtu ?? 1500,
    hostAddress: options.hostAddress,
    offload: options.offload ?? true,
  });
  let file: Deno.FsFile | null = null;
  let device: Device = tun;
  try {
    if (options.impairment !== undefined) device = new ImpairedDevice(device, options.impairment);
    // The capture wraps the impairment: it shows what the stack itself received and sent.
    if (options.capturePath !== undefined) {
      file = Deno.openSync(options.capturePath, { write: true, create: true, truncate: true });
      device = new CaptureDevice(device, file);
    }
    const stack = new Stack({
      device,
      address: options.address,
      services: options.services,
      tcp: options.tcp,
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
    tun.close();
    throw error;
  }
}

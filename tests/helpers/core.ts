/**
 * The stack's core for protocol tests: the layers wired by {@link StackCore} (the one place that wires
 * them), driven directly by the test with packets and a virtual clock. What the core sends on its own goes
 * to the same collector the test passes to `ingress`/`poll`.
 *
 * @module
 */

import { StackCore, type StackCoreOptions } from "../../lib/stack/core.ts";
import { parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";
import type { FrameSink } from "../../lib/iface/ethernet_interface.ts";
import { CollectingSink } from "./packets.ts";

/** Collects the frames a layer sends. */
export class FrameCollector implements FrameSink {
  /** Frames sent, oldest first. */
  readonly frames: Uint8Array[] = [];
  /** Copies and keeps `frame`. */
  sendFrame(frame: Uint8Array): void {
    this.frames.push(frame.slice());
  }
  /** Removes and returns every frame collected so far. */
  take(): Uint8Array[] {
    return this.frames.splice(0);
  }
}

/**
 * Options of the test cores: those of {@link StackCore}, with the address as text (default 10.0.0.2/24);
 * IPv6 is off unless `ipv6: true`.
 */
export type TestCoreOptions = Partial<Omit<StackCoreOptions, "address" | "medium">> & { address?: string };

function options(medium: "ip" | "ethernet", o: TestCoreOptions): StackCoreOptions {
  return {
    mtu: 1500,
    announce: false,
    // IPv4 protocol tests start from a quiet link: no IPv6 (DAD, MLD, router solicitations) unless asked.
    ipv6: false,
    ...o,
    medium,
    address: parseIpv4Cidr(o.address ?? "10.0.0.2/24")!,
    tcp: { secret: new Uint8Array(16).fill(5), random: () => 0x1234_5678, ...o.tcp },
  };
}

/** A core on an IP medium (as on TUN); `out` collects what it sends. */
export function ipCore(o: TestCoreOptions = {}, now = 0): { core: StackCore; out: CollectingSink } {
  const out = new CollectingSink();
  return { core: new StackCore(options("ip", o), (p) => out.sendIpv4(p), now), out };
}

/** A core on Ethernet (as on TAP); `out` collects what it sends. */
export function ethernetCore(o: TestCoreOptions = {}, now = 0): { core: StackCore; out: FrameCollector } {
  const out = new FrameCollector();
  return { core: new StackCore(options("ethernet", o), (f) => out.sendFrame(f), now), out };
}

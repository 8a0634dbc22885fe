/**
 * Wiring of the DHCPv4 client into an Ethernet interface: binds UDP port 68, polls the client with the
 * Ethernet layer's IPv4 sink, and applies lease events to the interface (address, prefix, gateway from the
 * router option, gratuitous ARP). Still sans-I/O: the owner's loop keeps calling `ethernet.poll`.
 *
 * @module
 */

import type { EthernetInterface } from "../iface/ethernet_interface.ts";
import type { UdpLayer } from "../udp/layer.ts";
import { DHCP_CLIENT_PORT } from "../wire/dhcp.ts";
import { DhcpClient, type DhcpClientOptions, type DhcpLease, type DhcpLossReason } from "./client.ts";

export * from "./client.ts";

/** Options of {@link attachDhcpClient}: the client's, minus the MAC (taken from the interface). */
export interface AttachDhcpOptions
  extends Omit<DhcpClientOptions, "mac" | "onBound" | "onRenewed" | "onLost"> {
  /** Called after the interface was configured from a new lease (e.g. log "ready"). */
  onBound?: (lease: DhcpLease, now: number) => void;
  /** Called after a renewal with the same address. */
  onRenewed?: (lease: DhcpLease, now: number) => void;
  /** Called after the interface was unconfigured because the lease was lost. */
  onLost?: (reason: DhcpLossReason, lease: DhcpLease, now: number) => void;
  /**
   * Whether the router option replaces the interface's gateway; default true. When false, the gateway
   * given by the owner (e.g. `--gateway`) is kept.
   */
  useRouter?: boolean;
  /**
   * Probe a new address by ARP before using it (RFC 2131 §4.4.1, RFC 5227) and decline it when another
   * host answers; default true. Binding then waits `addressCheckMs` (default 1000 ms).
   */
  checkAddress?: boolean;
}

/**
 * Creates a DHCP client for `ethernet`, binds it to UDP port 68 of `udp`, registers it as a poller of
 * `ethernet`, and starts it at `now`: the first DISCOVER goes out at the next `ethernet.poll`.
 * On a lease the interface gets the address and prefix, the router as gateway (unless `useRouter` is
 * false), and announces itself by gratuitous ARP at its next poll; on loss it is unconfigured.
 * Throws when port 68 is taken.
 */
export function attachDhcpClient(
  ethernet: EthernetInterface,
  udp: UdpLayer,
  now: number,
  options: AttachDhcpOptions = {},
): DhcpClient {
  const useRouter = options.useRouter ?? true;
  const client = new DhcpClient({
    ...options,
    mac: ethernet.mac,
    addressCheck: options.checkAddress === false ? undefined : {
      start: (address) => ethernet.startProbe(address),
      inUse: (address) => ethernet.probeConflict(address),
    },
    onBound(lease, at) {
      ethernet.configure(
        { address: lease.address, prefixLength: lease.prefixLength },
        useRouter ? lease.router : ethernet.gateway,
      );
      options.onBound?.(lease, at);
    },
    onRenewed(lease, at) {
      if (useRouter && lease.router !== ethernet.gateway) ethernet.setGateway(lease.router);
      options.onRenewed?.(lease, at);
    },
    onLost(reason, lease, at) {
      if (reason !== "released") ethernet.unconfigure();
      options.onLost?.(reason, lease, at);
    },
  });
  // DHCPv4 only: a datagram to port 68 over IPv6 is not for this client.
  udp.bind(DHCP_CLIENT_PORT, (datagram, at, out) => {
    if (datagram.family !== 6) client.ingress(datagram, at, out);
  });
  ethernet.addPoller(client);
  client.start(now);
  return client;
}

/**
 * The echo service over UDP (RFC 862): each datagram received on port 7, over IPv4 or IPv6, is sent back
 * to its sender.
 *
 * @module
 */

import type { UdpLayer } from "../udp/layer.ts";
import type { Ipv4Address } from "../wire/ipv4_address.ts";

/** The echo port (RFC 862). */
export const ECHO_PORT = 7;

/**
 * Binds UDP echo on `udp`. The reply is sent from inside the receive path, with no copy and no queue.
 * `localAddress` gives the stack's address, used as the reply's source even for broadcast requests.
 */
export function bindUdpEcho(udp: UdpLayer, localAddress: () => Ipv4Address, port = ECHO_PORT): void {
  udp.bind(port, (d, _now, out) => {
    udp.reply(out, d, d.data, localAddress());
  });
}

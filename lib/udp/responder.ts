/**
 * Request/response over UDP answered from inside the receive path: the reply goes out before the received
 * datagram's buffer is reused, with no copy and no queue (UDP echo, RFC 862).
 *
 * @module
 */

import type { Ipv4Address } from "../wire/ipv4_address.ts";
import type { UdpLayer } from "./layer.ts";

/** Computes the reply payload to a datagram's payload, or `null` for no reply. */
export type DatagramAnswer = (data: Uint8Array) => Uint8Array | null;

/** Something that answers datagrams on a port: the stack, or a test harness. */
export interface DatagramResponder {
  /** Answers each datagram to `port` with `answer`'s reply; returns a function that unbinds the port. */
  answerDatagrams(port: number, answer: DatagramAnswer): () => void;
}

/**
 * Binds `port` on `udp` so that each datagram, over IPv4 or IPv6, is answered to its sender: over IPv4 from
 * `localAddress()` (the interface's address, also for broadcast requests). Returns a function that unbinds the port.
 */
export function bindResponder(
  udp: UdpLayer,
  localAddress: () => Ipv4Address,
  port: number,
  answer: DatagramAnswer,
): () => void {
  udp.bind(port, (d, _now, out) => {
    const reply = answer(d.data);
    // Over IPv4 from the interface's address (also for broadcast requests); over IPv6 from the address
    // the request was sent to.
    if (reply !== null) udp.reply(out, d, reply, localAddress());
  });
  return () => udp.unbind(port);
}

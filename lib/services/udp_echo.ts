/**
 * The echo service over UDP (RFC 862): each datagram received on port 7, over IPv4 or IPv6, is sent back
 * to its sender.
 *
 * @module
 */

import type { DatagramResponder } from "../udp/responder.ts";

/** The echo port (RFC 862). */
export const ECHO_PORT = 7;

/**
 * Serves UDP echo on `port` of `host`. The reply is sent from inside the receive path, with no copy and
 * no queue. Returns a function that stops it.
 */
export function serveUdpEcho(host: DatagramResponder, port = ECHO_PORT): () => void {
  return host.answerDatagrams(port, (data) => data);
}

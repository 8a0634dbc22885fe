/**
 * IPv6 addresses as text for the tracer: the wire layer's parser and RFC 5952 formatter, which the
 * tracer's filters and packet lines share with the stack.
 *
 * @module
 */

export { formatIpv6, parseIpv6 } from "../wire/ipv6_address.ts";

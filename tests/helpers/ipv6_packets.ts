/**
 * Builders of IPv6 test packets: a fixed header followed by extension headers given as raw bytes, for the
 * wire and interface unit tests.
 *
 * @module
 */

import { writeIpv6Header } from "../../lib/wire/ipv6.ts";
import { parseIpv6 } from "../../lib/wire/ipv6_address.ts";
import { finishIcmpv6Checksum, writeIcmpv6Echo } from "../../lib/wire/icmpv6.ts";

/** Parses an address the test knows to be valid. */
export function ip6(text: string): Uint8Array {
  const address = parseIpv6(text);
  if (address === null) throw new Error(`bad test address ${text}`);
  return address;
}

/** One extension header: its type and its bytes (the first byte, Next Header, is filled in). */
export interface TestHeader {
  /** The Next Header value naming this header. */
  type: number;
  /** The header's bytes. */
  bytes: number[];
}

/** An options header (Hop-by-Hop or Destination) of 8·n bytes holding `options` (padded with PadN/Pad1). */
export function optionsHeader(type: number, options: number[]): TestHeader {
  const body = [0, 0, ...options];
  const padding = (8 - (body.length % 8)) % 8;
  if (padding === 1) body.push(0);
  else if (padding > 1) body.push(1, padding - 2, ...new Array(padding - 2).fill(0));
  body[1] = body.length / 8 - 1;
  return { type, bytes: body };
}

/** A Fragment header. */
export function fragmentHeader(offset: number, more: boolean, id: number): TestHeader {
  return {
    type: 44,
    bytes: [
      0,
      0,
      offset >> 8,
      (offset & 0xf8) | (more ? 1 : 0),
      id >>> 24,
      (id >> 16) & 0xff,
      (id >> 8) & 0xff,
      id & 0xff,
    ],
  };
}

/** A packet: fixed header, `headers` chained in order, then `upper` bytes as protocol `upperType`. */
export function chainPacket(
  headers: TestHeader[],
  upperType: number,
  upper: Uint8Array,
  src = ip6("fd00::1"),
  dst = ip6("fd00::2"),
  hopLimit = 64,
): Uint8Array {
  const extLength = headers.reduce((sum, h) => sum + h.bytes.length, 0);
  const packet = new Uint8Array(40 + extLength + upper.length);
  writeIpv6Header(
    packet,
    0,
    src,
    dst,
    headers.length > 0 ? headers[0].type : upperType,
    extLength + upper.length,
    hopLimit,
  );
  let offset = 40;
  headers.forEach((h, i) => {
    packet.set(h.bytes, offset);
    packet[offset] = i + 1 < headers.length ? headers[i + 1].type : upperType;
    offset += h.bytes.length;
  });
  packet.set(upper, offset);
  return packet;
}

/** An ICMPv6 echo request packet with `data`, checksum included. */
export function echoRequest6(
  src: Uint8Array,
  dst: Uint8Array,
  data: Uint8Array,
  id = 7,
  seq = 1,
  hopLimit = 64,
): Uint8Array {
  const packet = new Uint8Array(40 + 8 + data.length);
  const length = writeIcmpv6Echo(packet, 40, 128, id, seq, data);
  writeIpv6Header(packet, 0, src, dst, 58, length, hopLimit);
  finishIcmpv6Checksum(packet, 0, 40, 40 + length);
  return packet;
}

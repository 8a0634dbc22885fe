/**
 * Composable packet builders and assertions for tests: build exact IPv4/ICMP/UDP packets, and check what
 * the stack sent field by field.
 *
 * @module
 */

import assert from "node:assert/strict";
import { IpProtocol, IPV4_HEADER_LENGTH, Ipv4Packet, writeIpv4Header } from "../../lib/wire/ipv4.ts";
import { Icmpv4Message, Icmpv4Type, writeIcmpv4Echo } from "../../lib/wire/icmpv4.ts";
import { UDP_HEADER_LENGTH, UdpDatagram, writeUdpHeader } from "../../lib/wire/udp.ts";
import { parseIpv4 } from "../../lib/wire/ipv4_address.ts";
import type { Ipv4Sink } from "../../lib/iface/protocol.ts";

/** Parses a dotted quad or fails the test. */
export function ip(text: string): number {
  const address = parseIpv4(text);
  assert.ok(address !== null, `bad address in test: ${text}`);
  return address;
}

/** An ICMP echo request as a whole IPv4 packet. */
export function echoRequest(src: string, dst: string, id: number, seq: number, data: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(IPV4_HEADER_LENGTH + 8 + data.length);
  const length = writeIcmpv4Echo(bytes, IPV4_HEADER_LENGTH, Icmpv4Type.ECHO_REQUEST, id, seq, data);
  writeIpv4Header(bytes, 0, ip(src), ip(dst), IpProtocol.ICMP, length);
  return bytes;
}

/** A UDP datagram as a whole IPv4 packet (`checksum: false` sends a zero checksum). */
export function udpPacket(
  src: string,
  srcPort: number,
  dst: string,
  dstPort: number,
  data: Uint8Array,
  options: { checksum?: boolean } = {},
): Uint8Array {
  const bytes = new Uint8Array(IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH + data.length);
  bytes.set(data, IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH);
  writeUdpHeader(bytes, IPV4_HEADER_LENGTH, ip(src), ip(dst), srcPort, dstPort, data.length);
  if (options.checksum === false) {
    bytes[IPV4_HEADER_LENGTH + 6] = 0;
    bytes[IPV4_HEADER_LENGTH + 7] = 0;
  }
  writeIpv4Header(bytes, 0, ip(src), ip(dst), IpProtocol.UDP, UDP_HEADER_LENGTH + data.length);
  return bytes;
}

/** A sink that keeps copies of what is sent. */
export class CollectingSink implements Ipv4Sink {
  /** Packets sent, oldest first. */
  readonly packets: Uint8Array[] = [];
  sendIpv4(packet: Uint8Array): void {
    this.packets.push(packet.slice());
  }
  /** Removes and returns every packet collected so far. */
  take(): Uint8Array[] {
    return this.packets.splice(0);
  }
}

/** Asserts a valid IPv4 packet with the given fields and returns its view. */
export function expectIpv4(
  bytes: Uint8Array,
  fields: { src?: string; dst?: string; protocol?: number } = {},
): Ipv4Packet {
  const packet = new Ipv4Packet(bytes);
  assert.equal(packet.check(), null, "the stack sent an invalid IPv4 packet");
  if (fields.src !== undefined) assert.equal(packet.src, ip(fields.src), "source address");
  if (fields.dst !== undefined) assert.equal(packet.dst, ip(fields.dst), "destination address");
  if (fields.protocol !== undefined) assert.equal(packet.protocol, fields.protocol, "protocol");
  return packet;
}

/** Asserts a valid ICMP message of `type`/`code` inside `bytes` and returns its view. */
export function expectIcmp(
  bytes: Uint8Array,
  fields: { src?: string; dst?: string; type: number; code?: number },
): Icmpv4Message {
  const packet = expectIpv4(bytes, { src: fields.src, dst: fields.dst, protocol: IpProtocol.ICMP });
  const icmp = new Icmpv4Message(packet.payload());
  assert.equal(icmp.check(), null, "the stack sent an invalid ICMP message");
  assert.equal(icmp.type, fields.type, "ICMP type");
  if (fields.code !== undefined) assert.equal(icmp.code, fields.code, "ICMP code");
  return icmp;
}

/** Asserts a valid UDP datagram (checksum verified) and returns its view. */
export function expectUdp(
  bytes: Uint8Array,
  fields: { src?: string; dst?: string; srcPort?: number; dstPort?: number },
): UdpDatagram {
  const packet = expectIpv4(bytes, { src: fields.src, dst: fields.dst, protocol: IpProtocol.UDP });
  const udp = new UdpDatagram(packet.payload());
  assert.equal(udp.check(packet.src, packet.dst), null, "the stack sent an invalid UDP datagram");
  assert.notEqual(udp.checksum, 0, "UDP checksum must be filled in");
  if (fields.srcPort !== undefined) assert.equal(udp.srcPort, fields.srcPort, "source port");
  if (fields.dstPort !== undefined) assert.equal(udp.dstPort, fields.dstPort, "destination port");
  return udp;
}

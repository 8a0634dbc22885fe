/**
 * ARP (RFC 826) for IPv4 over Ethernet: a checked view and a writer. Only hardware type 1 (Ethernet,
 * 6-byte addresses) with protocol type 0x0800 (IPv4, 4-byte addresses) is accepted; everything else is
 * reported by {@link ArpPacket.check} under a named reason.
 *
 * @module
 */

import { type Ipv4Address, readIpv4, writeIpv4 } from "./ipv4_address.ts";
import { EtherType, type MacAddress, readMac, writeMac } from "./ethernet.ts";
import { ByteView } from "./view.ts";

/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LENGTH = 28;

/** ARP operation codes (RFC 826). */
export const ArpOperation = {
  REQUEST: 1,
  REPLY: 2,
} as const;

/** Why a received ARP packet is unusable; each reason is a drop counter. */
export type ArpError = "truncated" | "unsupported-hardware" | "unsupported-protocol" | "bad-operation";

const HARDWARE_ETHERNET = 1;

/** A reusable view of an ARP packet (the Ethernet payload). */
export class ArpPacket extends ByteView {
  /** Validates length, hardware/protocol types and sizes, and the operation. Returns `null` when valid. */
  check(): ArpError | null {
    const b = this.bytes;
    if (b.length < ARP_LENGTH) return "truncated";
    if (((b[0] << 8) | b[1]) !== HARDWARE_ETHERNET || b[4] !== 6) return "unsupported-hardware";
    if (((b[2] << 8) | b[3]) !== EtherType.IPV4 || b[5] !== 4) return "unsupported-protocol";
    const op = (b[6] << 8) | b[7];
    if (op !== ArpOperation.REQUEST && op !== ArpOperation.REPLY) return "bad-operation";
    return null;
  }

  /** Operation: {@link ArpOperation.REQUEST} or {@link ArpOperation.REPLY}. */
  get operation(): number {
    return (this.bytes[6] << 8) | this.bytes[7];
  }
  /** Sender hardware address. */
  get senderMac(): MacAddress {
    return readMac(this.bytes, 8);
  }
  /** Sender protocol address. */
  get senderIp(): Ipv4Address {
    return readIpv4(this.bytes, 14);
  }
  /** Target hardware address (zero in requests). */
  get targetMac(): MacAddress {
    return readMac(this.bytes, 18);
  }
  /** Target protocol address. */
  get targetIp(): Ipv4Address {
    return readIpv4(this.bytes, 24);
  }
}

/** Writes an Ethernet/IPv4 ARP packet at `buf[offset..offset+28)` and returns its length (28). */
export function writeArp(
  buf: Uint8Array,
  offset: number,
  operation: number,
  senderMac: MacAddress,
  senderIp: Ipv4Address,
  targetMac: MacAddress,
  targetIp: Ipv4Address,
): number {
  buf[offset] = 0;
  buf[offset + 1] = HARDWARE_ETHERNET;
  buf[offset + 2] = EtherType.IPV4 >> 8;
  buf[offset + 3] = EtherType.IPV4 & 0xff;
  buf[offset + 4] = 6;
  buf[offset + 5] = 4;
  buf[offset + 6] = operation >> 8;
  buf[offset + 7] = operation & 0xff;
  writeMac(buf, offset + 8, senderMac);
  writeIpv4(buf, offset + 14, senderIp);
  writeMac(buf, offset + 18, targetMac);
  writeIpv4(buf, offset + 24, targetIp);
  return ARP_LENGTH;
}

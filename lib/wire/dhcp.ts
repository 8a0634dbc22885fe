/**
 * DHCPv4 messages (RFC 2131 §2, BOOTP layout of RFC 951) and their options (RFC 2132): a checked view of
 * the fixed part, an options parser that never throws on malformed input, and a writer.
 *
 * Layout: op, htype, hlen, hops (4) · xid (4) · secs, flags (4) · ciaddr, yiaddr, siaddr, giaddr (16) ·
 * chaddr (16) · sname (64) · file (128) · magic cookie 99.130.83.99 (4) · options.
 *
 * Option overload (option 52, options in `sname`/`file`) is not supported: the parser reads the options
 * field only and records `overloaded` so that a client can tell. Options split into several instances are
 * concatenated as RFC 3396 §7 requires.
 *
 * @module
 */

import { type Ipv4Address, readIpv4, writeIpv4 } from "./ipv4_address.ts";
import { type MacAddress, readMac, writeMac } from "./ethernet.ts";
import { ByteView } from "./view.ts";

/** UDP port of DHCP servers (and relays). */
export const DHCP_SERVER_PORT = 67;
/** UDP port of DHCP clients. */
export const DHCP_CLIENT_PORT = 68;

/** Offset of the magic cookie; the fixed BOOTP part ends here. */
export const DHCP_COOKIE_OFFSET = 236;
/** Offset of the first option. */
export const DHCP_OPTIONS_OFFSET = 240;
/** The magic cookie 99.130.83.99 (RFC 2131 §3). */
export const DHCP_MAGIC_COOKIE = 0x63825363;
/**
 * Smallest message sent: RFC 1542 §3.2 notes relay agents that drop BOOTP messages shorter than 300 bytes,
 * so short messages are padded with pad options.
 */
export const DHCP_MIN_MESSAGE_LENGTH = 300;

/** BOOTP `op` values. */
export const BootpOp = {
  REQUEST: 1,
  REPLY: 2,
} as const;

/** The BROADCAST bit of `flags` (RFC 2131 §2, figure 2). */
export const DHCP_FLAG_BROADCAST = 0x8000;

/** DHCP message types (option 53, RFC 2132 §9.6). */
export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** Option codes (RFC 2132) the stack reads or writes. */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVERS: 6,
  HOSTNAME: 12,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_ID: 61,
  END: 255,
} as const;

/** Why a received DHCP message is unusable; each reason is a drop counter. */
export type DhcpError = "truncated" | "bad-cookie" | "unsupported-hardware";

/** A reusable view of the fixed part of a DHCP message (the UDP payload). */
export class DhcpMessage extends ByteView {
  /** Validates the length, the magic cookie and an Ethernet hardware type. Returns `null` when valid. */
  check(): DhcpError | null {
    const b = this.bytes;
    if (b.length < DHCP_OPTIONS_OFFSET) return "truncated";
    if (readIpv4(b, DHCP_COOKIE_OFFSET) !== DHCP_MAGIC_COOKIE) return "bad-cookie";
    if (b[1] !== 1 || b[2] !== 6) return "unsupported-hardware";
    return null;
  }

  /** 1 for a request (client to server), 2 for a reply. */
  get op(): number {
    return this.bytes[0];
  }
  /** Transaction id chosen by the client. */
  get xid(): number {
    return readIpv4(this.bytes, 4);
  }
  /** Seconds elapsed since the client began acquisition or renewal. */
  get secs(): number {
    return (this.bytes[8] << 8) | this.bytes[9];
  }
  /** Flags; see {@link DHCP_FLAG_BROADCAST}. */
  get flags(): number {
    return (this.bytes[10] << 8) | this.bytes[11];
  }
  /** Client's current address (only when it can answer ARP for it). */
  get ciaddr(): Ipv4Address {
    return readIpv4(this.bytes, 12);
  }
  /** "Your" address: the address offered or assigned. */
  get yiaddr(): Ipv4Address {
    return readIpv4(this.bytes, 16);
  }
  /** Next server address (BOOTP). */
  get siaddr(): Ipv4Address {
    return readIpv4(this.bytes, 20);
  }
  /** Relay agent address. */
  get giaddr(): Ipv4Address {
    return readIpv4(this.bytes, 24);
  }
  /** Client hardware address (the first 6 bytes of chaddr). */
  get chaddr(): MacAddress {
    return readMac(this.bytes, 28);
  }
  /** The options field: everything after the cookie. */
  options(): Uint8Array {
    return this.bytes.subarray(DHCP_OPTIONS_OFFSET);
  }
}

/**
 * Parsed options of one message. The parser stops at the end option, at the end of the bytes, or at the
 * first option whose length runs past the end (then {@link DhcpOptions.malformed} is set); typed getters
 * return `null` when an option is absent or has a length its definition does not allow. Nothing throws.
 */
export class DhcpOptions {
  readonly #values = new Map<number, Uint8Array>();
  /** Whether the options were cut short (an option's length ran past the message). */
  malformed = false;
  /** Whether no end option (255) was found before the bytes ended. */
  unterminated = false;
  /** Whether option 52 asks to read options from `sname`/`file` too (not supported, see module comment). */
  overloaded = false;

  /** Parses `bytes` (the options field, after the cookie). */
  constructor(bytes: Uint8Array) {
    let i = 0;
    let ended = false;
    while (i < bytes.length) {
      const code = bytes[i];
      if (code === DhcpOption.PAD) {
        i++;
        continue;
      }
      if (code === DhcpOption.END) {
        ended = true;
        break;
      }
      if (i + 1 >= bytes.length || i + 2 + bytes[i + 1] > bytes.length) {
        this.malformed = true;
        break;
      }
      const length = bytes[i + 1];
      const value = bytes.subarray(i + 2, i + 2 + length);
      const previous = this.#values.get(code);
      if (previous === undefined) {
        this.#values.set(code, value);
      } else {
        // RFC 3396 §7: several instances of one option are concatenated in order.
        const joined = new Uint8Array(previous.length + value.length);
        joined.set(previous);
        joined.set(value, previous.length);
        this.#values.set(code, joined);
      }
      i += 2 + length;
    }
    this.unterminated = !ended && !this.malformed;
    this.overloaded = this.#values.has(DhcpOption.OVERLOAD);
  }

  /** The raw value of option `code`, or `undefined` when absent. */
  get(code: number): Uint8Array | undefined {
    return this.#values.get(code);
  }

  /** Whether option `code` is present. */
  has(code: number): boolean {
    return this.#values.has(code);
  }

  /** The codes present, in first-seen order. */
  codes(): number[] {
    return [...this.#values.keys()];
  }

  #u8(code: number): number | null {
    const v = this.#values.get(code);
    return v !== undefined && v.length === 1 ? v[0] : null;
  }

  #u32(code: number): number | null {
    const v = this.#values.get(code);
    return v !== undefined && v.length === 4 ? readIpv4(v, 0) : null;
  }

  #addresses(code: number): Ipv4Address[] | null {
    const v = this.#values.get(code);
    if (v === undefined || v.length === 0 || v.length % 4 !== 0) return null;
    const list: Ipv4Address[] = [];
    for (let i = 0; i < v.length; i += 4) list.push(readIpv4(v, i));
    return list;
  }

  /** Option 53: the DHCP message type. */
  get messageType(): number | null {
    return this.#u8(DhcpOption.MESSAGE_TYPE);
  }
  /** Option 1: the subnet mask. */
  get subnetMask(): Ipv4Address | null {
    return this.#u32(DhcpOption.SUBNET_MASK);
  }
  /** Option 3: routers, in order of preference. */
  get routers(): Ipv4Address[] | null {
    return this.#addresses(DhcpOption.ROUTER);
  }
  /** Option 6: DNS servers. */
  get dnsServers(): Ipv4Address[] | null {
    return this.#addresses(DhcpOption.DNS_SERVERS);
  }
  /** Option 51: lease time in seconds (0xffffffff: infinite). */
  get leaseTime(): number | null {
    return this.#u32(DhcpOption.LEASE_TIME);
  }
  /** Option 54: the server identifier. */
  get serverId(): Ipv4Address | null {
    return this.#u32(DhcpOption.SERVER_ID);
  }
  /** Option 50: the requested address. */
  get requestedAddress(): Ipv4Address | null {
    return this.#u32(DhcpOption.REQUESTED_ADDRESS);
  }
  /** Option 58: renewal (T1) time in seconds. */
  get renewalTime(): number | null {
    return this.#u32(DhcpOption.RENEWAL_TIME);
  }
  /** Option 59: rebinding (T2) time in seconds. */
  get rebindingTime(): number | null {
    return this.#u32(DhcpOption.REBINDING_TIME);
  }
  /** Option 56: a message from the server (e.g. why it sent NAK), as text. */
  get message(): string | null {
    const v = this.#values.get(DhcpOption.MESSAGE);
    return v === undefined ? null : new TextDecoder().decode(v);
  }
  /** Option 12: host name, as text. */
  get hostname(): string | null {
    const v = this.#values.get(DhcpOption.HOSTNAME);
    return v === undefined ? null : new TextDecoder().decode(v);
  }
}

/** Fixed fields of an outgoing message; omitted ones are zero. */
export interface DhcpHeaderFields {
  /** {@link BootpOp.REQUEST} from clients, {@link BootpOp.REPLY} from servers. */
  op: number;
  /** Transaction id. */
  xid: number;
  /** Client hardware address. */
  chaddr: MacAddress;
  /** Seconds since acquisition began. */
  secs?: number;
  /** Flags, e.g. {@link DHCP_FLAG_BROADCAST}. */
  flags?: number;
  /** Client address. */
  ciaddr?: Ipv4Address;
  /** Your address. */
  yiaddr?: Ipv4Address;
  /** Next server address. */
  siaddr?: Ipv4Address;
  /** Relay agent address. */
  giaddr?: Ipv4Address;
}

/**
 * Writes the fixed part and the magic cookie at `buf[offset..offset+240)` (sname and file zeroed) and
 * returns the offset where options start. Follow with {@link DhcpOptionWriter} calls.
 */
export function writeDhcpHeader(buf: Uint8Array, offset: number, fields: DhcpHeaderFields): number {
  buf.fill(0, offset, offset + DHCP_OPTIONS_OFFSET);
  buf[offset] = fields.op;
  buf[offset + 1] = 1; // htype: Ethernet (RFC 1700 hardware types)
  buf[offset + 2] = 6; // hlen
  writeIpv4(buf, offset + 4, fields.xid >>> 0);
  const secs = Math.min(0xffff, Math.max(0, Math.floor(fields.secs ?? 0)));
  buf[offset + 8] = secs >> 8;
  buf[offset + 9] = secs & 0xff;
  const flags = fields.flags ?? 0;
  buf[offset + 10] = flags >> 8;
  buf[offset + 11] = flags & 0xff;
  writeIpv4(buf, offset + 12, fields.ciaddr ?? 0);
  writeIpv4(buf, offset + 16, fields.yiaddr ?? 0);
  writeIpv4(buf, offset + 20, fields.siaddr ?? 0);
  writeIpv4(buf, offset + 24, fields.giaddr ?? 0);
  writeMac(buf, offset + 28, fields.chaddr);
  writeIpv4(buf, offset + DHCP_COOKIE_OFFSET, DHCP_MAGIC_COOKIE);
  return offset + DHCP_OPTIONS_OFFSET;
}

/**
 * Appends options after {@link writeDhcpHeader}. Each method returns the writer; {@link DhcpOptionWriter.end}
 * writes the end option, pads to {@link DHCP_MIN_MESSAGE_LENGTH}, and returns the message length.
 * Throws RangeError when an option does not fit `buf` or a value is longer than 255 bytes (a programming
 * error: the stack writes only its own options).
 */
export class DhcpOptionWriter {
  #position: number;

  /** Writes into `buf` from `position` (the value {@link writeDhcpHeader} returned); `start` is the message start. */
  constructor(readonly buf: Uint8Array, position: number, readonly start = position - DHCP_OPTIONS_OFFSET) {
    this.#position = position;
  }

  #room(bytes: number): void {
    if (this.#position + bytes > this.buf.length) throw new RangeError("DHCP options do not fit the buffer");
  }

  /** An option with raw bytes. */
  bytes(code: number, value: Uint8Array): this {
    if (value.length > 255) throw new RangeError(`DHCP option ${code} is longer than 255 bytes`);
    this.#room(2 + value.length);
    this.buf[this.#position] = code;
    this.buf[this.#position + 1] = value.length;
    this.buf.set(value, this.#position + 2);
    this.#position += 2 + value.length;
    return this;
  }

  /** A one-byte option (e.g. the message type). */
  u8(code: number, value: number): this {
    this.#room(3);
    this.buf[this.#position] = code;
    this.buf[this.#position + 1] = 1;
    this.buf[this.#position + 2] = value;
    this.#position += 3;
    return this;
  }

  /** A four-byte option: an address or a 32-bit time. */
  u32(code: number, value: number): this {
    this.#room(6);
    this.buf[this.#position] = code;
    this.buf[this.#position + 1] = 4;
    writeIpv4(this.buf, this.#position + 2, value >>> 0);
    this.#position += 6;
    return this;
  }

  /** The end option, then pad options up to the minimum length; returns the message length. */
  end(): number {
    this.#room(1);
    this.buf[this.#position++] = DhcpOption.END;
    const minimumEnd = this.start + DHCP_MIN_MESSAGE_LENGTH;
    if (this.#position < minimumEnd) {
      this.#room(minimumEnd - this.#position);
      this.buf.fill(DhcpOption.PAD, this.#position, minimumEnd);
      this.#position = minimumEnd;
    }
    return this.#position - this.start;
  }
}

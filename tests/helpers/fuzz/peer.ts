/**
 * Fuzzing: the peer. It watches what the core sends (TCP sequence numbers, timestamps, ARP requests, DHCP
 * transaction ids) so that it can send valid packets deep into the core's state (handshakes completed,
 * data in and out of order, SACK blocks over real data, FIN, exact and inexact RSTs, DHCP offers with the
 * right transaction id), and makes the rest up: SYNs from many sources, UDP, ICMP, fragments, broadcasts,
 * other hosts' packets, garbage; TCP flows run over IPv4 and IPv6 alike, and the rest of IPv6 (NDP, MLD,
 * ICMPv6, fragments, extension header chains) comes from peer6.ts. The fuzz run then mutates most of it.
 *
 * @module
 */

import { IpProtocol, Ipv4Packet } from "../../../lib/wire/ipv4.ts";
import { parseTcpOptions, TcpFlags, TcpOptions, TcpSegment } from "../../../lib/wire/tcp.ts";
import { BROADCAST_MAC, EthernetFrame, EtherType } from "../../../lib/wire/ethernet.ts";
import { ArpOperation, ArpPacket, writeArp } from "../../../lib/wire/arp.ts";
import {
  BootpOp,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  DhcpMessage,
  DhcpMessageType,
  DhcpOption,
  DhcpOptions,
  DhcpOptionWriter,
  writeDhcpHeader,
} from "../../../lib/wire/dhcp.ts";
import {
  ethernetFrame,
  fragments,
  icmpPacket,
  ipv4Frame,
  ipv4Packet,
  tcpBytes,
  type TcpFields,
  tcpPacket,
  udpPacket,
} from "./build.ts";
import { type Dice, hostileTcpOptions, type Shape } from "./mutate.ts";
import { isEthernet, PEER_ADDRESS, type Setup, STACK_ADDRESS, STACK_ADDRESS6, STACK_MAC } from "./core.ts";
import { ipv6Frame, ipv6Packet, multicastMac, optionsHeader, upperLayer } from "./build6.ts";
import { Ipv6Inputs, SOURCES6 } from "./peer6.ts";

/** One input for the core: the bytes and what they hold (for structure-aware mutation). */
export interface Input {
  /** The packet or frame. */
  bytes: Uint8Array;
  /** What it holds. */
  shape: Shape;
  /** A short name of the generator, for reports. */
  kind: string;
}

/** The peer's view of one TCP connection. */
interface Flow {
  peer: number;
  /** The peer's IPv6 address for a flow over IPv6, else null. */
  peer6: Uint8Array | null;
  peerPort: number;
  stackPort: number;
  /** Next sequence number the peer sends. */
  peerNxt: number;
  /** Highest sequence number the stack has sent up to (what the peer acknowledges). */
  stackNxt: number;
  /** The stack's first sequence number seen, for SACK blocks over real data. */
  stackFirst: number;
  /** Whether the stack's SYN was seen (its ISS is known). */
  synSeen: boolean;
  /** Whether the peer still owes the stack a SYN-ACK (the stack opened actively). */
  owesSynAck: boolean;
  /** Whether the peer offered timestamps. */
  timestamps: boolean;
  /** The stack's latest TSval. */
  stackTs: number;
}

/** Peers' addresses: in the subnet, outside it, and odd ones. */
const SOURCES = [0x0a000001, 0x0a000003, 0x0a000004, 0x0a0000fe, 0xc0a80505, 0x08080808];
const ODD_SOURCES = [0, 0xffffffff, 0x0a0000ff, 0xe0000001, STACK_ADDRESS, 0x7f000001];
const PORTS = [7, 9, 19, 80, 81, 22, 5000];

function macOf(address: number): number {
  return 0x020000000000 + (address & 0xffff);
}

/** The fuzz peer: state learned from the core's output, and input generators. */
export class Peer {
  readonly #setup: Setup;
  readonly #dice: Dice;
  readonly #flows = new Map<string, Flow>();
  readonly #order: string[] = [];
  readonly #ipView = new Ipv4Packet();
  readonly #segment = new TcpSegment();
  readonly #options = new TcpOptions();
  readonly #frame = new EthernetFrame();
  readonly #arp = new ArpPacket();
  readonly #dhcp = new DhcpMessage();
  /** ARP requests from the stack not yet answered (target addresses). */
  readonly #arpAsked: number[] = [];
  /** Fragments of datagrams in progress, to be sent next. */
  readonly #pieces: Uint8Array[] = [];
  readonly #ipv6: Ipv6Inputs;
  #dhcpXid = -1;
  #dhcpType = 0;
  #ipId = 1;

  /** A peer for the core of `setup`. */
  constructor(setup: Setup, dice: Dice) {
    this.#setup = setup;
    this.#dice = dice;
    this.#ipv6 = new Ipv6Inputs(dice, isEthernet(setup));
  }

  /** Learns from one packet (IP) or frame (Ethernet) the core sent. */
  observe(bytes: Uint8Array): void {
    let packet = bytes;
    if (isEthernet(this.#setup)) {
      const frame = this.#frame.wrap(bytes);
      if (frame.etherType === EtherType.IPV6) return this.#observe6(bytes.subarray(14));
      if (frame.etherType === EtherType.ARP) {
        const arp = this.#arp.wrap(bytes.subarray(14));
        if (arp.check() === null && arp.operation === ArpOperation.REQUEST && this.#arpAsked.length < 32) {
          this.#arpAsked.push(arp.targetIp);
        }
        return;
      }
      packet = bytes.subarray(14);
    } else if (bytes.length > 0 && bytes[0] >> 4 === 6) return this.#observe6(bytes);
    const ip = this.#ipView.wrap(packet);
    if (ip.check() !== null || ip.isFragment) return;
    if (ip.protocol === IpProtocol.UDP && this.#setup === "dhcp") {
      const dhcp = this.#dhcp.wrap(packet.subarray(ip.headerLength + 8, ip.totalLength));
      if (dhcp.check() === null) {
        this.#dhcpXid = dhcp.xid;
        this.#dhcpType = new DhcpOptions(dhcp.options()).messageType ?? 0;
      }
      return;
    }
    if (ip.protocol !== IpProtocol.TCP) return;
    this.#observeTcp(this.#segment.wrap(packet, ip.headerLength, ip.totalLength), ip.dst, null);
  }

  /** Learns from an IPv6 packet the stack sent: TCP as over IPv4, the rest in the IPv6 generators. */
  #observe6(packet: Uint8Array): void {
    this.#ipv6.observe(packet);
    const upper = upperLayer(packet);
    if (upper === null || upper[0] !== IpProtocol.TCP) return;
    this.#observeTcp(this.#segment.wrap(packet, upper[1], upper[2]), 0, packet.slice(24, 40));
  }

  #observeTcp(seg: TcpSegment, peer: number, peer6: Uint8Array | null): void {
    const key = flowKey(peer, peer6, seg.dstPort, seg.srcPort);
    let flow = this.#flows.get(key);
    const flags = seg.flags;
    if (flow === undefined) {
      if ((flags & (TcpFlags.SYN | TcpFlags.ACK)) !== TcpFlags.SYN) return;
      flow = this.#addFlow(peer, seg.dstPort, seg.srcPort, this.#dice.u32(), peer6);
      flow.owesSynAck = true;
    }
    if (flags & TcpFlags.RST) {
      this.#flows.delete(key);
      return;
    }
    const opts = parseTcpOptions(seg.bytes, seg.optionsOffset, seg.payloadOffset, this.#options);
    if (opts.hasTimestamps) flow.stackTs = opts.tsVal;
    if (flags & TcpFlags.SYN) {
      flow.synSeen = true;
      flow.stackFirst = seg.seq;
      flow.stackNxt = (seg.seq + 1) >>> 0;
      return;
    }
    const end = (seg.seq + seg.sequenceLength) >>> 0;
    if (((end - flow.stackNxt) | 0) > 0) flow.stackNxt = end;
  }

  #addFlow(peer: number, peerPort: number, stackPort: number, iss: number, peer6: Uint8Array | null): Flow {
    const key = flowKey(peer, peer6, peerPort, stackPort);
    if (this.#order.length >= 128) this.#flows.delete(this.#order.shift()!);
    const flow: Flow = {
      peer,
      peer6,
      peerPort,
      stackPort,
      peerNxt: iss,
      stackNxt: 0,
      stackFirst: 0,
      synSeen: false,
      owesSynAck: false,
      timestamps: this.#dice.chance(0.6),
      stackTs: 0,
    };
    this.#flows.set(key, flow);
    this.#order.push(key);
    return flow;
  }

  /** The next input: a valid packet of some kind, in a frame on Ethernet. `now` feeds timestamps. */
  next(now: number): Input {
    const d = this.#dice;
    if (isEthernet(this.#setup)) {
      const r = d.int(100);
      if (r < 8) return { bytes: this.#arpFrame(), shape: "ethernet-arp", kind: "arp" };
      if (r < 10) return { bytes: d.bytes(d.int(80)), shape: "raw", kind: "garbage-frame" };
      if (r < 12) {
        const type = d.pick([EtherType.IPV6, 0x8100, 0x88cc, 0x0800, 100, 1500, 0x0806]);
        return {
          bytes: ethernetFrame(STACK_MAC, macOf(PEER_ADDRESS), type, d.bytes(d.int(64))),
          shape: "raw",
          kind: "ethertype",
        };
      }
      if (this.#setup === "dhcp" && r < 40) return this.#dhcpReply(now);
      const inner = this.#ipInput(now);
      const src = d.chance(0.97) ? macOf(PEER_ADDRESS) : d.pick([STACK_MAC, 0x01005e000001, 0x333300000001]);
      if (inner.shape === "ipv6") {
        // Multicast to the group's MAC (RFC 2464 §7), sometimes to ours or another's.
        const group = inner.bytes.length >= 40 && inner.bytes[24] === 0xff;
        const dst = d.chance(0.9) ? (group ? multicastMac(inner.bytes) : STACK_MAC) : d.pick([
          BROADCAST_MAC,
          0x333300000001,
          0x3333ff000002,
          STACK_MAC,
          0x020000000099,
        ]);
        return { bytes: ipv6Frame(dst, src, inner.bytes), shape: "ethernet-ipv6", kind: inner.kind };
      }
      const dst = d.chance(0.9) ? STACK_MAC : d.pick([BROADCAST_MAC, 0x01005e000001, 0x020000000099]);
      return { bytes: ipv4Frame(dst, src, inner.bytes), shape: "ethernet-ipv4", kind: inner.kind };
    }
    return this.#ipInput(now);
  }

  #ipInput(now: number): Input {
    const d = this.#dice;
    const r = d.int(100);
    const ip = (bytes: Uint8Array, kind: string): Input => ({
      bytes,
      shape: bytes.length > 0 && bytes[0] >> 4 === 6 ? "ipv6" : "ipv4",
      kind,
    });
    if (r < 45 && this.#order.length > 0) return ip(this.#onFlow(now), "tcp-flow");
    if (r < 55) return ip(this.#syn(now), "tcp-syn");
    if (r < 60 || d.chance(0.3)) {
      const p = this.#ipv6.next();
      return ip(p.bytes, p.kind);
    }
    if (r < 65) {
      // A stray segment: an ACK or RST or FIN to nothing (scans, floods, backscatter).
      const flags = d.pick([
        TcpFlags.ACK,
        TcpFlags.RST,
        TcpFlags.FIN | TcpFlags.ACK,
        0,
        0xff,
        TcpFlags.SYN | TcpFlags.FIN,
      ]);
      return ip(
        tcpPacket(d.pick(SOURCES), STACK_ADDRESS, {
          srcPort: 1024 + d.int(64),
          dstPort: d.pick(PORTS),
          seq: d.u32(),
          ack: d.u32(),
          flags,
          window: d.int(0x10000),
        }),
        "tcp-stray",
      );
    }
    if (r < 75) {
      const data = d.bytes(d.chance(0.9) ? d.int(600) : d.int(1473));
      const dstPort = d.pick([7, 7, 9, 68, 53]);
      const dst = d.chance(0.9) ? STACK_ADDRESS : d.pick([0xffffffff, 0x0a0000ff, 0x0a000009]);
      return ip(udpPacket(d.pick(SOURCES), 1024 + d.int(64), dst, dstPort, data), "udp");
    }
    if (r < 83) {
      const type = d.pick([8, 8, 8, 0, 3, 11, 5, 13, 255]);
      const data = type === 3 || type === 11 ? this.#quote() : d.bytes(d.int(200));
      const dst = d.chance(0.95) ? STACK_ADDRESS : 0x0a0000ff;
      return ip(icmpPacket(d.pick(SOURCES), dst, type, d.int(4), d.u32(), data), "icmp");
    }
    if (r < 92) return ip(this.#fragment(), "fragment");
    if (r < 94) {
      const protocol = d.pick([2, 47, 41, 132, 255, 0]);
      return ip(
        ipv4Packet({ src: d.pick(SOURCES), dst: STACK_ADDRESS, protocol, payload: d.bytes(d.int(64)) }),
        "protocol",
      );
    }
    if (r < 97) {
      // Someone else's packet, or from an address no reply may go to.
      const src = d.chance(0.5) ? d.pick(ODD_SOURCES) : d.pick(SOURCES);
      const dst = d.chance(0.5) ? STACK_ADDRESS : 0x0a000063;
      return ip(udpPacket(src, 1234, dst, 7, d.bytes(16)), "odd-address");
    }
    return { bytes: d.bytes(d.int(100)), shape: "raw", kind: "garbage" };
  }

  /** A SYN from a (mostly new) source, with a valid option list most of the time. */
  #syn(now: number): Uint8Array {
    const d = this.#dice;
    const peer6 = d.chance(0.35) ? d.pick(SOURCES6) : null;
    const peer = peer6 === null ? d.pick(SOURCES) : 0;
    const peerPort = 1024 + d.int(256);
    const stackPort = d.pick(PORTS);
    const flow = this.#addFlow(peer, peerPort, stackPort, d.u32(), peer6);
    const options = d.chance(0.8) ? this.#synOptions(flow, now) : hostileTcpOptions(d, 4 * (1 + d.int(10)));
    const bytes = this.#tcp(flow, {
      srcPort: peerPort,
      dstPort: stackPort,
      seq: flow.peerNxt,
      ack: 0,
      flags: TcpFlags.SYN | (d.chance(0.05) ? TcpFlags.ECE | TcpFlags.CWR : 0),
      window: d.chance(0.9) ? 64240 : d.int(0x10000),
      options,
      data: d.chance(0.05) ? d.bytes(d.int(100)) : undefined,
    });
    flow.peerNxt = (flow.peerNxt + 1) >>> 0;
    return bytes;
  }

  /** A segment of `flow` from its peer to the stack, over the flow's family. */
  #tcp(flow: Flow, fields: TcpFields): Uint8Array {
    if (flow.peer6 === null) return tcpPacket(flow.peer, STACK_ADDRESS, fields);
    const d = this.#dice;
    return ipv6Packet({
      src: flow.peer6,
      dst: STACK_ADDRESS6,
      protocol: IpProtocol.TCP,
      payload: tcpBytes(fields),
      // Sometimes behind extension headers the stack accepts (RFC 8200 §4.1 order).
      headers: d.chance(0.1)
        ? [optionsHeader(d.pick([0, 60]), d.chance(0.5) ? [1, 0] : [0x1e, 2, 0, 0])]
        : [],
      hopLimit: d.chance(0.95) ? 64 : d.pick([0, 1, 255]),
    });
  }

  #synOptions(flow: Flow, now: number): Uint8Array {
    const d = this.#dice;
    const b: number[] = [2, 4, ...u16(d.pick([1460, 536, 1400, 64, 9000]))];
    if (d.chance(0.8)) b.push(1, 3, 3, d.pick([0, 7, 14]));
    if (d.chance(0.8)) b.push(4, 2);
    if (flow.timestamps) b.push(1, 1, 8, 10, ...u32(now >>> 0), 0, 0, 0, 0);
    while (b.length % 4 !== 0) b.push(1);
    return new Uint8Array(b);
  }

  /** A segment on a known flow: the handshake's end, data (in order or not), ACKs with SACK, FIN, RST. */
  #onFlow(now: number): Uint8Array {
    const d = this.#dice;
    const flow = this.#flows.get(d.pick(this.#order))!;
    if (flow === undefined) return this.#syn(now);
    const base = {
      srcPort: flow.peerPort,
      dstPort: flow.stackPort,
      seq: flow.peerNxt,
      ack: flow.stackNxt,
      flags: TcpFlags.ACK,
      window: d.chance(0.9) ? 64240 : d.pick([0, 1, 0xffff, d.int(0x10000)]),
    };
    if (flow.owesSynAck) {
      flow.owesSynAck = false;
      const bytes = this.#tcp(flow, {
        ...base,
        flags: TcpFlags.SYN | TcpFlags.ACK,
        options: this.#synOptions(flow, now),
      });
      flow.peerNxt = (flow.peerNxt + 1) >>> 0;
      return bytes;
    }
    const tsOption = flow.timestamps
      ? [1, 1, 8, 10, ...u32(d.chance(0.95) ? now >>> 0 : d.u32()), ...u32(flow.stackTs)]
      : [];
    const r = d.int(100);
    if (r < 40) { // data, sometimes ahead of or behind the expected sequence number
      const data = d.bytes(d.chance(0.8) ? 1 + d.int(1400) : 1 + d.int(100));
      const shift = d.chance(0.75) ? 0 : d.pick([1, 100, 3000, 70000, -1, -2000]);
      const bytes = this.#tcp(flow, {
        ...base,
        seq: (flow.peerNxt + shift) >>> 0,
        flags: TcpFlags.ACK | TcpFlags.PSH,
        options: new Uint8Array(tsOption),
        data,
      });
      if (shift === 0) flow.peerNxt = (flow.peerNxt + data.length) >>> 0;
      return bytes;
    }
    if (r < 70) { // ACK, with SACK blocks over what the stack sent
      const options = [...tsOption];
      if (d.chance(0.4) && flow.synSeen) {
        const span = ((flow.stackNxt - flow.stackFirst) >>> 0) || 1;
        const blocks = 1 + d.int(3);
        options.push(1, 1, 5, 2 + 8 * blocks);
        for (let k = 0; k < blocks; k++) {
          const left = (flow.stackFirst + d.int(span)) >>> 0;
          options.push(...u32(left), ...u32((left + 1 + d.int(span)) >>> 0));
        }
      }
      const ack = d.chance(0.7) ? flow.stackNxt : (flow.stackNxt - d.int(20000)) >>> 0;
      return this.#tcp(flow, { ...base, ack, options: new Uint8Array(options) });
    }
    if (r < 80) { // FIN
      const bytes = this.#tcp(flow, {
        ...base,
        flags: TcpFlags.FIN | TcpFlags.ACK,
        options: new Uint8Array(tsOption),
      });
      flow.peerNxt = (flow.peerNxt + 1) >>> 0;
      return bytes;
    }
    if (r < 88) { // RST: exact, or in the window but not exact (RFC 5961 challenge)
      const seq = d.chance(0.5) ? flow.peerNxt : (flow.peerNxt + 1 + d.int(1000)) >>> 0;
      return this.#tcp(flow, {
        ...base,
        seq,
        flags: TcpFlags.RST | (d.chance(0.5) ? TcpFlags.ACK : 0),
      });
    }
    if (r < 94) { // SYN on a synchronized connection (RFC 5961 §4)
      return this.#tcp(flow, {
        ...base,
        flags: TcpFlags.SYN,
        options: this.#synOptions(flow, now),
      });
    }
    // Urgent data, or every flag at once.
    return this.#tcp(flow, {
      ...base,
      flags: d.chance(0.5) ? TcpFlags.URG | TcpFlags.ACK : 0xff,
      urgent: d.int(0x10000),
      data: d.bytes(d.int(20)),
    });
  }

  /** The first bytes of a packet the stack might have sent, for an ICMP error to quote. */
  #quote(): Uint8Array {
    const d = this.#dice;
    const flow = this.#order.length > 0 ? this.#flows.get(d.pick(this.#order)) : undefined;
    const inner = tcpPacket(STACK_ADDRESS, flow?.peer ?? PEER_ADDRESS, {
      srcPort: flow?.stackPort ?? 80,
      dstPort: flow?.peerPort ?? 1024,
      seq: flow?.stackNxt ?? 0,
      ack: 0,
      flags: TcpFlags.ACK,
      window: 0,
    });
    return inner.subarray(0, d.pick([28, 40, inner.length, 8]));
  }

  /**
   * The next fragment of a large UDP or ICMP datagram, with plausible or odd cuts; a datagram's fragments
   * come out in a shuffled order, some twice, some never, interleaved at times with another's.
   */
  #fragment(): Uint8Array {
    const d = this.#dice;
    if (this.#pieces.length > 0 && d.chance(0.9)) {
      return this.#pieces.splice(d.int(Math.min(2, this.#pieces.length)), 1)[0];
    }
    const whole = d.chance(0.5)
      ? udpPacket(d.pick(SOURCES), 4000, STACK_ADDRESS, 7, d.bytes(100 + d.int(4000)))
      : icmpPacket(d.pick(SOURCES), STACK_ADDRESS, 8, 0, d.u32(), d.bytes(100 + d.int(4000)));
    const payload = whole.length - 20;
    const cuts: number[] = [];
    for (let k = 1 + d.int(4); k > 0; k--) cuts.push(8 * d.int(Math.ceil(payload / 8)));
    // A small id space, so fragments of different datagrams meet (overlaps, conflicting ends).
    const id = d.chance(0.7) ? this.#ipId : d.int(4);
    if (d.chance(0.3)) this.#ipId = (this.#ipId + 1) & 0xffff;
    const pieces = fragments(whole, cuts, id);
    for (let k = pieces.length - 1; k > 0; k--) {
      const j = d.int(k + 1);
      [pieces[k], pieces[j]] = [pieces[j], pieces[k]];
    }
    if (d.chance(0.2)) pieces.push(d.pick(pieces)); // a duplicate
    if (d.chance(0.1)) pieces.pop(); // a loss
    this.#pieces.push(...pieces.slice(0, 16));
    return this.#pieces.shift() ?? whole;
  }

  #arpFrame(): Uint8Array {
    const d = this.#dice;
    const arp = new Uint8Array(28);
    const asked = this.#arpAsked.shift();
    if (asked !== undefined && d.chance(0.8)) {
      writeArp(arp, 0, ArpOperation.REPLY, macOf(asked), asked, STACK_MAC, STACK_ADDRESS);
    } else {
      const sender = d.pick([...SOURCES, 0, STACK_ADDRESS]);
      const target = d.pick([STACK_ADDRESS, STACK_ADDRESS, sender, 0x0a000009]);
      const op = d.pick([ArpOperation.REQUEST, ArpOperation.REPLY]);
      writeArp(arp, 0, op, macOf(sender), sender, op === ArpOperation.REPLY ? STACK_MAC : 0, target);
    }
    const dst = d.chance(0.5) ? BROADCAST_MAC : STACK_MAC;
    return ethernetFrame(dst, macOf(PEER_ADDRESS), EtherType.ARP, arp);
  }

  /** A DHCP OFFER, ACK or NAK for the client's current transaction, with extreme values at times. */
  #dhcpReply(now: number): Input {
    const d = this.#dice;
    const buf = new Uint8Array(600);
    const xid = this.#dhcpXid >= 0 && d.chance(0.9) ? this.#dhcpXid : d.u32();
    let at = writeDhcpHeader(buf, 0, {
      op: d.chance(0.95) ? BootpOp.REPLY : BootpOp.REQUEST,
      xid,
      yiaddr: d.chance(0.9) ? STACK_ADDRESS : d.pick([0, 0xffffffff, 0xe0000001, 0x0a0000ff]),
      chaddr: d.chance(0.95) ? STACK_MAC : 0x020000000077,
    });
    const w = new DhcpOptionWriter(buf, at);
    const type = this.#dhcpType === DhcpMessageType.DISCOVER ? DhcpMessageType.OFFER : DhcpMessageType.ACK;
    if (d.chance(0.95)) {
      w.u8(DhcpOption.MESSAGE_TYPE, d.chance(0.9) ? type : d.pick([DhcpMessageType.NAK, 0, 99]));
    }
    if (d.chance(0.9)) w.u32(DhcpOption.SERVER_ID, d.chance(0.9) ? PEER_ADDRESS : d.u32());
    if (d.chance(0.9)) {
      w.u32(DhcpOption.SUBNET_MASK, d.pick([0xffffff00, 0xffffff00, 0, 0xffffffff, 0xff00ff00]));
    }
    if (d.chance(0.8)) w.u32(DhcpOption.ROUTER, d.pick([PEER_ADDRESS, PEER_ADDRESS, 0, STACK_ADDRESS]));
    if (d.chance(0.9)) w.u32(DhcpOption.LEASE_TIME, d.pick([120, 3600, 0, 1, 0xffffffff, d.u32()]));
    if (d.chance(0.3)) w.u32(DhcpOption.RENEWAL_TIME, d.pick([0, 60, 0xffffffff]));
    if (d.chance(0.3)) w.u32(DhcpOption.REBINDING_TIME, d.pick([0, 30, 0xffffffff]));
    if (d.chance(0.2)) w.bytes(DhcpOption.DNS_SERVERS, d.bytes(d.pick([0, 3, 4, 8, 255])));
    at = w.end();
    void now;
    const packet = udpPacket(
      PEER_ADDRESS,
      DHCP_SERVER_PORT,
      d.chance(0.7) ? 0xffffffff : STACK_ADDRESS,
      DHCP_CLIENT_PORT,
      buf.subarray(0, at),
    );
    return {
      bytes: ipv4Frame(d.chance(0.5) ? BROADCAST_MAC : STACK_MAC, macOf(PEER_ADDRESS), packet),
      shape: "ethernet-ipv4",
      kind: "dhcp",
    };
  }
}

function flowKey(peer: number, peer6: Uint8Array | null, peerPort: number, stackPort: number): string {
  return `${peer6 === null ? peer : peer6.join(".")}:${peerPort}:${stackPort}`;
}

function u16(v: number): number[] {
  return [(v >> 8) & 0xff, v & 0xff];
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/**
 * Fuzzing: the IPv6 side of the fuzz peer (TCP over IPv6 shares the IPv4 flows, see peer.ts): UDP to the
 * echo port and to closed ones, ICMPv6 echo and errors (quoting the stack's own packets, extreme MTUs),
 * NDP (solicitations, advertisements answering the stack's own solicitations, router advertisements with
 * prefix and MTU options at extreme values, redirects), MLD queries and reports, fragments (shuffled,
 * duplicated, overlapping, lost), and chains of extension headers (options with every action bit, Pad1
 * and PadN runs, router alerts, jumbo payloads, routing headers with segments left, nested fragments, AH,
 * unknown headers, No Next Header), to the stack's addresses, its groups, others' and odd ones.
 *
 * @module
 */

import { NextHeader } from "../../../lib/wire/ipv6.ts";
import { linkLocalFromMac, solicitedNodeGroup } from "../../../lib/wire/ipv6_address.ts";
import {
  authenticationHeader,
  type ExtensionHeader,
  fragmentHeader,
  icmpv6Bytes,
  ipv6Packet,
  optionsHeader,
  routingHeader,
  udpBytes,
} from "./build6.ts";
import type { Dice } from "./mutate.ts";
import { PEER_ADDRESS6, STACK_ADDRESS6, STACK_MAC, v6 } from "./core.ts";

/** The stack's link-local address (from its MAC, RFC 4862 §5.3). */
export const STACK_LINK_LOCAL = linkLocalFromMac(STACK_MAC);
const ALL_NODES = group(1);
const ALL_ROUTERS = group(2);
const LOOPBACK = (() => {
  const a = new Uint8Array(16);
  a[15] = 1;
  return a;
})();
const MAPPED = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 2]);
const ROUTER_LINK_LOCAL = (() => {
  const a = new Uint8Array(16);
  a.set([0xfe, 0x80]);
  a[15] = 1;
  return a;
})();
const OFF_LINK = new Uint8Array([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);

/** IPv6 peers: in the prefix, link-local, off-link. */
export const SOURCES6: readonly Uint8Array[] = [PEER_ADDRESS6, v6(3), v6(0xfe), ROUTER_LINK_LOCAL, OFF_LINK];
/** Sources no packet may come from, or no reply may go to. */
const ODD_SOURCES6: readonly Uint8Array[] = [new Uint8Array(16), ALL_NODES, LOOPBACK, MAPPED, STACK_ADDRESS6];

function group(last: number): Uint8Array {
  const a = new Uint8Array(16);
  a.set([0xff, 0x02]);
  a[15] = last;
  return a;
}

/** What the IPv6 side makes: a packet (no link header) and a short name of its generator. */
export interface Packet6 {
  /** The IPv6 packet. */
  bytes: Uint8Array;
  /** Generator name, for reports. */
  kind: string;
}

/** IPv6 input generators with the little state they need (the stack's solicitations, fragments due). */
export class Ipv6Inputs {
  readonly #dice: Dice;
  readonly #ethernet: boolean;
  /** Targets the stack solicited (NS) and no advertisement answered yet. */
  readonly #solicited: Uint8Array[] = [];
  /** Fragments of datagrams in progress, to be sent next. */
  readonly #pieces: Uint8Array[] = [];
  /** The first bytes of packets the stack sent, for ICMPv6 errors to quote. */
  #lastSent: Uint8Array = new Uint8Array(0);
  #id = 1;

  /** Generators for a core on Ethernet (NDP matters) or an IP medium. */
  constructor(dice: Dice, ethernet: boolean) {
    this.#dice = dice;
    this.#ethernet = ethernet;
  }

  /** Learns from an IPv6 packet the stack sent: its neighbour solicitations, and a quote for errors. */
  observe(packet: Uint8Array): void {
    if (packet.length < 48) return;
    this.#lastSent = packet.slice(0, Math.min(packet.length, 1232));
    if (packet[6] === NextHeader.ICMPV6 && packet[40] === 135 && this.#solicited.length < 16) {
      this.#solicited.push(packet.slice(48, 64));
    }
  }

  /** A destination: mostly the stack's own addresses, sometimes its groups, others' or odd ones. */
  #destination(): Uint8Array {
    const d = this.#dice;
    const r = d.int(100);
    if (r < 70) return STACK_ADDRESS6;
    if (r < 80) return STACK_LINK_LOCAL;
    if (r < 88) {
      return d.pick([ALL_NODES, solicitedNodeGroup(STACK_ADDRESS6), solicitedNodeGroup(STACK_LINK_LOCAL)]);
    }
    return d.pick([v6(0x63), ALL_ROUTERS, LOOPBACK, MAPPED, group(0xfb), OFF_LINK]);
  }

  #source(): Uint8Array {
    const d = this.#dice;
    return d.chance(0.95) ? d.pick(SOURCES6) : d.pick(ODD_SOURCES6);
  }

  /** The next IPv6 packet. */
  next(): Packet6 {
    const d = this.#dice;
    if (this.#pieces.length > 0 && d.chance(0.5)) {
      return { bytes: this.#pieces.shift()!, kind: "ipv6-fragment" };
    }
    const r = d.int(100);
    if (r < 20) return { bytes: this.#udp(), kind: "udp6" };
    if (r < 32) return { bytes: this.#echo(), kind: "icmp6-echo" };
    if (r < 40) return { bytes: this.#error(), kind: "icmp6-error" };
    if (r < 60) return { bytes: this.#ndp(), kind: "ndp" };
    if (r < 66) return { bytes: this.#mld(), kind: "mld" };
    if (r < 78) return { bytes: this.#fragment(), kind: "ipv6-fragment" };
    if (r < 96) return { bytes: this.#chain(), kind: "ipv6-chain" };
    // An upper layer nobody serves, or none.
    return {
      bytes: ipv6Packet({
        src: this.#source(),
        dst: this.#destination(),
        protocol: d.pick([NextHeader.NO_NEXT_HEADER, 132, 4, 41, 50, 255, 1]),
        payload: d.bytes(d.int(64)),
      }),
      kind: "ipv6-protocol",
    };
  }

  #hopLimit(): number {
    return this.#dice.chance(0.9) ? this.#dice.pick([64, 255, 1]) : this.#dice.pick([0, 2, 254, 128]);
  }

  #udp(): Uint8Array {
    const d = this.#dice;
    const data = d.bytes(d.chance(0.9) ? d.int(600) : d.int(1453));
    return ipv6Packet({
      src: this.#source(),
      dst: this.#destination(),
      protocol: NextHeader.UDP,
      payload: udpBytes(1024 + d.int(64), d.pick([7, 7, 9, 53, 547]), data),
      hopLimit: this.#hopLimit(),
      headers: d.chance(0.2) ? this.#someHeaders(true) : [],
    });
  }

  #echo(): Uint8Array {
    const d = this.#dice;
    return ipv6Packet({
      src: this.#source(),
      dst: this.#destination(),
      protocol: NextHeader.ICMPV6,
      payload: icmpv6Bytes(
        128,
        d.chance(0.9) ? 0 : d.int(256),
        d.u32(),
        d.bytes(d.int(d.chance(0.95) ? 200 : 1400)),
      ),
      hopLimit: this.#hopLimit(),
      headers: d.chance(0.15) ? this.#someHeaders(true) : [],
    });
  }

  /** An ICMPv6 error or informational message other than echo request, quoting what the stack sent. */
  #error(): Uint8Array {
    const d = this.#dice;
    const type = d.pick([1, 2, 3, 4, 129, 100, 127, 200, 0]);
    const rest = type === 2 ? d.pick([0, 1, 1279, 1280, 1500, 65535, 0xffffffff]) : d.u32();
    const quote = d.chance(0.8) ? this.#lastSent.subarray(0, d.pick([8, 40, 48, 1232])) : d.bytes(d.int(80));
    return ipv6Packet({
      src: this.#source(),
      dst: STACK_ADDRESS6,
      protocol: NextHeader.ICMPV6,
      payload: icmpv6Bytes(type, d.int(8), rest, quote),
      hopLimit: this.#hopLimit(),
    });
  }

  /** NDP options: valid ones mostly, and ones with zero length, wrong lengths, or ending mid-option. */
  #ndpOptions(kind: "ns" | "na" | "ra" | "other"): number[] {
    const d = this.#dice;
    const out: number[] = [];
    const mac = [0x02, 0, 0, 0, 0, d.int(4)];
    if (kind === "ns" && d.chance(0.8)) out.push(1, 1, ...mac);
    if (kind === "na" && d.chance(0.8)) out.push(2, 1, ...mac);
    if (kind === "ra") {
      if (d.chance(0.8)) out.push(1, 1, ...mac);
      for (let k = d.int(3); k > 0; k--) {
        const prefixLength = d.chance(0.8) ? 64 : d.pick([0, 1, 63, 65, 128, 255]);
        const flags = d.pick([0xc0, 0xc0, 0x80, 0x40, 0, 0xff]);
        const valid = d.pick([0xffffffff, 7200, 0, 1, 7199, 2 * 3600 + 1]);
        const preferred = d.pick([3600, 0, 0xffffffff, valid, valid + 1]);
        const prefix = d.chance(0.7) ? [0xfd, 0, 0, 0, 0, 0, 0, d.int(3)] : Array.from(d.bytes(8));
        out.push(
          3,
          4,
          prefixLength,
          flags,
          ...u32(valid),
          ...u32(preferred),
          0,
          0,
          0,
          0,
          ...prefix,
          ...new Array(8).fill(0),
        );
      }
      if (d.chance(0.4)) out.push(5, 1, 0, 0, ...u32(d.pick([1280, 1500, 0, 1279, 9000, 0xffffffff, 1400])));
    }
    const r = d.int(10);
    if (r === 0) out.push(d.int(20), 0); // zero length: the parser must not loop
    else if (r === 1) out.push(1, d.pick([2, 3, 255])); // longer than the message
    else if (r === 2) out.push(d.pick([1, 2, 3, 5])); // cut after the type
    else if (r === 3) out.push(d.pick([1, 2]), 2, ...new Array(14).fill(0xee)); // link-layer option of 16
    else if (r === 4) out.push(d.int(256), 1, ...Array.from(d.bytes(6))); // unknown, well formed
    if (kind === "other" && d.chance(0.5)) out.push(...Array.from(d.bytes(d.int(24))));
    return out;
  }

  /** Neighbour and router discovery messages, hop limit 255 mostly (RFC 4861 §7.1.1). */
  #ndp(): Uint8Array {
    const d = this.#dice;
    const hopLimit = d.chance(0.9) ? 255 : d.pick([254, 64, 1]);
    const r = d.int(100);
    const src = this.#source();
    let dst: Uint8Array, type: number, body: number[], rest = 0;
    if (r < 30) { // NS for one of the stack's addresses (DAD when from ::)
      const target = d.pick([STACK_ADDRESS6, STACK_LINK_LOCAL, STACK_ADDRESS6, v6(0x63), ALL_NODES]);
      dst = d.chance(0.6) ? solicitedNodeGroup(target) : d.pick([STACK_ADDRESS6, STACK_LINK_LOCAL]);
      type = 135;
      body = [...target, ...this.#ndpOptions("ns")];
    } else if (r < 55) { // NA: an answer to the stack's solicitation, or unsolicited, or for its own address
      const asked = this.#solicited.shift();
      const target = asked !== undefined && d.chance(0.8) ? asked : d.pick([...SOURCES6, STACK_ADDRESS6]);
      dst = d.chance(0.7) ? STACK_ADDRESS6 : d.pick([ALL_NODES, STACK_LINK_LOCAL]);
      type = 136;
      rest = d.pick([0x60000000, 0x40000000, 0x20000000, 0xe0000000, 0]) >>> 0; // S, O, R flags
      body = [...target, ...this.#ndpOptions("na")];
    } else if (r < 80) { // RA from a link-local router, with prefixes and an MTU
      dst = d.chance(0.8) ? ALL_NODES : STACK_LINK_LOCAL;
      type = 134;
      const lifetime = d.pick([1800, 0, 0xffff, 1]);
      rest = ((d.pick([64, 0, 255]) << 24) | (d.pick([0, 0x80, 0x40, 0xc0]) << 16) | lifetime) >>> 0;
      body = [
        ...u32(d.pick([0, 30000, 0xffffffff])),
        ...u32(d.pick([0, 1000, 0xffffffff])),
        ...this.#ndpOptions("ra"),
      ];
      return ipv6Packet({
        src: d.chance(0.9) ? ROUTER_LINK_LOCAL : src,
        dst,
        protocol: NextHeader.ICMPV6,
        payload: icmpv6Bytes(type, d.chance(0.95) ? 0 : 1, rest, new Uint8Array(body)),
        hopLimit,
      });
    } else if (r < 90) { // RS (we are no router), redirect
      dst = d.pick([ALL_ROUTERS, STACK_LINK_LOCAL, ALL_NODES]);
      type = d.pick([133, 137]);
      body = type === 137
        ? [...v6(9), ...STACK_ADDRESS6, ...this.#ndpOptions("other")]
        : this.#ndpOptions("other");
    } else { // a message cut before its fixed part ends
      dst = STACK_ADDRESS6;
      type = d.pick([134, 135, 136, 137]);
      body = Array.from(d.bytes(d.int(16)));
    }
    return ipv6Packet({
      src,
      dst,
      protocol: NextHeader.ICMPV6,
      payload: icmpv6Bytes(type, d.chance(0.95) ? 0 : 1, rest, new Uint8Array(body)),
      hopLimit,
    });
  }

  /** MLD queries (general, group-specific, v1 and v2) and reports of other nodes, with a router alert. */
  #mld(): Uint8Array {
    const d = this.#dice;
    const type = d.pick([130, 130, 131, 132, 143]);
    let body: number[];
    if (type === 130) {
      const address = d.pick([new Uint8Array(16), solicitedNodeGroup(STACK_ADDRESS6), ALL_NODES, v6(5)]);
      body = [...address];
      if (d.chance(0.6)) { // MLDv2: flags, QQIC, sources (count possibly lying)
        const sources = d.int(3);
        body.push(d.int(256), d.pick([125, 0, 255]), 0, d.chance(0.8) ? sources : d.pick([255, 100]));
        for (let k = 0; k < sources; k++) body.push(...v6(10 + k));
      }
    } else if (type === 143) {
      body = [0, 0, 0, 1, 4, 0, 0, 0, ...solicitedNodeGroup(STACK_ADDRESS6)];
    } else body = [...solicitedNodeGroup(STACK_ADDRESS6)];
    const rest = type === 130 ? (d.pick([10000, 0, 0xffff, 1]) << 16) >>> 0 : 0;
    const headers = d.chance(0.85) ? [optionsHeader(NextHeader.HOP_BY_HOP, [5, 2, 0, 0])] : [];
    return ipv6Packet({
      src: d.chance(0.9) ? ROUTER_LINK_LOCAL : this.#source(),
      dst: d.chance(0.8) ? ALL_NODES : d.pick([solicitedNodeGroup(STACK_ADDRESS6), STACK_LINK_LOCAL]),
      protocol: NextHeader.ICMPV6,
      payload: icmpv6Bytes(type, 0, rest, new Uint8Array(body)),
      hopLimit: d.chance(0.9) ? 1 : 64,
      headers,
    });
  }

  /**
   * The first fragment of a new datagram (UDP echo or ICMPv6 echo) cut at plausible or odd places; the
   * rest wait in a queue, shuffled, some twice, some never, from a small identification space.
   */
  #fragment(): Uint8Array {
    const d = this.#dice;
    const src = d.pick(SOURCES6);
    const udp = d.chance(0.5);
    const body = d.bytes(100 + d.int(3000));
    const whole = udp ? udpBytes(4000, 7, body) : icmpv6Bytes(128, 0, d.u32(), body);
    // The checksum over the whole datagram: build it unfragmented, then cut its upper layer.
    const full = ipv6Packet({ src, dst: STACK_ADDRESS6, protocol: udp ? 17 : 58, payload: whole });
    const upper = full.subarray(40);
    const cuts = [0];
    for (let k = 1 + d.int(4); k > 0; k--) cuts.push(8 * d.int(Math.ceil(upper.length / 8)));
    if (d.chance(0.1)) cuts.push(8 * d.int(upper.length / 8) + 3); // not a multiple of 8
    cuts.sort((a, b) => a - b);
    cuts.push(upper.length);
    const id = d.chance(0.7) ? this.#id : d.int(4);
    if (d.chance(0.3)) this.#id++;
    const pieces: Uint8Array[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const from = cuts[i], to = d.chance(0.9) ? cuts[i + 1] : Math.min(upper.length, cuts[i + 1] + 8);
      if (to <= from && d.chance(0.8)) continue;
      const more = i + 2 < cuts.length;
      const headers: ExtensionHeader[] = [fragmentHeader(from, more, id)];
      if (d.chance(0.1)) headers.unshift(optionsHeader(0, [1, 0]));
      pieces.push(ipv6Packet({
        src,
        dst: STACK_ADDRESS6,
        protocol: udp ? 17 : 58,
        payload: upper.slice(from, Math.max(from, to)),
        headers,
      }));
    }
    for (let k = pieces.length - 1; k > 0; k--) {
      const j = d.int(k + 1);
      [pieces[k], pieces[j]] = [pieces[j], pieces[k]];
    }
    if (d.chance(0.2) && pieces.length > 0) pieces.push(d.pick(pieces));
    if (d.chance(0.1)) pieces.pop();
    if (this.#pieces.length < 32) this.#pieces.push(...pieces.slice(0, 16));
    return this.#pieces.shift() ?? full;
  }

  /** A few extension headers; `valid` keeps to those the stack accepts. */
  #someHeaders(valid: boolean): ExtensionHeader[] {
    const d = this.#dice;
    const out: ExtensionHeader[] = [];
    if (d.chance(0.5)) out.push(optionsHeader(NextHeader.HOP_BY_HOP, this.#options(valid)));
    for (let k = d.int(3); k > 0; k--) {
      const r = d.int(valid ? 3 : 7);
      if (r === 0) out.push(optionsHeader(NextHeader.DESTINATION_OPTIONS, this.#options(valid)));
      else if (r === 1) out.push(routingHeader(d.pick([0, 2, 3, 4, 253]), 0, d.int(3)));
      else if (r === 2) out.push(fragmentHeader(0, false, d.u32())); // atomic (RFC 6946)
      else if (r === 3) out.push(routingHeader(d.pick([0, 2, 3, 4, 253]), 1 + d.int(3), d.int(3)));
      else if (r === 4) out.push(optionsHeader(NextHeader.HOP_BY_HOP, this.#options(false))); // not first
      else if (r === 5) out.push(authenticationHeader());
      else out.push(fragmentHeader(d.pick([0, 8, 0xfff8]), d.chance(0.5), d.u32()));
    }
    return out;
  }

  /** Options for an options header: padding, router alert, jumbo, unknown ones with each action. */
  #options(valid: boolean): number[] {
    const d = this.#dice;
    const out: number[] = [];
    for (let k = d.int(5); k > 0; k--) {
      switch (d.int(valid ? 4 : 9)) {
        case 0:
          out.push(0); // Pad1
          break;
        case 1:
          out.push(1, d.int(6), ...new Array(d.int(6)).fill(0)); // PadN, length possibly lying
          break;
        case 2:
          out.push(5, 2, 0, d.int(3)); // router alert
          break;
        case 3:
          out.push(0x1e, 2, 0, 0); // unknown, action 00: skip
          break;
        case 4:
          out.push(d.pick([0x5e, 0x9e, 0xde]), 2, 1, 2); // unknown, discard (and ICMP)
          break;
        case 5:
          out.push(0xc2, 4, ...u32(d.pick([0, 65535, 65536, 0xffffffff]))); // jumbo payload
          break;
        case 6:
          out.push(1, d.pick([200, 255])); // PadN past the header
          break;
        case 7:
          for (let p = 0; p < 9; p++) out.push(0); // a run of Pad1 longer than allowed
          break;
        default:
          out.push(d.int(256)); // an option cut after its type
      }
    }
    return out;
  }

  /** A packet behind a chain of extension headers, valid or broken. */
  #chain(): Uint8Array {
    const d = this.#dice;
    const valid = d.chance(0.4);
    const headers = this.#someHeaders(valid);
    if (!valid && d.chance(0.2)) headers.push({ type: d.pick([253, 254, 139, 140, 135]), body: d.bytes(7) });
    if (!valid && d.chance(0.2)) { for (let k = 0; k < 9; k++) headers.push(optionsHeader(60, [])); // too many
     }
    const protocol = d.pick([NextHeader.UDP, NextHeader.ICMPV6, NextHeader.TCP, NextHeader.NO_NEXT_HEADER]);
    const payload = protocol === NextHeader.UDP
      ? udpBytes(1024 + d.int(64), d.pick([7, 9]), d.bytes(d.int(64)))
      : protocol === NextHeader.ICMPV6
      ? icmpv6Bytes(128, 0, d.u32(), d.bytes(d.int(64)))
      : protocol === NextHeader.TCP
      ? new Uint8Array([4, 1, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0])
      : d.bytes(d.int(16));
    return ipv6Packet({ src: this.#source(), dst: this.#destination(), protocol, payload, headers });
  }
}

function u32(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

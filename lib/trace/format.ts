/**
 * The per-packet output of netstack trace: a tcpdump-like text line or one JSON object, with the same
 * fields.
 *
 * Text: `HH:MM:SS.micros IFACE DIRECTION PROTO SRC[.PORT] > DST[.PORT]: DETAILS, length N`, the time local
 * as tcpdump prints it (the TZ environment variable applies) or UTC when asked, e.g.
 * `05:21:01.123456 veth1 ingress TCP 10.0.0.1.43210 > 10.0.0.2.80: Flags [S.], seq 1, ack 2, win 64240, length 0`.
 *
 * @module
 */

import type { DecodedPacket, Direction } from "./record.ts";

/** The packet as the output shows it. */
export interface PacketEvent {
  /** Microseconds since the Unix epoch. */
  timestampMicros: number;
  iface: string;
  direction: Direction;
  wireLength: number;
  capturedLength: number;
  packet: DecodedPacket;
}

const two = (n: number) => String(n).padStart(2, "0");

// The `HH:MM:SS` of the last second formatted: packets come in bursts within one second, so a Date is
// made once per second and zone rather than once per packet.
let cachedSecond = NaN;
let cachedUtc = false;
let cachedClock = "";

/**
 * `HH:MM:SS.uuuuuu` of a time in microseconds since the epoch: local time, as tcpdump prints it (the
 * zone comes from TZ or the system), or UTC when `utc` is set.
 */
export function formatTime(timestampMicros: number, utc = false): string {
  const second = Math.floor(timestampMicros / 1e6);
  const micros = Math.floor(timestampMicros) - second * 1e6;
  if (second !== cachedSecond || utc !== cachedUtc) {
    const date = new Date(second * 1000);
    cachedClock = utc
      ? `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`
      : `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`;
    cachedSecond = second;
    cachedUtc = utc;
  }
  return `${cachedClock}.${String(micros).padStart(6, "0")}`;
}

function endpoint(address: string | undefined, port: number | undefined): string {
  const host = address ?? "?";
  return port === undefined ? host : `${host}.${port}`;
}

/** The text line (no newline); the time in local time, or UTC with `utc`. */
export function formatLine(event: PacketEvent, utc = false): string {
  const p = event.packet;
  let line = `${formatTime(event.timestampMicros, utc)} ${event.iface} ${event.direction} ${p.proto} `;
  if (p.vlans.length > 0) line += `vlan ${p.vlans.join(",")} `;
  if (p.src !== undefined || p.dst !== undefined) {
    line += `${endpoint(p.src, p.sport)} > ${endpoint(p.dst, p.dport)}:`;
  } else {
    line += `${p.srcMac ?? "?"} > ${p.dstMac ?? "?"}: ethertype 0x${
      p.etherType.toString(16).padStart(4, "0")
    },`;
  }
  const details: string[] = [];
  if (p.tcpFlags !== undefined) {
    details.push(`Flags [${p.tcpFlags}]`, `seq ${p.seq}`);
    if (p.ack !== undefined) details.push(`ack ${p.ack}`);
    details.push(`win ${p.window}`);
  }
  if (p.info !== undefined) details.push(p.info);
  if (p.fragment) details.push("fragment");
  details.push(`length ${p.length}`);
  line += ` ${details.join(", ")}`;
  if (p.truncated) line += " [truncated]";
  return line;
}

/** The JSON object (one line, no newline): the line's fields plus lengths and link-layer details. */
export function formatJson(event: PacketEvent): string {
  const p = event.packet;
  return JSON.stringify({
    time: new Date(Math.floor(event.timestampMicros / 1000)).toISOString(),
    timestampMicros: event.timestampMicros,
    iface: event.iface,
    direction: event.direction,
    proto: p.proto,
    src: p.src,
    dst: p.dst,
    sport: p.sport,
    dport: p.dport,
    tcpFlags: p.tcpFlags,
    seq: p.seq,
    ack: p.ack,
    window: p.window,
    icmpType: p.icmpType,
    icmpCode: p.icmpCode,
    info: p.info,
    fragment: p.fragment,
    length: p.length,
    wireLength: event.wireLength,
    capturedLength: event.capturedLength,
    etherType: p.etherType,
    vlans: p.vlans.length > 0 ? p.vlans : undefined,
    srcMac: p.srcMac,
    dstMac: p.dstMac,
    ipProtocol: p.ipProtocol,
    truncated: p.truncated || undefined,
  });
}

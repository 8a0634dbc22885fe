/**
 * Builders of Ethernet frames for the trace decoder's unit tests (checksums left zero: the decoder
 * does not verify them).
 *
 * @module
 */

export const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
export const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

function be16(value: number): number[] {
  return [(value >> 8) & 0xff, value & 0xff];
}

function be32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

function ipv4Bytes(text: string): number[] {
  return text.split(".").map(Number);
}

/** An Ethernet frame; `vlans` adds 802.1Q tags (the first one 802.1ad when there are two). */
export function ethernet(etherType: number, payload: number[], vlans: number[] = []): Uint8Array {
  const tags: number[] = [];
  vlans.forEach((id, i) => tags.push(...be16(vlans.length === 2 && i === 0 ? 0x88a8 : 0x8100), ...be16(id)));
  return new Uint8Array([...MAC_B, ...MAC_A, ...tags, ...be16(etherType), ...payload]);
}

/** An IPv4 header (no options unless given) followed by `payload`. */
export function ipv4(
  src: string,
  dst: string,
  protocol: number,
  payload: number[],
  options: { fragmentOffset?: number; ipOptions?: number[]; totalLength?: number } = {},
): number[] {
  const ipOptions = options.ipOptions ?? [];
  const headerLength = 20 + ipOptions.length;
  const total = options.totalLength ?? headerLength + payload.length;
  return [
    0x40 | (headerLength / 4),
    0,
    ...be16(total),
    ...be16(1),
    ...be16(options.fragmentOffset ?? 0),
    64,
    protocol,
    0,
    0,
    ...ipv4Bytes(src),
    ...ipv4Bytes(dst),
    ...ipOptions,
    ...payload,
  ];
}

/** An IPv6 header followed by `payload` (which may start with extension headers). */
export function ipv6(src: number[], dst: number[], nextHeader: number, payload: number[]): number[] {
  return [0x60, 0, 0, 0, ...be16(payload.length), nextHeader, 64, ...src, ...dst, ...payload];
}

/** A 16-byte IPv6 address with the given last byte under 2001:db8::/32. */
export function v6(last: number): number[] {
  return [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last];
}

export function udp(sport: number, dport: number, data: number[]): number[] {
  return [...be16(sport), ...be16(dport), ...be16(8 + data.length), 0, 0, ...data];
}

export function tcp(
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  data: number[] = [],
  window = 65535,
): number[] {
  return [
    ...be16(sport),
    ...be16(dport),
    ...be32(seq),
    ...be32(ack),
    0x50,
    flags,
    ...be16(window),
    0,
    0,
    0,
    0,
    ...data,
  ];
}

export function icmpEcho(type: number, id: number, seq: number, data: number[] = []): number[] {
  return [type, 0, 0, 0, ...be16(id), ...be16(seq), ...data];
}

export function arpRequest(sender: string, target: string): number[] {
  return [0, 1, 8, 0, 6, 4, 0, 1, ...MAC_A, ...ipv4Bytes(sender), 0, 0, 0, 0, 0, 0, ...ipv4Bytes(target)];
}

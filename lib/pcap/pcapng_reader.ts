/**
 * A reader for pcapng files (little- and big-endian sections), enough to check what netstack writes and
 * to replay a capture: interfaces with their names, link types and timestamp resolution, enhanced and
 * simple packets with their direction, and interface statistics. Unknown blocks are skipped.
 *
 * @module
 */

/** An Interface Description Block. */
export interface PcapngInterfaceInfo {
  linkType: number;
  snaplen: number;
  name?: string;
  description?: string;
  /** Units per second of its timestamps (10^6 unless `if_tsresol` says otherwise). */
  unitsPerSecond: number;
}

/** An Enhanced (or Simple) Packet Block. */
export interface PcapngPacket {
  interfaceId: number;
  /** Timestamp in nanoseconds since the epoch, as a bigint (exact). */
  timestampNs: bigint;
  originalLength: number;
  data: Uint8Array;
  /** Bits 0-1 of `epb_flags`: 0 unknown, 1 inbound, 2 outbound. */
  direction: number;
}

/** An Interface Statistics Block's counters (absent options are undefined). */
export interface PcapngStatisticsInfo {
  interfaceId: number;
  received?: bigint;
  accepted?: bigint;
  osDropped?: bigint;
  ifDropped?: bigint;
  delivered?: bigint;
}

/** A parsed pcapng file (every section concatenated). */
export interface PcapngFile {
  interfaces: PcapngInterfaceInfo[];
  packets: PcapngPacket[];
  statistics: PcapngStatisticsInfo[];
}

const decoder = new TextDecoder();

/** Parses a whole pcapng file; throws an Error naming the problem when it is malformed. */
export function parsePcapng(bytes: Uint8Array): PcapngFile {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const file: PcapngFile = { interfaces: [], packets: [], statistics: [] };
  let little = true;
  let base = 0; // index of the current section's first interface in file.interfaces
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error(`truncated pcapng block at offset ${at}`);
    const type = view.getUint32(at, true);
    if (type === 0x0a0d0d0a) {
      const magic = view.getUint32(at + 8, true);
      if (magic === 0x1a2b3c4d) little = true;
      else if (magic === 0x4d3c2b1a) little = false;
      else throw new Error(`bad pcapng byte-order magic at offset ${at}`);
      base = file.interfaces.length;
    } else if (at === 0) {
      throw new Error("not a pcapng file: no section header block");
    }
    const length = view.getUint32(at + 4, little);
    if (length < 12 || length % 4 !== 0 || at + length > bytes.length) {
      throw new Error(`bad pcapng block length ${length} at offset ${at}`);
    }
    if (view.getUint32(at + length - 4, little) !== length) {
      throw new Error(`pcapng block at offset ${at}: trailing length differs`);
    }
    const body = at + 8;
    const end = at + length - 4;
    const blockType = view.getUint32(at, little);
    if (blockType === 1) {
      const info: PcapngInterfaceInfo = {
        linkType: view.getUint16(body, little),
        snaplen: view.getUint32(body + 4, little),
        unitsPerSecond: 1e6,
      };
      forEachOption(view, body + 8, end, little, (code, at, len) => {
        if (code === 2) info.name = decoder.decode(bytes.subarray(at, at + len));
        if (code === 3) info.description = decoder.decode(bytes.subarray(at, at + len));
        if (code === 9) {
          const r = bytes[at];
          info.unitsPerSecond = r & 0x80 ? 2 ** (r & 0x7f) : 10 ** r;
        }
      });
      file.interfaces.push(info);
    } else if (blockType === 6) {
      const interfaceId = view.getUint32(body, little);
      const iface = file.interfaces[base + interfaceId];
      if (iface === undefined) {
        throw new Error(`packet at offset ${at} names unknown interface ${interfaceId}`);
      }
      const units = BigInt(view.getUint32(body + 4, little)) << 32n |
        BigInt(view.getUint32(body + 8, little));
      const captured = view.getUint32(body + 12, little);
      const data = bytes.slice(body + 20, body + 20 + captured);
      let direction = 0;
      forEachOption(view, body + 20 + ((captured + 3) & ~3), end, little, (code, at) => {
        if (code === 2) direction = view.getUint32(at, little) & 3;
      });
      file.packets.push({
        interfaceId,
        timestampNs: units * 1_000_000_000n / BigInt(iface.unitsPerSecond),
        originalLength: view.getUint32(body + 16, little),
        data,
        direction,
      });
    } else if (blockType === 5) {
      const stats: PcapngStatisticsInfo = { interfaceId: view.getUint32(body, little) };
      const names: Record<number, keyof PcapngStatisticsInfo> = {
        4: "received",
        5: "ifDropped",
        6: "accepted",
        7: "osDropped",
        8: "delivered",
      };
      forEachOption(view, body + 12, end, little, (code, at) => {
        const name = names[code];
        if (name !== undefined) {
          (stats as unknown as Record<string, bigint>)[name] = view.getBigUint64(at, little);
        }
      });
      file.statistics.push(stats);
    }
    at += length;
  }
  return file;
}

function forEachOption(
  view: DataView,
  at: number,
  end: number,
  little: boolean,
  visit: (code: number, at: number, length: number) => void,
): void {
  while (at + 4 <= end) {
    const code = view.getUint16(at, little);
    const length = view.getUint16(at + 2, little);
    if (code === 0) return;
    if (at + 4 + length > end) throw new Error(`pcapng option ${code} runs past its block`);
    visit(code, at + 4, length);
    at += 4 + ((length + 3) & ~3);
  }
}

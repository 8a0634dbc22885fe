/**
 * A reader for classic pcap files (both byte orders, microsecond and nanosecond magic), used by tests to
 * check captures and by anyone replaying one.
 *
 * @module
 */

/** One record of a pcap file. */
export interface PcapRecord {
  /** Timestamp in microseconds since the Unix epoch. */
  timestampMicros: number;
  /** Length on the wire. */
  originalLength: number;
  /** The captured bytes. */
  data: Uint8Array;
}

/** A parsed pcap file. */
export interface PcapFile {
  /** Link type from the global header. */
  linkType: number;
  /** Snapshot length from the global header. */
  snaplen: number;
  /** The records in file order. */
  records: PcapRecord[];
}

/** Parses a whole pcap file; throws an Error naming the problem when it is malformed. */
export function parsePcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < 24) throw new Error("not a pcap file: shorter than its 24-byte header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magicLe = view.getUint32(0, true);
  let little: boolean;
  let nanos: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    little = true;
    nanos = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = view.getUint32(0, false);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) {
      throw new Error("not a pcap file: unknown magic number");
    }
    little = false;
    nanos = magicBe === 0xa1b23c4d;
  }
  const snaplen = view.getUint32(16, little);
  const linkType = view.getUint32(20, little) & 0x0fffffff;
  const records: PcapRecord[] = [];
  let at = 24;
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw new Error(`truncated pcap record header at offset ${at}`);
    const seconds = view.getUint32(at, little);
    const fraction = view.getUint32(at + 4, little);
    const captured = view.getUint32(at + 8, little);
    const originalLength = view.getUint32(at + 12, little);
    if (at + 16 + captured > bytes.length) throw new Error(`truncated pcap record data at offset ${at}`);
    records.push({
      timestampMicros: seconds * 1e6 + (nanos ? Math.floor(fraction / 1000) : fraction),
      originalLength,
      data: bytes.slice(at + 16, at + 16 + captured),
    });
    at += 16 + captured;
  }
  return { linkType, snaplen, records };
}

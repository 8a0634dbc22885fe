import assert from "node:assert/strict";
import { LinkType, PcapWriter } from "../../lib/pcap/writer.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";

class MemorySink {
  chunks: Uint8Array[] = [];
  writeSync(p: Uint8Array): number {
    this.chunks.push(p.slice());
    return p.length;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) (out.set(c, at), at += c.length);
    return out;
  }
}

Deno.test("pcap: the global header is the classic little-endian microsecond format", () => {
  const sink = new MemorySink();
  const writer = new PcapWriter(sink, { linkType: LinkType.ETHERNET, snaplen: 128 });
  writer.close();
  const bytes = sink.bytes();
  assert.equal(bytes.length, 24);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(0, true), 0xa1b2c3d4);
  assert.equal(view.getUint16(4, true), 2);
  assert.equal(view.getUint16(6, true), 4);
  assert.equal(view.getUint32(16, true), 128);
  assert.equal(view.getUint32(20, true), 1);
});

Deno.test("pcap: records round trip with timestamps, truncation to snaplen and original length", () => {
  const sink = new MemorySink();
  const writer = new PcapWriter(sink, { linkType: LinkType.RAW, snaplen: 100, bufferSize: 1 });
  const small = new Uint8Array([1, 2, 3]);
  const big = new Uint8Array(300).map((_, i) => i & 0xff);
  writer.write(small, 1_700_000_000_123_456);
  writer.write(big, 1_700_000_001_000_001);
  writer.write(big.subarray(0, 50), 1_700_000_002_000_000, 1500);
  assert.equal(writer.packets, 3);
  writer.close();
  assert.throws(() => writer.write(small, 0), /closed/);
  const file = parsePcap(sink.bytes());
  assert.equal(file.linkType, LinkType.RAW);
  assert.equal(file.records.length, 3);
  assert.deepEqual(file.records[0], {
    timestampMicros: 1_700_000_000_123_456,
    originalLength: 3,
    data: small,
  });
  assert.equal(file.records[1].data.length, 100);
  assert.equal(file.records[1].originalLength, 300);
  assert.deepEqual(file.records[1].data, big.subarray(0, 100));
  assert.equal(file.records[2].originalLength, 1500);
});

Deno.test("pcap: many records flush through a small buffer without loss", () => {
  const sink = new MemorySink();
  const writer = new PcapWriter(sink, { linkType: LinkType.RAW, bufferSize: 4096 });
  for (let i = 0; i < 1000; i++) writer.write(new Uint8Array(i % 200).fill(i & 0xff), i);
  writer.close();
  const file = parsePcap(sink.bytes());
  assert.equal(file.records.length, 1000);
  for (let i = 0; i < 1000; i++) {
    assert.equal(file.records[i].data.length, i % 200);
    assert.equal(file.records[i].timestampMicros, i);
  }
});

Deno.test("pcap reader: malformed files are refused with a reason", () => {
  assert.throws(() => parsePcap(new Uint8Array(10)), /shorter/);
  assert.throws(() => parsePcap(new Uint8Array(24)), /magic/);
  const sink = new MemorySink();
  const writer = new PcapWriter(sink, { linkType: LinkType.RAW });
  writer.write(new Uint8Array(20), 0);
  writer.close();
  const bytes = sink.bytes();
  assert.throws(() => parsePcap(bytes.subarray(0, bytes.length - 1)), /truncated pcap record data/);
  assert.throws(() => parsePcap(bytes.subarray(0, 30)), /truncated pcap record header/);
});

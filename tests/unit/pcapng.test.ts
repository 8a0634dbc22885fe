import assert from "node:assert/strict";
import { nanosecondWords, PacketDirection, PcapngWriter } from "../../lib/pcap/pcapng_writer.ts";
import { parsePcapng } from "../../lib/pcap/pcapng_reader.ts";
import { parsePcap } from "../../lib/pcap/reader.ts";
import { CaptureFiles, captureFormat, type CaptureSink, rotatedName } from "../../lib/trace/capture_files.ts";

/** An in-memory sink that collects what is written, optionally a few bytes per call. */
class MemorySink implements CaptureSink {
  chunks: Uint8Array[] = [];
  closed = false;
  constructor(readonly step = Infinity) {}
  writeSync(p: Uint8Array): number {
    const n = Math.min(p.length, this.step);
    this.chunks.push(p.slice(0, n));
    return n;
  }
  close(): void {
    this.closed = true;
  }
  get bytes(): Uint8Array {
    const out = new Uint8Array(this.chunks.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

Deno.test("pcapng: nanosecond timestamps split exactly into two 32-bit words", () => {
  for (const [seconds, nanos] of [[0, 0], [1, 5], [1_764_000_000, 999_999_999], [4_294_967_295, 123]]) {
    const [high, low] = nanosecondWords(seconds, nanos);
    assert.equal(BigInt(high) << 32n | BigInt(low), BigInt(seconds) * 1_000_000_000n + BigInt(nanos));
    assert.ok(low >= 0 && low < 2 ** 32 && Number.isInteger(low));
  }
});

Deno.test("pcapng: interfaces, packets with direction, statistics round-trip", () => {
  const sink = new MemorySink(7); // short writes: the writer must loop
  const writer = new PcapngWriter(sink, { bufferSize: 1 });
  const eth = writer.addInterface({
    name: "veth0",
    description: "ingress xdp/generic",
    linkType: 1,
    snaplen: 64,
  });
  const tun = writer.addInterface({ name: "tun0", linkType: 101, snaplen: 64 });
  assert.deepEqual([eth, tun], [0, 1]);
  const frame = Uint8Array.from({ length: 100 }, (_, i) => i);
  writer.write(eth, frame, 1_764_000_000, 123_456_789, 100, PacketDirection.INBOUND);
  writer.write(tun, frame.subarray(0, 3), 1_764_000_001, 1, 3, PacketDirection.OUTBOUND);
  writer.write(tun, frame.subarray(0, 5), 1_764_000_002, 2);
  writer.statistics(eth, 1_764_000_003, 0, { received: 10, accepted: 4, dropped: 1, delivered: 3 });
  writer.close();
  assert.equal(writer.packets, 3);
  assert.equal(writer.bytes, sink.bytes.length);
  const file = parsePcapng(sink.bytes);
  assert.deepEqual(file.interfaces, [
    { linkType: 1, snaplen: 64, name: "veth0", description: "ingress xdp/generic", unitsPerSecond: 1e9 },
    { linkType: 101, snaplen: 64, name: "tun0", unitsPerSecond: 1e9 },
  ]);
  assert.deepEqual(file.packets.map((p) => [p.interfaceId, p.timestampNs, p.originalLength, p.data.length]), [
    [0, 1_764_000_000_123_456_789n, 100, 64], // cut to the snaplen, original length kept
    [1, 1_764_000_001_000_000_001n, 3, 3],
    [1, 1_764_000_002_000_000_002n, 5, 5],
  ]);
  assert.deepEqual(file.packets.map((p) => p.direction), [1, 2, 0]);
  assert.deepEqual(file.packets[0].data, frame.subarray(0, 64));
  assert.deepEqual(file.statistics, [
    { interfaceId: 0, received: 10n, accepted: 4n, osDropped: 1n, delivered: 3n },
  ]);
  assert.throws(() => writer.write(0, frame, 0, 0), Error);
});

Deno.test("capture files: format choice and tcpdump's rotation names", () => {
  assert.equal(captureFormat("x.pcap", 1), "pcap");
  assert.equal(captureFormat("x.PCAPNG", 1), "pcapng");
  assert.equal(captureFormat("x.pcap", 2), "pcapng");
  assert.equal(captureFormat("-", 1), "pcap");
  // -C alone: FILE, FILE1, FILE2…
  assert.deepEqual([0, 1, 2, 10].map((i) => rotatedName("out", i)), ["out", "out1", "out2", "out10"]);
  // -W N: digits for N-1, wrapping (tcpdump 4.99: -W 3 → out0..out2, -W 11 → out00..out10, -W 1 → out)
  assert.deepEqual([0, 1, 2, 3].map((i) => rotatedName("out", i, 3)), ["out0", "out1", "out2", "out0"]);
  assert.deepEqual([0, 10, 11].map((i) => rotatedName("out", i, 11)), ["out00", "out10", "out00"]);
  assert.deepEqual([0, 1].map((i) => rotatedName("out", i, 1)), ["out", "out"]);
});

Deno.test("capture files: -C rotates once a file is larger than the limit; -W reuses names", () => {
  const files = new Map<string, MemorySink>();
  const open = (name: string) => {
    const sink = new MemorySink();
    files.set(name, sink);
    return sink;
  };
  const capture = new CaptureFiles(
    { path: "cap", format: "pcap", snaplen: 2000, fileSizeBytes: 3000, fileCount: 2, open },
    [{ name: "vb", linkType: 1 }],
  );
  const packet = new Uint8Array(1000);
  // Each record is 16 + 1000 bytes after a 24-byte header: three fit before the file exceeds 3000.
  for (let i = 0; i < 7; i++) capture.write(0, packet, 100 + i, 0, 1000, "ingress");
  capture.close();
  assert.deepEqual(capture.names, ["cap0", "cap1", "cap0"]);
  assert.equal(capture.packets, 7);
  assert.ok([...files.values()].every((s) => s.closed));
  // cap0 was overwritten by the third file: packets 6 only; cap1 holds 3, 4, 5.
  const first = parsePcap(files.get("cap0")!.bytes);
  const second = parsePcap(files.get("cap1")!.bytes);
  assert.deepEqual(second.records.map((r) => r.timestampMicros / 1e6), [103, 104, 105]);
  assert.deepEqual(first.records.map((r) => r.timestampMicros / 1e6), [106]);
});

Deno.test("capture files: pcapng repeats the interface blocks in every file and adds interfaces", () => {
  const files = new Map<string, MemorySink>();
  const capture = new CaptureFiles({
    path: "c.pcapng",
    format: "pcapng",
    snaplen: 128,
    fileSizeBytes: 400, // the first file passes it with the second packet
    open: (name) => {
      const sink = new MemorySink();
      files.set(name, sink);
      return sink;
    },
  }, [{ name: "va", description: "ingress xdp/generic", linkType: 1 }]);
  capture.write(0, new Uint8Array(200), 1, 0, 200, "ingress");
  const added = capture.addInterface({ name: "tun0", description: "egress tcx", linkType: 101 });
  capture.write(added, new Uint8Array(40), 2, 0, 40, "egress");
  capture.write(0, new Uint8Array(40), 3, 0, 40, "ingress");
  capture.close((id) => ({ received: id + 10, dropped: 0 }), [4, 0]);
  assert.deepEqual(capture.names, ["c.pcapng", "c.pcapng1"]);
  const first = parsePcapng(files.get("c.pcapng")!.bytes);
  const second = parsePcapng(files.get("c.pcapng1")!.bytes);
  assert.deepEqual(first.interfaces.map((i) => i.name), ["va", "tun0"]);
  assert.deepEqual(first.packets.map((p) => [p.interfaceId, p.direction]), [[0, 1], [1, 2]]);
  assert.deepEqual(second.interfaces.map((i) => [i.name, i.linkType]), [["va", 1], ["tun0", 101]]);
  assert.deepEqual(second.packets.map((p) => [p.interfaceId, p.direction]), [[0, 1]]);
  assert.deepEqual(second.statistics.map((s) => [s.interfaceId, s.received]), [[0, 10n], [1, 11n]]);
});

Deno.test("capture files: standard output is written, never closed", () => {
  const stdout = new MemorySink();
  const capture = new CaptureFiles({ path: "-", format: "pcap", snaplen: 64, stdout }, [{
    name: "tun0",
    linkType: 101,
  }]);
  capture.write(0, new Uint8Array(20), 5, 1000, 20, "egress");
  capture.close();
  assert.equal(stdout.closed, false);
  const file = parsePcap(stdout.bytes);
  assert.equal(file.linkType, 101);
  assert.deepEqual(file.records.map((r) => [r.timestampMicros, r.data.length]), [[5_000_001, 20]]);
});

/**
 * RingBufferReader over a memfd laid out like a BPF ring buffer's mmap: consumer page, producer page,
 * then the data area. (The kernel maps the data area twice; a memfd cannot, so the wrap-around test
 * writes the wrapped record's bytes into both copies, as the double mapping would show them.)
 */

import assert from "node:assert/strict";
import { RingBufferReader } from "../../lib/trace/ring_buffer_reader.ts";

const PAGE = 4096;
const SIZE = 4096;

const c = Deno.dlopen(
  "libc.so.6",
  {
    memfd_create: { parameters: ["buffer", "u32"], result: "i32" },
    ftruncate: { parameters: ["i32", "i64"], result: "i32" },
    pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
    pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
  } as const,
);

class FakeRing {
  readonly fd: number;
  producer = 0;

  constructor() {
    this.fd = c.symbols.memfd_create(new TextEncoder().encode("ring\0"), 0);
    assert.ok(this.fd >= 0);
    assert.equal(c.symbols.ftruncate(this.fd, BigInt(2 * PAGE + 2 * SIZE)), 0);
  }

  #write(offset: number, bytes: Uint8Array<ArrayBuffer>) {
    assert.equal(
      Number(c.symbols.pwrite(this.fd, bytes, BigInt(bytes.length), BigInt(offset))),
      bytes.length,
    );
  }

  /** Appends a record (header flags: busy, discard) and publishes the producer position. */
  push(sample: number[], flags: { busy?: boolean; discard?: boolean } = {}) {
    const record = new Uint8Array((8 + sample.length + 7) & ~7);
    const view = new DataView(record.buffer);
    view.setUint32(0, sample.length | (flags.busy ? 1 << 31 : 0) | (flags.discard ? 1 << 30 : 0), true);
    record.set(sample, 8);
    const at = this.producer % SIZE;
    this.#write(2 * PAGE + at, record);
    if (at + record.length > SIZE) this.#write(2 * PAGE, record.subarray(SIZE - at)); // the second mapping
    this.producer += record.length;
    const position = new Uint8Array(8);
    new DataView(position.buffer).setBigUint64(0, BigInt(this.producer), true);
    this.#write(PAGE, position);
    return at;
  }

  consumer(): number {
    const position = new Uint8Array(8);
    c.symbols.pread(this.fd, position, 8n, 0n);
    return Number(new DataView(position.buffer).getBigUint64(0, true));
  }

  setHeader(at: number, length: number) {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, length, true);
    this.#write(2 * PAGE + at, header);
  }
}

function collect(reader: RingBufferReader, limit = Infinity): number[][] {
  const samples: number[][] = [];
  reader.drain(
    (bytes, offset, length) => void samples.push([...bytes.subarray(offset, offset + length)]),
    limit,
  );
  return samples;
}

Deno.test("ring buffer reader: reads committed records in order and publishes the consumer position", () => {
  const ring = new FakeRing();
  const reader = new RingBufferReader(ring.fd, SIZE);
  try {
    assert.deepEqual(collect(reader), []);
    ring.push([1, 2, 3]);
    ring.push([4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.equal(reader.pendingBytes(), 16 + 24);
    assert.deepEqual(collect(reader), [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11, 12]]);
    assert.equal(ring.consumer(), 40);
    assert.equal(reader.pendingBytes(), 0);
  } finally {
    reader.close();
    c.symbols.close(ring.fd);
  }
});

Deno.test("ring buffer reader: stops at a busy record, skips discarded ones, honours the limit", () => {
  const ring = new FakeRing();
  const reader = new RingBufferReader(ring.fd, SIZE);
  try {
    ring.push([1]);
    ring.push([2], { discard: true });
    const busyAt = ring.push([3], { busy: true });
    ring.push([4]);
    assert.deepEqual(collect(reader), [[1]]);
    assert.equal(ring.consumer(), 32); // past the discarded record, not the busy one
    ring.setHeader(busyAt, 1); // the kernel commits it
    assert.deepEqual(collect(reader, 1), [[3]]);
    assert.deepEqual(collect(reader), [[4]]);
    let stopped = 0;
    ring.push([5]);
    ring.push([6]);
    reader.drain(() => (stopped++, false));
    assert.equal(stopped, 1);
    assert.deepEqual(collect(reader), [[6]]);
  } finally {
    reader.close();
    c.symbols.close(ring.fd);
  }
});

Deno.test("ring buffer reader: a record that wraps around the end is read whole", () => {
  const ring = new FakeRing();
  const reader = new RingBufferReader(ring.fd, SIZE);
  try {
    const filler = new Array(SIZE - 8 - 8 - 16).fill(7);
    ring.push(filler);
    assert.equal(collect(reader).length, 1);
    const wrapped = Array.from({ length: 40 }, (_, i) => i);
    const at = ring.push(wrapped);
    assert.ok(at + 48 > SIZE, "the record crosses the end of the data area");
    assert.deepEqual(collect(reader), [wrapped]);
    assert.equal(ring.consumer(), ring.producer);
  } finally {
    reader.close();
    c.symbols.close(ring.fd);
  }
});

Deno.test("ring buffer reader: rejects sizes that are not power-of-two multiples of the page", () => {
  assert.throws(() => new RingBufferReader(-1, 1000), RangeError);
  assert.throws(() => new RingBufferReader(-1, 3 * 4096), RangeError);
});

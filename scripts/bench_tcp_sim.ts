/**
 * In-memory bulk throughput between two TcpLayers: a direct FIFO wire (packets copied into reused
 * slots, no impairments) and a virtual clock, so the time measured is the TCP core's own work
 * (segmentation, checksums both ways, ACK processing, ring buffers) plus one copy per packet and the
 * application's copies in and out.
 * Usage: deno run -A scripts/bench_tcp_sim.ts [MiB=256] [maxSendSegment=0]
 *
 * @module
 */

import type { Ipv4Datagram, Ipv4Sink } from "../lib/iface/protocol.ts";
import { TcpLayer } from "../lib/tcp/layer.ts";
import { Ipv4Packet } from "../lib/wire/ipv4.ts";
import { Prng } from "../lib/prng.ts";

/** A one-way FIFO of packets copied into reused slots. */
export class Wire implements Ipv4Sink {
  readonly #slots: Uint8Array[] = [];
  readonly #lengths: number[] = [];
  #count = 0;

  sendIpv4(packet: Uint8Array): void {
    if (this.#count === this.#slots.length) {
      this.#slots.push(new Uint8Array(65536));
      this.#lengths.push(0);
    }
    this.#slots[this.#count].set(packet);
    this.#lengths[this.#count++] = packet.length;
  }

  /** Delivers everything queued to `layer`, replies going to `back`; returns how many. */
  deliver(layer: TcpLayer, now: number, back: Ipv4Sink, datagram: Ipv4Datagram, view: Ipv4Packet): number {
    // Swap out the queue first: delivering may enqueue onto the other wire only.
    const n = this.#count;
    for (let i = 0; i < n; i++) {
      const bytes = this.#slots[i];
      view.wrap(bytes);
      datagram.src = view.src;
      datagram.dst = view.dst;
      datagram.bytes = bytes;
      datagram.payloadOffset = view.headerLength;
      datagram.payloadEnd = this.#lengths[i];
      layer.ingress(datagram, now, back);
    }
    this.#count = 0;
    return n;
  }
}

/** Transfers `bytes` from A to B; returns wall seconds and both layers. */
export function transfer(
  bytes: number,
  maxSendSegment: number,
): { seconds: number; a: TcpLayer; b: TcpLayer } {
  const secret = new Uint8Array(16).fill(3);
  const prng = new Prng(1);
  const random = () => prng.nextU32();
  const a = new TcpLayer({ secret, random, maxSendSegment, timeWaitMs: 1 });
  const b = new TcpLayer({ secret, random, maxSendSegment, timeWaitMs: 1 });
  const aToB = new Wire(), bToA = new Wire();
  const datagram: Ipv4Datagram = {
    src: 0,
    dst: 0,
    protocol: 6,
    ttl: 64,
    bytes: new Uint8Array(0),
    payloadOffset: 0,
    payloadEnd: 0,
  };
  const view = new Ipv4Packet();
  const listener = b.listen(80);
  const chunk = new Uint8Array(256 * 1024).fill(0x5a);
  const sink = new Uint8Array(256 * 1024);
  let received = 0, written = 0, eof = false;
  listener.onAcceptable = (l) => {
    const c = l.accept()!;
    const drain = () => {
      for (;;) {
        const n = c.recv(sink);
        if (n === null) {
          eof = true;
          c.close();
          return;
        }
        if (n === 0) return;
        received += n;
      }
    };
    c.onEvent = drain;
    drain();
  };
  const client = a.connect(0x0a000001, 0x0a000002, 80, 0);
  const fill = () => {
    while (written < bytes && client.writableBytes > 0) {
      written += client.send(chunk.subarray(0, Math.min(chunk.length, bytes - written)));
    }
    if (written === bytes && !client.writeShut && client.state !== "CLOSED") client.close();
  };
  client.onEvent = fill;
  fill();
  let now = 0;
  const t0 = performance.now();
  while (!eof) {
    now += 0.01;
    a.poll(now, aToB);
    b.poll(now, bToA);
    const moved = aToB.deliver(b, now, bToA, datagram, view) + bToA.deliver(a, now, aToB, datagram, view);
    if (moved === 0 && a.pollRequested === false && b.pollRequested === false) {
      const next = Math.min(a.poll(now, aToB) ?? Infinity, b.poll(now, bToA) ?? Infinity);
      if (next === Infinity) break;
      now = Math.max(now, next);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  if (received !== bytes) throw new Error(`received ${received} of ${bytes}`);
  return { seconds, a, b };
}

if (import.meta.main) {
  const mib = Number(Deno.args[0] ?? 256);
  const maxSendSegment = Number(Deno.args[1] ?? 0);
  transfer(16 << 20, maxSendSegment); // JIT warm-up
  const { seconds, a, b } = transfer(mib << 20, maxSendSegment);
  const sa = a.stats(), sb = b.stats();
  console.log(
    `${mib} MiB A→B, maxSendSegment=${maxSendSegment || "MSS"}: ${seconds.toFixed(3)} s wall, ` +
      `${(((mib << 20) * 8) / seconds / 1e9).toFixed(2)} Gbit/s, ` +
      `${Math.round((sa.segmentsOut + sb.segmentsOut) / seconds)} segments/s ` +
      `(A sent ${sa.segmentsOut}, B sent ${sb.segmentsOut}, retransmissions ${sa.retransmissions})`,
  );
}

/**
 * Deterministic network simulation for TCP tests: hosts running {@link TcpLayer}s joined by an in-memory
 * link with a virtual clock and seeded impairments (loss, duplication, reordering, delay, jitter, a rate
 * limit with a drop-tail queue). Everything derives from one seed, so a failure replays exactly.
 *
 * @module
 */

import { emptyIpv4Datagram, type Ipv4Datagram, type Ipv4Sink } from "../../lib/iface/protocol.ts";
import { TcpConnection, TcpEvent } from "../../lib/tcp/connection.ts";
import { TcpLayer } from "../../lib/tcp/layer.ts";
import type { TcpLayerOptions } from "../../lib/tcp/config.ts";
import { Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { emulateOffload } from "./tcp_packet.ts";

/** A small, fast, seedable PRNG (mulberry32). */
export class Prng {
  #state: number;

  /** Seeds the generator. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** The next unsigned 32-bit value. */
  nextU32(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** 16 random bytes (ISN secrets). */
  bytes16(): Uint8Array {
    const b = new Uint8Array(16);
    for (let i = 0; i < 16; i++) b[i] = this.nextU32() & 0xff;
    return b;
  }
}

/** Impairments of one direction of the link. */
export interface LinkProfile {
  /** One-way base delay in ms. */
  delayMs: number;
  /** Extra uniform random delay in [0, jitterMs) (reorders packets when larger than their spacing). */
  jitterMs: number;
  /** Probability a packet is dropped. */
  loss: number;
  /** Probability a packet is delivered twice. */
  duplicate: number;
  /** Probability a packet is held back by `reorderDelayMs` (overtaken by later ones). */
  reorder: number;
  /** How long a reordered packet is held. */
  reorderDelayMs: number;
  /** Serialization rate in bytes per ms (0: infinite). 12500 ≈ 100 Mbit/s. */
  rateBytesPerMs: number;
  /** Drop-tail queue limit in packets when rate-limited. */
  queuePackets: number;
}

/** A perfect link with 1 ms delay. */
export const CLEAN_LINK: LinkProfile = {
  delayMs: 1,
  jitterMs: 0,
  loss: 0,
  duplicate: 0,
  reorder: 0,
  reorderDelayMs: 0,
  rateBytesPerMs: 0,
  queuePackets: 1000,
};

interface InFlight {
  time: number;
  order: number;
  to: SimHost;
  bytes: Uint8Array;
}

/** A min-heap of packets in flight ordered by (time, order). */
class EventHeap {
  readonly items: InFlight[] = [];

  push(item: InFlight): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!EventHeap.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  peek(): InFlight | undefined {
    return this.items[0];
  }

  pop(): InFlight | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && EventHeap.less(a[l], a[m])) m = l;
        if (r < a.length && EventHeap.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }

  static less(x: InFlight, y: InFlight): boolean {
    return x.time < y.time || (x.time === y.time && x.order < y.order);
  }
}

/** One simulated host: an address, a TCP layer and its poll deadline. */
export class SimHost {
  /** The host's IPv4 address. */
  readonly address: number;
  /** Its TCP layer. */
  readonly tcp: TcpLayer;
  /** Packets this host sent (IPv4 bytes), when capture is on. */
  readonly sent: Uint8Array[] = [];
  /** Virtual send time of each captured packet. */
  readonly sentAt: number[] = [];
  /** Record every sent packet in {@link sent}. */
  capture = false;
  /** The next deadline returned by poll. */
  deadline: number | null = null;
  /** Per-direction link to the peer host. */
  link: LinkProfile = CLEAN_LINK;
  /** The other end. */
  peer: SimHost | null = null;
  /** Packets sent. */
  packetsSent = 0;
  /** Packets dropped by the link (loss or full queue). */
  packetsDropped = 0;
  /** The sink the layer writes into. */
  sink: Ipv4Sink;
  #busyUntil = 0;
  #queued = 0;

  /**
   * Advertises checksum and segmentation offload to the layer and cuts its super-segments into wire
   * segments the way a TSO device would ({@link emulateOffload}).
   */
  enableOffloads(lossPerSuperSegment = false): void {
    this.sink = {
      offloads: true,
      sendIpv4: (packet, offload = null) => {
        // Like an impairment layer above the device: one loss decision for the whole super-segment.
        const link = this.link;
        if (lossPerSuperSegment && link.loss > 0 && this.net.rng.next() < link.loss) {
          this.packetsDropped++;
          return;
        }
        for (const piece of emulateOffload(packet, offload)) {
          this.#transmit(piece, lossPerSuperSegment);
        }
      },
    };
  }

  constructor(readonly net: SimNetwork, address: number, options: TcpLayerOptions) {
    this.address = address;
    this.tcp = new TcpLayer(options);
    this.tcp.onPollRequested = () => net.markDirty(this);
    this.sink = { sendIpv4: (packet) => this.#transmit(packet) };
  }

  #transmit(packet: Uint8Array, lossDecided = false): void {
    const net = this.net;
    this.packetsSent++;
    if (this.capture) {
      this.sent.push(packet.slice());
      this.sentAt.push(net.now);
    }
    const peer = this.peer;
    if (peer === null) return;
    const link = this.link;
    const rng = net.rng;
    if (!lossDecided && link.loss > 0 && rng.next() < link.loss) {
      this.packetsDropped++;
      return;
    }
    let departure = net.now;
    if (link.rateBytesPerMs > 0) {
      if (this.#busyUntil < net.now) {
        this.#busyUntil = net.now;
        this.#queued = 0;
      }
      if (this.#queued >= link.queuePackets) {
        this.packetsDropped++;
        return;
      }
      this.#busyUntil += packet.length / link.rateBytesPerMs;
      this.#queued++;
      departure = this.#busyUntil;
      net.scheduleDequeue(this, departure);
    }
    const copies = link.duplicate > 0 && rng.next() < link.duplicate ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      let time = departure + link.delayMs;
      if (link.jitterMs > 0) time += rng.next() * link.jitterMs;
      if (link.reorder > 0 && rng.next() < link.reorder) time += link.reorderDelayMs;
      net.enqueue({ time, order: 0, to: peer, bytes: packet.slice() });
    }
  }

  /** Called when a queued packet finished serializing. @internal */
  dequeued(): void {
    if (this.#queued > 0) this.#queued--;
  }
}

/** Two hosts joined by a link, driven by a virtual clock. */
export class SimNetwork {
  /** Virtual time in ms. */
  now = 0;
  /** The seeded random source of the link. */
  readonly rng: Prng;
  /** The seed, printed on failure. */
  readonly seed: number;
  /** Host A (10.0.0.1). */
  readonly a: SimHost;
  /** Host B (10.0.0.2). */
  readonly b: SimHost;
  /** Packets delivered. */
  delivered = 0;
  /** {@link run} gives up once this many packets were delivered (a packet storm never ends otherwise). */
  packetLimit = Infinity;
  /** Whether {@link run} stopped at {@link packetLimit}. */
  stormed = false;
  readonly #heap = new EventHeap();
  #order = 0;
  readonly #dirty = new Set<SimHost>();
  readonly #dequeues: { time: number; host: SimHost }[] = [];
  readonly #view = new Ipv4Packet();
  readonly #datagram: Ipv4Datagram = emptyIpv4Datagram();

  /** Creates the network; both layers get secrets and random sources derived from `seed`. */
  constructor(seed: number, options: TcpLayerOptions = {}, optionsB: TcpLayerOptions = options) {
    this.seed = seed;
    this.rng = new Prng(seed);
    const rngA = new Prng(seed ^ 0x5a5a5a5a), rngB = new Prng(seed ^ 0xa5a5a5a5);
    this.a = new SimHost(this, 0x0a000001, {
      secret: rngA.bytes16(),
      random: () => rngA.nextU32(),
      ...options,
    });
    this.b = new SimHost(this, 0x0a000002, {
      secret: rngB.bytes16(),
      random: () => rngB.nextU32(),
      ...optionsB,
    });
    this.a.peer = this.b;
    this.b.peer = this.a;
  }

  /** Sets the link profile of both directions. */
  setLink(profile: Partial<LinkProfile>, profileBtoA: Partial<LinkProfile> = profile): void {
    this.a.link = { ...CLEAN_LINK, ...profile };
    this.b.link = { ...CLEAN_LINK, ...profileBtoA };
  }

  /** Queues a packet for delivery. @internal */
  enqueue(item: InFlight): void {
    item.order = this.#order++;
    this.#heap.push(item);
  }

  /** Tracks the end of a packet's serialization. @internal */
  scheduleDequeue(host: SimHost, time: number): void {
    this.#dequeues.push({ time, host });
  }

  /** Marks a host whose application asked for a poll. @internal */
  markDirty(host: SimHost): void {
    this.#dirty.add(host);
  }

  /** Injects raw IPv4 bytes into `host` now (conformance tests). */
  inject(host: SimHost, bytes: Uint8Array): void {
    this.#deliver(host, bytes);
    this.#flushDirty();
  }

  #deliver(host: SimHost, bytes: Uint8Array): void {
    const ip = this.#view.wrap(bytes);
    if (ip.check() !== null) throw new Error("sim: malformed IPv4 packet emitted");
    const d = this.#datagram;
    d.src = ip.src;
    d.dst = ip.dst;
    d.protocol = ip.protocol;
    d.ttl = ip.ttl;
    d.bytes = bytes;
    d.payloadOffset = ip.headerLength;
    d.payloadEnd = ip.totalLength;
    this.delivered++;
    host.tcp.ingress(d, this.now, host.sink);
    host.deadline = null; // recomputed by the next poll
    this.#dirty.add(host);
  }

  #flushDirty(): void {
    while (this.#dirty.size > 0) {
      const hosts = [...this.#dirty];
      this.#dirty.clear();
      for (const h of hosts) h.deadline = h.tcp.poll(this.now, h.sink);
    }
  }

  /** Polls both hosts now (after the test changed application state). */
  pollAll(): void {
    this.#dirty.add(this.a);
    this.#dirty.add(this.b);
    this.#flushDirty();
  }

  /**
   * Runs the simulation until `done()` holds or virtual time passes `untilMs`; returns whether `done()`
   * held. Each step advances the clock to the next packet arrival or timer deadline.
   */
  run(done: () => boolean, untilMs: number): boolean {
    this.pollAll();
    while (!done()) {
      if (this.delivered > this.packetLimit) {
        this.stormed = true;
        return false;
      }
      let next = Infinity;
      const top = this.#heap.peek();
      if (top !== undefined) next = top.time;
      for (const h of [this.a, this.b]) {
        if (h.deadline !== null && h.deadline < next) next = h.deadline;
      }
      if (next === Infinity || next > untilMs) {
        this.now = Math.max(this.now, Math.min(untilMs, next));
        return done();
      }
      if (next > this.now) this.now = next;
      if (this.#dequeues.length > 0) {
        let w = 0;
        for (const q of this.#dequeues) {
          if (q.time <= this.now) q.host.dequeued();
          else this.#dequeues[w++] = q;
        }
        this.#dequeues.length = w;
      }
      while (true) {
        const p = this.#heap.peek();
        if (p === undefined || p.time > this.now) break;
        this.#heap.pop();
        this.#deliver(p.to, p.bytes);
      }
      for (const h of [this.a, this.b]) {
        if (h.deadline !== null && h.deadline <= this.now) this.#dirty.add(h);
      }
      this.#flushDirty();
    }
    return true;
  }

  /** Advances virtual time by `ms`, processing everything due. */
  advance(ms: number): void {
    const until = this.now + ms;
    this.run(() => false, until);
    this.now = until;
  }
}

/** The byte at `offset` of test stream `stream` (cheap to regenerate, so receivers check without storing). */
export function streamByte(stream: number, offset: number): number {
  let x = Math.imul(offset ^ Math.imul(stream, 0x9e3779b1), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) & 0xff;
}

/**
 * Drives one side of a bulk transfer: writes `total` bytes of stream `stream` as buffer space allows,
 * then half-closes; reads everything the peer sends and checks it against `expectStream`.
 */
export class BulkEndpoint {
  /** Bytes accepted by send(). */
  written = 0;
  /** Bytes read and verified. */
  read = 0;
  /** Whether recv() returned end of stream. */
  eof = false;
  /** First mismatch, if any. */
  mismatch: string | null = null;
  /** Whether the connection reached CLOSED. */
  closed = false;
  /** Whether OPEN was seen. */
  opened = false;
  readonly #chunk = new Uint8Array(64 * 1024);
  readonly #readBuf = new Uint8Array(64 * 1024);

  constructor(
    readonly connection: TcpConnection,
    readonly total: number,
    readonly stream: number,
    readonly expectStream: number,
    readonly closeWhenDone = true,
  ) {
    connection.onEvent = (_c, events) => this.onEvent(events);
    if (connection.state === "ESTABLISHED" || connection.state === "CLOSE_WAIT") {
      this.opened = true;
      this.pump();
    }
  }

  /** Reacts to readiness events. */
  onEvent(events: number): void {
    if (events & TcpEvent.OPEN) this.opened = true;
    this.pump();
    if (events & TcpEvent.CLOSED) this.closed = true;
  }

  /** Moves as many bytes as possible in both directions. */
  pump(): void {
    const c = this.connection;
    while (!this.eof) {
      const n = c.recv(this.#readBuf);
      if (n === null) {
        this.eof = true;
        break;
      }
      if (n === 0) break;
      for (let i = 0; i < n; i++) {
        const want = streamByte(this.expectStream, this.read + i);
        if (this.#readBuf[i] !== want && this.mismatch === null) {
          this.mismatch = `byte ${this.read + i}: got ${this.#readBuf[i]}, want ${want}`;
        }
      }
      this.read += n;
    }
    while (this.written < this.total && c.writableBytes > 0) {
      const n = Math.min(this.#chunk.length, this.total - this.written, c.writableBytes);
      for (let i = 0; i < n; i++) this.#chunk[i] = streamByte(this.stream, this.written + i);
      this.written += c.send(this.#chunk.subarray(0, n));
    }
    if (this.written === this.total && this.closeWhenDone && !c.writeShut && c.state !== "CLOSED") {
      c.shutdownWrite();
    }
  }
}

/** Parameters of {@link runTransfer}. */
export interface TransferSpec {
  /** Bytes from A (client) to B (server). */
  aToB: number;
  /** Bytes from B to A. */
  bToA: number;
  /** Link impairments (both directions). */
  link?: Partial<LinkProfile>;
  /** Layer options for both hosts (TIME-WAIT defaults to 1 s here). */
  options?: TcpLayerOptions;
  /** Layer options for B, if different. */
  optionsB?: TcpLayerOptions;
  /** Give A's layer a TSO/checksum-offloading sink. */
  offloadA?: boolean;
  /** With `offloadA`, lose whole super-segments (burst loss) instead of single segments. */
  burstLossA?: boolean;
  /** Virtual time limit in ms. */
  limitMs?: number;
}

/** Outcome of {@link runTransfer}. */
export interface TransferResult {
  /** Whether both directions arrived intact, both sides saw EOF and both layers emptied. */
  ok: boolean;
  /** What went wrong, with the seed for replay. */
  failure: string | null;
  /** Virtual ms until done. */
  elapsedMs: number;
  /** The network, for inspection. */
  net: SimNetwork;
}

/**
 * Runs a full connection lifecycle between two layers: connect, bidirectional bulk transfer with
 * byte-for-byte checks, half-closes, TIME-WAIT expiry. Deterministic in `seed`.
 */
export function runTransfer(seed: number, spec: TransferSpec): TransferResult {
  const net = new SimNetwork(
    seed,
    { timeWaitMs: 1000, ...spec.options },
    { timeWaitMs: 1000, ...(spec.optionsB ?? spec.options) },
  );
  net.setLink(spec.link ?? {});
  if (spec.offloadA) net.a.enableOffloads(spec.burstLossA === true);
  const listener = net.b.tcp.listen(80);
  let server: BulkEndpoint | null = null;
  listener.onAcceptable = (l) => {
    const c = l.accept();
    if (c !== null) server = new BulkEndpoint(c, spec.bToA, 2, 1);
  };
  const client = new BulkEndpoint(net.a.tcp.connect(net.a.address, net.b.address, 80, 0), spec.aToB, 1, 2);
  const done = () => {
    const s = server as BulkEndpoint | null;
    return client.eof && s !== null && s.eof && net.a.tcp.connectionCount === 0 &&
      net.b.tcp.connectionCount === 0;
  };
  const limit = spec.limitMs ?? 600_000;
  // Far above what any transfer needs (≈ 2 packets per MSS each way, retransmissions included).
  net.packetLimit = 200_000 + 20 * Math.ceil((spec.aToB + spec.bToA) / 1000);
  net.run(done, limit);
  const s = server as BulkEndpoint | null;
  let failure: string | null = null;
  const where = `seed=${seed}`;
  if (net.stormed) failure = `${where}: packet storm: ${net.delivered} packets by t=${net.now} ms`;
  else if (client.mismatch) failure = `${where}: B→A corrupt: ${client.mismatch}`;
  else if (s?.mismatch) failure = `${where}: A→B corrupt: ${s.mismatch}`;
  else if (s === null) failure = `${where}: never accepted (client state ${client.connection.state})`;
  else if (client.read !== spec.bToA || s.read !== spec.aToB || !client.eof || !s.eof) {
    failure = `${where}: incomplete at t=${net.now}: A read ${client.read}/${spec.bToA} eof=${client.eof} ` +
      `(${client.connection.state}, err ${client.connection.error}), B read ${s.read}/${spec.aToB} eof=${s.eof} ` +
      `(${s.connection.state}, err ${s.connection.error})`;
  } else if (net.a.tcp.connectionCount !== 0 || net.b.tcp.connectionCount !== 0) {
    failure = `${where}: connections left: A ${JSON.stringify(net.a.tcp.countByState())} B ${
      JSON.stringify(net.b.tcp.countByState())
    }`;
  } else if (client.connection.error !== null || s.connection.error !== null) {
    failure = `${where}: closed with error ${client.connection.error}/${s.connection.error}`;
  }
  return { ok: failure === null, failure, elapsedMs: net.now, net };
}

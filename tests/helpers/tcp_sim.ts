/**
 * Deterministic network simulation for TCP tests: two hosts, each the stack's own core ({@link StackCore})
 * on an in-memory device stepped like the real I/O loop, joined by a link with a virtual clock and the
 * project's impairment model (loss, duplication, reordering, delay, jitter, a rate limit with a drop-tail
 * queue). Everything derives from one seed, so a failure replays exactly.
 *
 * @module
 */

import { TcpConnection, TcpEvent } from "../../lib/tcp/connection.ts";
import type { TcpLayer } from "../../lib/tcp/layer.ts";
import type { TcpLayerOptions } from "../../lib/tcp/config.ts";
import { Ipv4Packet } from "../../lib/wire/ipv4.ts";
import { StackCore } from "../../lib/stack/core.ts";
import { DeviceLoop } from "../../lib/stack/loop.ts";
import { MemoryDevice } from "../../lib/phy/memory.ts";
import { Impairment, type LinkImpairment, PERFECT_LINK } from "../../lib/phy/impairment.ts";
import { Prng } from "../../lib/prng.ts";
import { emulateOffload } from "./tcp_packet.ts";
import type { TxOffload } from "../../lib/wire/offload.ts";

/** Impairments of one direction of the link: the project's one model (lib/phy/impairment.ts). */
export type LinkProfile = LinkImpairment;

/** A perfect link with 1 ms delay. */
export const CLEAN_LINK: LinkProfile = { ...PERFECT_LINK, delayMs: 1 };

/** The simulated hosts share one /24 (10.0.0.1 and 10.0.0.2): on-link, no gateway. */
const SIM_PREFIX = 24;
/**
 * The link carries any IPv4 packet whole (nothing is fragmented), while TCP's MTU stays 1500 unless the
 * options say otherwise: segments above the MSS (`maxSendSegment`) cross as they are, as a TSO sender's
 * would to a device that cuts them.
 */
const SIM_LINK_MTU = 65535;
const SIM_TCP_MTU = 1500;

/**
 * One simulated host: a whole stack core ({@link StackCore}) on an in-memory device ({@link MemoryDevice}),
 * stepped by the same {@link DeviceLoop} turn as the real I/O loop, with a virtual clock. What it sends
 * crosses an impaired link ({@link Impairment}) to the peer's device.
 */
export class SimHost {
  /** The host's IPv4 address. */
  readonly address: number;
  /** The core: IPv4, UDP and TCP wired as in the real stack. */
  readonly core: StackCore;
  /** The in-memory device the core runs on. */
  readonly device: MemoryDevice;
  /** Packets this host sent (IPv4 bytes, after segmentation offload), when capture is on. */
  readonly sent: Uint8Array[] = [];
  /** Virtual send time of each captured packet. */
  readonly sentAt: number[] = [];
  /** Record every sent packet in {@link sent}. */
  capture = false;
  /** The next deadline returned by poll. */
  deadline: number | null = null;
  /** The other end. */
  peer: SimHost | null = null;
  /** Packets sent (after segmentation offload). */
  packetsSent = 0;
  readonly #loop: DeviceLoop;
  readonly #clock: () => number;
  readonly #view = new Ipv4Packet();
  #link: Impairment;
  #offloads = false;
  #lossPerSuperSegment = false;

  constructor(readonly net: SimNetwork, address: number, options: TcpLayerOptions, offloads = false) {
    this.address = address;
    this.#offloads = offloads;
    this.#link = new Impairment(CLEAN_LINK, net.rng);
    this.device = new MemoryDevice({
      name: `sim${address & 0xff}`,
      mtu: SIM_LINK_MTU,
      offloads,
      onSend: (packet, offload) => this.#transmit(packet, offload),
    });
    this.#loop = new DeviceLoop(this.device, { batchSize: Number.MAX_SAFE_INTEGER });
    this.#clock = () => net.now;
    this.core = new StackCore(
      {
        medium: "ip",
        mtu: this.device.mtu,
        offloads,
        address: { address, prefixLength: SIM_PREFIX },
        tcp: { mtu: SIM_TCP_MTU, ...options },
      },
      this.#loop.transmit,
      net.now,
    );
    this.#loop.attach(this.core);
    // The application queued output: poll this host in the current step.
    this.core.onWake = () => net.markDirty(this);
  }

  /** The host's TCP layer. */
  get tcp(): TcpLayer {
    return this.core.tcp;
  }

  /** The impairment of what this host sends. */
  get link(): Readonly<LinkProfile> {
    return this.#link.spec;
  }

  /** Sets the impairment of what this host sends (drawing from the network's PRNG). */
  setLink(profile: Partial<LinkProfile>): void {
    this.#link = new Impairment({ ...CLEAN_LINK, ...profile }, this.net.rng);
  }

  /** Packets lost on the way out (loss or a full queue), super-segments lost whole counted once. */
  get packetsDropped(): number {
    return this.#link.stats().lost;
  }

  /**
   * Advertises checksum and segmentation offload to the core; what it sends is cut into wire segments the
   * way a TSO device would ({@link emulateOffload}). Call before any traffic.
   */
  enableOffloads(lossPerSuperSegment = false): void {
    if (!this.#offloads) throw new Error("sim: create the network with offloads for this host");
    this.#lossPerSuperSegment = lossPerSuperSegment;
  }

  /** One turn of the host's loop at the network's time: reads what arrived, polls; keeps the deadline. */
  turn(): void {
    this.deadline = this.#loop.turn(this.#clock).deadline;
  }

  /** The earliest time a packet on the way out is due at the peer, or `null`. */
  nextArrival(): number | null {
    return this.#link.nextDue();
  }

  /** Hands what is due now on the way out to the peer's device; returns how many. */
  arrive(now: number): number {
    return this.#link.deliverDue(now, this.#toPeer);
  }

  readonly #toPeer = (packet: Uint8Array): void => {
    const peer = this.peer;
    if (peer === null) return;
    this.net.delivered++;
    peer.device.inject(packet);
    this.net.markDirty(peer);
  };

  #transmit(packet: Uint8Array, offload: TxOffload | null): void {
    if (!this.#offloads) {
      this.#send(packet, false);
      return;
    }
    // Like an impairment layer above the device: one loss decision for the whole super-segment.
    const lossDecided = this.#lossPerSuperSegment;
    if (lossDecided && this.#link.losesGroup()) return;
    for (const piece of emulateOffload(packet, offload)) this.#send(piece, lossDecided);
  }

  #send(packet: Uint8Array, lossDecided: boolean): void {
    if (this.#view.wrap(packet).check() !== null) throw new Error("sim: malformed IPv4 packet emitted");
    this.packetsSent++;
    if (this.capture) {
      this.sent.push(packet.slice());
      this.sentAt.push(this.net.now);
    }
    this.#link.offer(packet, 0, null, this.net.now, this.#toPeer, lossDecided);
  }
}

/** Options of {@link SimNetwork} beyond the TCP options. */
export interface SimNetworkOptions {
  /** Give A's device checksum and segmentation offload (see {@link SimHost.enableOffloads}). */
  offloadA?: boolean;
}

/** Two hosts joined by a link, driven by a virtual clock. */
export class SimNetwork {
  /** Virtual time in ms. */
  now = 0;
  /** The seeded random source of the link (both directions). */
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
  readonly #dirty = new Set<SimHost>();

  /** Creates the network; both layers get secrets and random sources derived from `seed`. */
  constructor(
    seed: number,
    options: TcpLayerOptions = {},
    optionsB: TcpLayerOptions = options,
    networkOptions: SimNetworkOptions = {},
  ) {
    this.seed = seed;
    this.rng = new Prng(seed);
    const rngA = new Prng(seed ^ 0x5a5a5a5a), rngB = new Prng(seed ^ 0xa5a5a5a5);
    this.a = new SimHost(this, 0x0a000001, {
      secret: rngA.bytes16(),
      random: () => rngA.nextU32(),
      ...options,
    }, networkOptions.offloadA === true);
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
    this.a.setLink(profile);
    this.b.setLink(profileBtoA);
  }

  /** Marks a host to be stepped in the current step (input arrived, or the application asked). @internal */
  markDirty(host: SimHost): void {
    this.#dirty.add(host);
  }

  /** Injects raw IPv4 bytes into `host` now and steps it (conformance tests). */
  inject(host: SimHost, bytes: Uint8Array): void {
    if (new Ipv4Packet(bytes).check() !== null) throw new Error("sim: malformed IPv4 packet injected");
    this.delivered++;
    host.device.inject(bytes);
    this.#dirty.add(host);
    this.#flushDirty();
  }

  #flushDirty(): void {
    while (this.#dirty.size > 0) {
      const hosts = [...this.#dirty];
      this.#dirty.clear();
      for (const h of hosts) h.turn();
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
    const hosts = [this.a, this.b];
    while (!done()) {
      if (this.delivered > this.packetLimit) {
        this.stormed = true;
        return false;
      }
      let next = Infinity;
      for (const h of hosts) {
        const arrival = h.nextArrival();
        if (arrival !== null && arrival < next) next = arrival;
        if (h.deadline !== null && h.deadline < next) next = h.deadline;
      }
      if (next === Infinity || next > untilMs) {
        this.now = Math.max(this.now, Math.min(untilMs, next));
        return done();
      }
      if (next > this.now) this.now = next;
      for (const h of hosts) h.arrive(this.now);
      for (const h of hosts) {
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
    { offloadA: spec.offloadA },
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

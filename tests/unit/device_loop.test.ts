/**
 * DeviceLoop's blocking wait (`wait: "block"`): how long it blocks, against a scripted device and a virtual
 * clock. An idle loop doubles its slice after each empty wait up to BLOCK_IDLE_SLICE_MS (an idle stack
 * wakes about once a second), a packet or an application wake brings it back to BLOCK_SLICE_MS, the core's
 * next deadline shortens a wait, and a wait a signal interrupted is followed by a timer turn of the event
 * loop (counted) rather than by another block.
 */

import assert from "node:assert/strict";
import type { Device, PacketHandler } from "../../lib/phy/device.ts";
import { StackCore } from "../../lib/stack/core.ts";
import { BLOCK_IDLE_SLICE_MS, BLOCK_SLICE_MS, DeviceLoop } from "../../lib/stack/loop.ts";
import { parseIpv4, parseIpv4Cidr } from "../../lib/wire/ipv4_address.ts";

/** An echo request from 10.0.0.1 to 10.0.0.2 (checksums valid), the packet the device delivers. */
function echoRequest(): Uint8Array {
  const p = new Uint8Array(28);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, 28);
  p[8] = 64;
  p[9] = 1;
  v.setUint32(12, parseIpv4("10.0.0.1")!);
  v.setUint32(16, parseIpv4("10.0.0.2")!);
  const sum = (from: number, to: number) => {
    let s = 0;
    for (let i = from; i < to; i += 2) s += v.getUint16(i);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    return ~s & 0xffff;
  };
  v.setUint16(10, sum(0, 20));
  p[20] = 8; // echo request
  v.setUint16(24, 0x1234);
  v.setUint16(22, sum(20, 28));
  return p;
}

/** A device whose blocking waits run a script: each wait records its timeout and advances the clock. */
class ScriptedDevice implements Device {
  readonly name = "scripted0";
  readonly medium = "ip" as const;
  readonly mtu = 1500;
  readonly timeouts: number[] = [];
  readonly sent: Uint8Array[] = [];
  now = 0;
  #inbox: Uint8Array[] = [];
  #script: ((device: ScriptedDevice) => boolean | void)[];
  #woken = false;

  constructor(script: ((device: ScriptedDevice) => boolean | void)[]) {
    this.#script = script;
  }

  deliver(packet: Uint8Array): void {
    this.#inbox.push(packet);
  }

  receive(onPacket: PacketHandler, max: number): number {
    let n = 0;
    while (n < max && this.#inbox.length > 0) {
      onPacket(this.#inbox.shift()!);
      n++;
    }
    return n;
  }

  send(packet: Uint8Array): boolean {
    this.sent.push(packet.slice());
    return true;
  }

  wait(): Promise<void> {
    throw new Error("a blocking loop must not await the device");
  }

  waitSync(timeoutMs: number): boolean {
    if (this.#woken) {
      this.#woken = false;
      return false;
    }
    this.timeouts.push(timeoutMs);
    this.now += timeoutMs;
    const step = this.#script.shift();
    return step?.(this) === true;
  }

  wake(): void {
    this.#woken = true;
  }

  get done(): boolean {
    return this.#script.length === 0;
  }

  close(): void {}
}

async function runScripted(script: ((device: ScriptedDevice) => boolean | void)[]) {
  const device = new ScriptedDevice(script);
  const loop = new DeviceLoop(device, { wait: "block" });
  const core = new StackCore(
    { medium: "ip", mtu: 1500, address: parseIpv4Cidr("10.0.0.2/24")!, ipv6: false },
    loop.transmit,
    0,
  );
  loop.attach(core);
  const clock = () => device.now;
  await loop.run(clock, () => device.done, () => false);
  return { device, loop, core };
}

const idle = () => {};

Deno.test("device loop: an idle blocking loop doubles its slice up to BLOCK_IDLE_SLICE_MS", async () => {
  const { device } = await runScripted(Array.from({ length: 10 }, () => idle));
  const expected: number[] = [];
  for (let slice = BLOCK_SLICE_MS; expected.length < 10; slice = Math.min(2 * slice, BLOCK_IDLE_SLICE_MS)) {
    expected.push(slice);
  }
  assert.deepEqual(device.timeouts, expected);
  assert.equal(device.timeouts.at(-1), BLOCK_IDLE_SLICE_MS);
});

Deno.test("device loop: a packet brings the slice back to BLOCK_SLICE_MS, and is answered", async () => {
  const script = [idle, idle, idle, idle, (d: ScriptedDevice) => d.deliver(echoRequest()), idle, idle];
  const { device } = await runScripted(script);
  assert.deepEqual(device.timeouts, [25, 50, 100, 200, 400, 25, 50]);
  assert.equal(device.sent.length, 1, "the echo reply");
  assert.equal(device.sent[0][20], 0, "an echo reply");
});

Deno.test("device loop: an application wake brings the slice back to BLOCK_SLICE_MS", async () => {
  let loop: DeviceLoop | null = null;
  const device = new ScriptedDevice([idle, idle, idle, () => void queueMicrotask(() => loop!.wake()), idle]);
  loop = new DeviceLoop(device, { wait: "block" });
  const core = new StackCore(
    { medium: "ip", mtu: 1500, address: parseIpv4Cidr("10.0.0.2/24")!, ipv6: false },
    loop.transmit,
    0,
  );
  loop.attach(core);
  await loop.run(() => device.now, () => device.done, () => false);
  // The wake makes one wait return at once (not recorded), and the next starts from the short slice.
  assert.deepEqual(device.timeouts, [25, 50, 100, 200, 25]);
});

Deno.test("device loop: a signal ends the wait, the event loop gets a timer turn, and the slice restarts", async () => {
  const { device, loop } = await runScripted([idle, idle, idle, () => true, idle]);
  assert.deepEqual(device.timeouts, [25, 50, 100, 200, 25]);
  assert.equal(loop.stats().signalTurns, 1);
});

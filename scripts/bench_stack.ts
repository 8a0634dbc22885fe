/**
 * `deno task bench:stack`: measures the stack on a real TUN device inside a namespace it creates (and
 * deletes): ping round-trip time, and UDP echo throughput with the stack's CPU time per packet.
 * Every loop is bounded in count and time. Needs root.
 *
 * @module
 */

import { withNetns } from "../tests/helpers/netns.ts";
import { startStack } from "../tests/helpers/stack_process.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "3");
const WINDOW = Number(Deno.env.get("BENCH_WINDOW") ?? "64");

// A client keeping WINDOW datagrams in flight to UDP echo for SECONDS; prints "sent received".
const UDP_CLIENT = `
import socket, time, sys
seconds, window, size = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.connect(("10.0.0.2", 7))
s.settimeout(0.2)
payload = b"x" * size
sent = received = 0
end = time.monotonic() + seconds
for _ in range(window):
    s.send(payload); sent += 1
while time.monotonic() < end and sent < 50_000_000:
    try:
        s.recv(65535); received += 1
    except socket.timeout:
        for _ in range(window):
            s.send(payload); sent += 1
        continue
    s.send(payload); sent += 1
s.settimeout(0.5)
try:
    while True:
        s.recv(65535); received += 1
except socket.timeout:
    pass
print(sent, received)
`;

function cpuSeconds(pid: number): number {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

await withNetns("ns-bench", async (ns) => {
  const stack = await startStack(ns);
  try {
    const ping = await ns.run(["ping", "-c", "500", "-i", "0.002", "-q", "10.0.0.2"], { timeoutMs: 30_000 });
    const rtt = /= ([\d.]+)\/([\d.]+)\/([\d.]+)\/([\d.]+) ms/.exec(ping.stdout);
    console.log(
      `ping: ${ping.stdout.match(/\d+ received/)?.[0]} of 500, rtt min/avg/max ${
        rtt?.slice(1, 4).join("/")
      } ms`,
    );

    // `ip netns exec` execs deno, so the child's PID is the stack's own.
    const pid = stack.pid;
    for (const size of [64, 1400]) {
      const before = cpuSeconds(pid);
      const started = performance.now();
      const out = await ns.exec(
        ["python3", "-c", UDP_CLIENT, String(SECONDS), String(WINDOW), String(size)],
        {
          timeoutMs: (SECONDS + 10) * 1000,
        },
      );
      const elapsed = (performance.now() - started) / 1000;
      const cpu = cpuSeconds(pid) - before;
      const [sent, received] = out.trim().split(" ").map(Number);
      const packets = sent + received; // the stack reads every request and writes every reply
      console.log(
        `udp echo ${size} B: ${received}/${sent} echoed, ${
          (received / SECONDS / 1000).toFixed(1)
        }k echoes/s, ` +
          `stack CPU ${(cpu * 1e6 / packets).toFixed(2)} µs per packet in or out (${cpu.toFixed(2)} s over ${
            elapsed.toFixed(1)
          } s)`,
      );
    }
  } finally {
    await stack.stop();
  }
});

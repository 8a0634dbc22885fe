import { withNetns } from "../tests/helpers/netns.ts";
import { startStack } from "../tests/helpers/stack_process.ts";
import { flood } from "../tests/helpers/abuse.ts";
const py = `import socket,time,sys,traceback
t=time.monotonic()
try:
  s=socket.create_connection(("10.0.0.2",7),timeout=3)
  print("connected", time.monotonic()-t, s.getsockname())
  s.sendall(b"ping\\n"); got=b""
  while len(got)<5: got+=s.recv(5-len(got)) or sys.exit(1)
  print(time.monotonic()-t)
except Exception: traceback.print_exc(); print(time.monotonic()-t)`;
await withNetns("ns-hostile-echo", async (ns) => {
  const stack = await startStack(ns);
  try {
    console.log((await ns.run(["python3", "-c", py])).stdout);
    const done = flood(ns, ["-S", "-p", "80"], 4, 1);
    await new Promise((r) => setTimeout(r, 700));
    const rs = [];
    for (let i = 0; i < 4; i++) {
      rs.push(ns.run(["python3", "-c", py]));
      rs.push(
        ns.run([
          "curl",
          "-sS",
          "-o",
          "/dev/null",
          "-m",
          "3",
          "-w",
          "%{time_total} %{http_code}",
          "http://10.0.0.2/",
        ]),
      );
      await new Promise((r) => setTimeout(r, 400));
    }
    for (const r of await Promise.all(rs)) console.log(r.stdout.trim(), r.stderr.trim().slice(-300));
    const r2 = await ns.run(["ss", "-tan"]);
    console.log(r2.stdout.split("\n").filter((l) => l.includes(":7 ")).join("\n"));
    await done;
  } finally {
    await stack.stop();
  }
});

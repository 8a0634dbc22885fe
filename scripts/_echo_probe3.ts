import { withNetns } from "../tests/helpers/netns.ts";
import { startStack } from "../tests/helpers/stack_process.ts";
import { flood } from "../tests/helpers/abuse.ts";
await withNetns("ns-hostile-echo", async (ns) => {
  const stack = await startStack(ns);
  try {
    const done = flood(ns, ["-S", "-p", "80"], 5, 1);
    await new Promise((r) => setTimeout(r, 700));
    for (
      const cmd of [["python3", "-c", "print(1)"], ["python3", "-S", "-c", "print(1)"], [
        "python3",
        "-c",
        "import socket;print(2)",
      ], [
        "python3",
        "-I",
        "-c",
        "import socket;s=socket.create_connection(('10.0.0.2',7),timeout=3);print(3)",
      ]]
    ) {
      const t = performance.now();
      const r = await ns.run(["timeout", "-s", "QUIT", "4", ...cmd], { timeoutMs: 6000 });
      console.log(
        cmd.join(" ").slice(0, 60),
        r.code,
        (performance.now() - t).toFixed(0),
        r.stdout.trim(),
        r.stderr.trim().slice(-1500),
      );
    }
    await done;
  } finally {
    await stack.stop();
  }
});

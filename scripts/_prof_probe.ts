import { withNetns } from "../tests/helpers/netns.ts";
import { REPO, StackProcess } from "../tests/helpers/stack_process.ts";
import { flood, stackStats } from "../tests/helpers/abuse.ts";
await withNetns("ns-hostile-prof", async (ns) => {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns.name,
      Deno.execPath(),
      "run",
      "-A",
      "--cpu-prof",
      "--cpu-prof-dir=/tmp/hostile-prof",
      "--config",
      `${REPO}deno.json`,
      `${REPO}main.ts`,
      "stack",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stack = new StackProcess(child);
  await stack.waitFor("ready", 20000);
  const cpu = () => {
    const f = Deno.readTextFileSync(`/proc/${stack.pid}/stat`).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  try {
    const c0 = cpu();
    await flood(ns, [Deno.args[0] ?? "-S", "-p", "80"], 5);
    const c1 = cpu();
    const s = await stackStats(ns);
    console.log({
      cpuMs: c1 - c0,
      segs: (s.tcp as Record<string, number>).segmentsIn,
      kernel: s.device.kernel,
      usPer: (1000 * (c1 - c0) / ((s.tcp as Record<string, number>).segmentsIn)).toFixed(2),
    });
  } finally {
    await stack.stop();
  }
});

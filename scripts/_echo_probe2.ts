import { withNetns } from "../tests/helpers/netns.ts";
import { startStack } from "../tests/helpers/stack_process.ts";
import { flood, timedExchanges } from "../tests/helpers/abuse.ts";
await withNetns("ns-hostile-echo", async (ns) => {
  const stack = await startStack(ns);
  try {
    console.log(JSON.stringify(await timedExchanges(ns, 3)));
    const done = flood(ns, ["-S", "-p", "80"], 5, 1);
    await new Promise((r) => setTimeout(r, 700));
    const ex = [];
    for (let i = 0; i < 8; i++) {
      ex.push(timedExchanges(ns, 3));
      await new Promise((r) => setTimeout(r, 400));
    }
    console.log(JSON.stringify(await Promise.all(ex)));
    await done;
    console.log(JSON.stringify(await timedExchanges(ns, 3)));
  } finally {
    await stack.stop();
  }
});

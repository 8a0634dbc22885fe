/** netstack used as a library by another Deno program (through `lib/mod.ts` only), against the kernel. */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { withNetns } from "../helpers/netns.ts";
import { REPO } from "../helpers/stack_process.ts";

// The host side: a kernel TCP server that answers "ack:" + what it read, via python3 (bounded by timeout).
const PY_SERVER = `
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 6000)); l.listen(1); l.settimeout(30)
print("listening", flush=True)
c, _ = l.accept(); data = b""
while True:
    b = c.recv(4096)
    if not b: break
    data += b
c.sendall(b"ack:" + data); c.close()
`;

const PY_CLIENT = `
import socket
s = socket.create_connection(("10.5.0.2", 5555), timeout=10)
s.sendall(b"shout this"); s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
print(data.decode())
`;

privilegedTest("library: a Deno program listens and connects over the stack with lib/mod.ts", async () => {
  await withNetns("ns-lib", async (ns) => {
    const server = new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, "timeout", "40", "python3", "-c", PY_SERVER],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // The app connects to the server as soon as its own client is served: start it only once the server
    // listens (on a loaded machine python3 can start later than the app's first connection).
    const serverLines = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let serverText = "";
    while (!serverText.includes("listening")) {
      const { value, done } = await serverLines.read();
      if (done) break;
      serverText += value;
    }
    assert.match(serverText, /listening/, "the kernel-side server did not start");
    const app = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns.name,
        "timeout",
        "40",
        Deno.execPath(),
        "run",
        "--allow-all",
        "--config",
        `${REPO}deno.json`,
        `${REPO}tests/helpers/library_app.ts`,
        "6000",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const appOutput = app.output();
    const serverOutput = server.status;
    try {
      // The app prints "ready" once its TUN device and listener exist; the client then connects.
      let answer = "";
      for (let attempt = 0; attempt < 100 && answer === ""; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const client = await ns.run(["python3", "-c", PY_CLIENT], { timeoutMs: 15_000 });
        if (client.code === 0) answer = client.stdout.trim();
      }
      assert.equal(answer, "SHOUT THIS");
      const result = await appOutput;
      assert.equal(result.code, 0, new TextDecoder().decode(result.stderr));
      const lines = new TextDecoder().decode(result.stdout).trim().split("\n").map((l) => JSON.parse(l));
      const last = lines[lines.length - 1];
      assert.equal(last.reply, "ack:hello from a library user");
      assert.equal(last.local.hostname, "10.5.0.2");
      assert.equal((await serverOutput).code, 0);
    } finally {
      for (const child of [app, server]) {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }
      await Promise.allSettled([appOutput, serverOutput, serverLines.cancel()]);
    }
  });
});

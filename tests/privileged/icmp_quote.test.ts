/** ICMP errors quote what was on the wire: tshark checks the quoted UDP checksum. */

import assert from "node:assert/strict";
import { privilegedTest } from "../helpers/privileged.ts";
import { run, withNetns } from "../helpers/netns.ts";
import { startStack } from "../helpers/stack_process.ts";

const PY_REFUSED = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect(("10.0.0.2", 9999))
s.send(b"quoted")
try:
    s.recv(100)
except ConnectionRefusedError:
    print("refused")
`;

privilegedTest(
  "port unreachable quotes the UDP checksum completed, not as offload left it (tshark)",
  async () => {
    await withNetns("ns-quote", async (ns) => {
      const capture = await Deno.makeTempFile({ suffix: ".pcap" });
      try {
        const stack = await startStack(ns, ["--capture", capture, "--services", "none"]);
        try {
          // The kernel leaves a UDP checksum to offload on a TUN device with offloads (virtio_net_hdr). A
          // connected socket learns of the ICMP error: once refused, the error is in the capture.
          const refused = await ns.exec(["python3", "-c", PY_REFUSED]);
          assert.equal(refused.trim(), "refused");
        } finally {
          assert.equal(await stack.stop(), 0, stack.stderr);
        }
        const fields = await run([
          "tshark",
          "-r",
          capture,
          "-o",
          "udp.check_checksum:TRUE",
          "-Y",
          "icmp.type == 3",
          "-T",
          "fields",
          "-e",
          "udp.checksum.status",
          "-e",
          "_ws.expert.message",
        ]);
        assert.equal(fields.code, 0, fields.stderr);
        // 1 is "Good"; a partial checksum would show 0 with "Bad checksum [should be 0x....]".
        assert.equal(fields.stdout.trim(), "1", fields.stdout);
      } finally {
        await Deno.remove(capture).catch(() => {});
      }
    });
  },
);

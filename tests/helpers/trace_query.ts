/**
 * Prints what BPF is attached to an interface of the current network namespace, as JSON:
 * `{"xdp": bool, "tcxEgress": n, "tcxIngress": n}`. Run with `ip netns exec NS deno run -A …`.
 *
 * @module
 */

import { AttachType, progQuery } from "../../lib/ffi/libbpf.ts";
import { interfaceIndex } from "../../lib/ffi/libc.ts";

const name = Deno.args[0];
const ifindex = interfaceIndex(name);
if (ifindex === 0) {
  console.error(`no interface ${name}`);
  Deno.exit(1);
}
const link = new TextDecoder().decode(
  (await new Deno.Command("ip", { args: ["-d", "link", "show", "dev", name], stdout: "piped" }).output())
    .stdout,
);
console.log(JSON.stringify({
  xdp: /\bprog\/xdp|xdpgeneric|xdpdrv|xdp\b/.test(link),
  tcxEgress: progQuery(ifindex, AttachType.TCX_EGRESS).length,
  tcxIngress: progQuery(ifindex, AttachType.TCX_INGRESS).length,
}));

/**
 * Which ingress hook `netstack trace` takes: tcx on virtual devices unless XDP is asked for by
 * `--mode native|generic` or `--ingress-hook xdp`; generic XDP on physical ones; and the flag's parsing.
 */

import assert from "node:assert/strict";
import { chooseIngressHook } from "../../lib/trace/attach.ts";
import { parseTraceArguments } from "../../lib/cli/trace_cmd.ts";
import { UsageError } from "../../lib/cli/errors.ts";

const virtual = (name: string) => name !== "eth0";

Deno.test("trace hook: auto = tcx on virtual devices, XDP on physical ones or when asked", () => {
  assert.equal(chooseIngressHook("veth0", "auto", "auto", virtual), "tcx");
  assert.equal(chooseIngressHook("eth0", "auto", "auto", virtual), "xdp");
  assert.equal(chooseIngressHook("veth0", "generic", "auto", virtual), "xdp");
  assert.equal(chooseIngressHook("veth0", "native", "auto", virtual), "xdp");
  assert.equal(chooseIngressHook("veth0", "auto", "xdp", virtual), "xdp");
  assert.equal(chooseIngressHook("eth0", "auto", "tcx", virtual), "tcx");
  // An explicit hook wins over an explicit mode.
  assert.equal(chooseIngressHook("eth0", "native", "tcx", virtual), "tcx");
});

Deno.test("trace hook: --ingress-hook parses auto, xdp and tcx, and refuses anything else", () => {
  assert.equal(parseTraceArguments([]).ingressHook, "auto");
  assert.equal(parseTraceArguments(["--ingress-hook", "xdp"]).ingressHook, "xdp");
  assert.equal(parseTraceArguments(["--ingress-hook", "tcx"]).ingressHook, "tcx");
  assert.throws(
    () => parseTraceArguments(["--ingress-hook", "clsact"]),
    (error: unknown) =>
      error instanceof UsageError &&
      /--ingress-hook must be one of auto, xdp, tcx, got 'clsact'/.test(error.message),
  );
});

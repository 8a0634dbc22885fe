/**
 * The library's folder graph stays acyclic and layered, and the protocol folders stay sans-I/O: a new
 * cycle, a protocol module importing the shell or a device, or a timer in protocol code fails here with
 * the offending import named.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  architectureViolations,
  folderOf,
  importEdges,
  importSpecifiers,
  readSources,
} from "../helpers/architecture.ts";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");

Deno.test("architecture: lib/ has no folder or file cycle, no protocol→shell import, no I/O in protocol code", async () => {
  const files = await readSources(repoRoot, "lib");
  assert.ok(files.size > 50, `read only ${files.size} files under lib/`);
  const violations = architectureViolations(files);
  assert.deepEqual(violations, [], `architecture violations:\n  ${violations.join("\n  ")}`);
});

Deno.test("architecture: the graph it checks is the real one (every layer seen, edges resolved)", async () => {
  const files = await readSources(repoRoot, "lib");
  const edges = importEdges(files);
  for (const edge of edges) {
    assert.ok(files.has(edge.to), `${edge.from}: "${edge.specifier}" resolves to no file`);
  }
  const pairs = new Set(edges.map((e) => `${folderOf(e.from)} -> ${folderOf(e.to)}`));
  for (const expected of ["lib/iface -> lib/wire", "lib/tcp -> lib/iface", "lib/dhcp -> lib/udp"]) {
    assert.ok(pairs.has(expected), `expected the edge ${expected}`);
  }
  for (const expected of ["lib/stack -> lib/tcp", "lib/services -> lib/stack", "lib/cli -> lib/services"]) {
    assert.ok(pairs.has(expected), `expected the edge ${expected}`);
  }
});

Deno.test("architecture: the checker names cycles, a protocol→shell import, an upward import and a timer", () => {
  const files = new Map([
    ["lib/stack/stack.ts", 'import { startServices } from "../services/mod.ts";\n'],
    ["lib/services/mod.ts", 'import type { Stack } from "../stack/stack.ts";\n'],
    [
      "lib/tcp/layer.ts",
      '// import "../phy/x.ts" in a comment is no import\nimport {\n  TxFlags,\n} from "../phy/device.ts";\n',
    ],
    ["lib/wire/ipv4.ts", 'export { x } from "../iface/protocol.ts";\n'],
    ["lib/udp/layer.ts", 'const t = setTimeout(() => {}, 1); // "Deno.now" in a string or comment is fine\n'],
    ["lib/phy/device.ts", 'export type { StackOptions } from "../stack/stack.ts";\n'],
    ["lib/tcp/cubic.ts", 'import type { CongestionControl } from "./congestion.ts";\n'],
    ["lib/tcp/congestion.ts", 'import { Cubic } from "./cubic.ts";\n'],
    ["lib/dhcp/client.ts", 'import { logger } from "../log.ts";\nconst s = "Date.now()";\n'],
  ]);
  const violations = architectureViolations(files);
  const has = (fragment: string) =>
    assert.ok(
      violations.some((v) => v.includes(fragment)),
      `no violation mentions ${fragment}:\n${violations.join("\n")}`,
    );
  has("folder cycle between lib/services, lib/stack");
  has("file cycle between lib/tcp/congestion.ts, lib/tcp/cubic.ts");
  has('lib/tcp/congestion.ts imports "./cubic.ts"');
  has('lib/stack/stack.ts imports "../services/mod.ts"');
  has('lib/tcp/layer.ts imports "../phy/device.ts" (lib/phy/device.ts): protocol code (lib/tcp)');
  has('lib/wire/ipv4.ts imports "../iface/protocol.ts"');
  has("lib/udp/layer.ts:1 uses a timer");
  has("lib/phy sits beside the layers and must not import lib/stack");
  // The stack→services import is also upward in the layering; the services→stack one is fine.
  assert.ok(
    !violations.some((v) => v.startsWith('lib/services/mod.ts imports "../stack/stack.ts" (lib/stack')),
  );
  assert.ok(!violations.some((v) => v.includes("lib/dhcp")), violations.join("\n"));
  assert.equal(
    violations.filter((v) => v.includes("lib/tcp/layer.ts")).length,
    1,
    "the comment is not an import",
  );
});

Deno.test("architecture: specifiers are read from static, re-export, bare and dynamic imports only", () => {
  const source = [
    '/** ```ts\n * import { x } from "./lib/mod.ts";\n * ``` */',
    'import type { A } from "./a.ts";',
    'import {\n  b,\n  c,\n} from "./b.ts";',
    'export * from "./c.ts";',
    'import "./d.ts";',
    'const e = await import("./e.ts");',
    'const text = "import { f } from \\"./f.ts\\"";',
  ].join("\n");
  assert.deepEqual(importSpecifiers(source).sort(), ["./a.ts", "./b.ts", "./c.ts", "./d.ts", "./e.ts"]);
});

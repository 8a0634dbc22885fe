/**
 * The library's architecture as data, and a checker for it: the import graph of `lib/` by folder, the
 * layering (wire ← iface ← udp/tcp ← dhcp ← stack ← services ← cli, with phy, ffi, pcap and trace beside),
 * and the sans-I/O rule for the protocol folders (no Deno I/O, timers or wall clock: time is passed in).
 *
 * @module
 */

/** One import of one file: who imports what (paths relative to the repository root). */
export interface ImportEdge {
  /** The importing file, e.g. `lib/stack/stack.ts`. */
  from: string;
  /** The imported file, resolved, e.g. `lib/services/mod.ts`. */
  to: string;
  /** The specifier as written. */
  specifier: string;
}

/**
 * The layered folders, lowest first. A folder may import only folders of a lower rank (and itself); two
 * folders of the same rank (udp and tcp) are independent of each other.
 */
export const LAYER_RANK: Readonly<Record<string, number>> = {
  "lib/wire": 0,
  "lib/iface": 1,
  "lib/udp": 2,
  "lib/tcp": 2,
  "lib/dhcp": 3,
  // The forwarding relay works on the layers (transit traffic, a SYN gate) with host sockets; the stack
  // builds on it.
  "lib/forward": 3,
  "lib/stack": 4,
  "lib/services": 5,
  "lib/cli": 6,
};

/** The sans-I/O protocol folders. */
export const PROTOCOL_FOLDERS: readonly string[] = [
  "lib/wire",
  "lib/iface",
  "lib/udp",
  "lib/tcp",
  "lib/dhcp",
];

/** Folders beside the layers: devices, FFI, pcap files, the tracer. They serve the shell, never the protocols. */
export const BESIDE_FOLDERS: readonly string[] = ["lib/phy", "lib/ffi", "lib/pcap", "lib/trace"];

/** Root modules of lib/ anyone may import (logging, the version, the library's errors, the seeded PRNG). */
export const SHARED_MODULES: readonly string[] = [
  "lib/log.ts",
  "lib/version.ts",
  "lib/errors.ts",
  "lib/prng.ts",
];

/** The library's entry point: it imports the others, nothing imports it. */
export const ENTRY_POINT = "lib/mod.ts";

/** Protocol code must not reach for I/O, timers or the wall clock; each with why it is banned. */
const FORBIDDEN_IN_PROTOCOLS: readonly { pattern: RegExp; what: string }[] = [
  { pattern: /\bDeno\s*\./, what: "Deno API (I/O)" },
  { pattern: /\bset(?:Timeout|Interval|Immediate)\s*\(/, what: "a timer" },
  { pattern: /\bDate\s*\.\s*now\b|\bnew\s+Date\b/, what: "the wall clock" },
  { pattern: /\bperformance\s*\.\s*now\b/, what: "the clock (time is passed in)" },
  { pattern: /\bfetch\s*\(/, what: "network I/O" },
];

/**
 * Removes comments, keeping line numbers (newlines stay); with `blankStrings`, string contents become
 * spaces too, so that only code is left.
 */
export function stripComments(source: string, blankStrings = false): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      i += 2;
      while (i < source.length && !(source[i] === "*" && source[i + 1] === "/")) {
        if (source[i] === "\n") out += "\n";
        i++;
      }
      i += 2;
    } else if (c === '"' || c === "'" || c === "`") {
      const start = i++;
      while (i < source.length && source[i] !== c) {
        if (source[i] === "\\") i++;
        if (c !== "`" && source[i] === "\n") break; // unterminated: do not swallow the file
        i++;
      }
      i++;
      const text = source.slice(start, i);
      out += blankStrings ? text.replace(/[^\n]/g, " ") : text;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The module specifiers a source file imports or re-exports (static and dynamic imports). */
export function importSpecifiers(source: string): string[] {
  const code = stripComments(source);
  const found: string[] = [];
  const staticImport = /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gm;
  const bareImport = /^\s*import\s*["']([^"']+)["']/gm;
  const dynamicImport = /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;
  for (const re of [staticImport, bareImport, dynamicImport]) {
    for (const match of code.matchAll(re)) found.push(match[1]);
  }
  return found;
}

/** Joins and normalizes a relative specifier against the importing file's folder. */
function resolve(from: string, specifier: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "..") parts.pop();
    else if (part !== ".") parts.push(part);
  }
  return parts.join("/");
}

/** The edges of the graph of `files` (path → source); bare specifiers (npm:, node:, jsr:) are not edges. */
export function importEdges(files: ReadonlyMap<string, string>): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const [from, source] of files) {
    for (const specifier of importSpecifiers(source)) {
      if (!specifier.startsWith(".")) continue;
      edges.push({ from, to: resolve(from, specifier), specifier });
    }
  }
  return edges;
}

/** The node of the folder graph a file belongs to: its folder under lib/, or the file itself at the root. */
export function folderOf(path: string): string {
  const parts = path.split("/");
  if (parts[0] === "lib" && parts.length > 2) return `lib/${parts[1]}`;
  return path;
}

function describe(edge: ImportEdge): string {
  return `${edge.from} imports "${edge.specifier}" (${edge.to})`;
}

/** Every folder cycle, each named by the imports that close it. */
export function folderCycles(edges: readonly ImportEdge[]): string[] {
  return cycles(edges, folderOf, "folder");
}

/** Every cycle between files (a folder graph can be acyclic around a cycle inside one folder). */
export function fileCycles(edges: readonly ImportEdge[]): string[] {
  return cycles(edges, (path) => path, "file");
}

/** The cycles of the graph of `edges` with nodes `nodeOf(file)`, each named by the imports that close it. */
function cycles(edges: readonly ImportEdge[], nodeOf: (path: string) => string, kind: string): string[] {
  // One witness import per folder pair, the first in file order, so a message names a real line.
  const witness = new Map<string, ImportEdge>();
  const next = new Map<string, Set<string>>();
  for (const edge of edges) {
    const a = nodeOf(edge.from), b = nodeOf(edge.to);
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Set());
    next.get(a)!.add(b);
    if (!witness.has(`${a}→${b}`)) witness.set(`${a}→${b}`, edge);
  }
  // Tarjan's strongly connected components: every component with two or more folders holds a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of [...(next.get(v) ?? [])].sort()) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((component) => {
    const inside = new Set(component);
    const imports = [...witness.entries()]
      .filter(([key]) => {
        const [a, b] = key.split("→");
        return inside.has(a) && inside.has(b);
      })
      .map(([, edge]) => describe(edge));
    return `${kind} cycle between ${component.join(", ")}: ${imports.join("; ")}`;
  });
}

/** Imports that break the layering: protocol → shell, upward, sideways between layers, or into the entry. */
export function layeringViolations(edges: readonly ImportEdge[]): string[] {
  const violations: string[] = [];
  for (const edge of edges) {
    const a = folderOf(edge.from), b = folderOf(edge.to);
    if (a === b || SHARED_MODULES.includes(b)) continue;
    if (b === ENTRY_POINT) {
      violations.push(`${describe(edge)}: nothing in lib/ may import the entry point ${ENTRY_POINT}`);
      continue;
    }
    if (PROTOCOL_FOLDERS.includes(a) && !PROTOCOL_FOLDERS.includes(b)) {
      violations.push(`${describe(edge)}: protocol code (${a}) must not import the shell or devices (${b})`);
      continue;
    }
    const rankA = LAYER_RANK[a], rankB = LAYER_RANK[b];
    if (rankA !== undefined && rankB !== undefined && rankB >= rankA) {
      violations.push(`${describe(edge)}: ${a} may import only layers below it, and ${b} is not below`);
      continue;
    }
    if (BESIDE_FOLDERS.includes(a) && rankB !== undefined && rankB >= LAYER_RANK["lib/stack"]) {
      violations.push(`${describe(edge)}: ${a} sits beside the layers and must not import ${b}`);
    }
  }
  return violations;
}

/** Uses of I/O, timers or the clock in protocol folders, each named by file, line and what it is. */
export function sansIoViolations(files: ReadonlyMap<string, string>): string[] {
  const violations: string[] = [];
  for (const [path, source] of files) {
    if (!PROTOCOL_FOLDERS.includes(folderOf(path))) continue;
    const lines = stripComments(source, true).split("\n");
    lines.forEach((line, i) => {
      for (const { pattern, what } of FORBIDDEN_IN_PROTOCOLS) {
        if (pattern.test(line)) violations.push(`${path}:${i + 1} uses ${what}: ${line.trim()}`);
      }
    });
    for (const specifier of importSpecifiers(source)) {
      if (specifier.startsWith("node:") || specifier.startsWith("npm:") || specifier.startsWith("jsr:")) {
        violations.push(`${path} imports "${specifier}": protocol code imports only protocol modules`);
      }
    }
  }
  return violations;
}

/** Every violation of the architecture in `files` (path → source), as messages naming the offending import. */
export function architectureViolations(files: ReadonlyMap<string, string>): string[] {
  const edges = importEdges(files);
  return [
    ...folderCycles(edges),
    ...fileCycles(edges),
    ...layeringViolations(edges),
    ...sansIoViolations(files),
  ];
}

/** Reads every `.ts` file under `folder` of the repository at `repoRoot`, as `folder/...` path → source. */
export async function readSources(repoRoot: string, folder: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    for await (const entry of Deno.readDir(`${repoRoot}/${relative}`)) {
      const path = `${relative}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && entry.name.endsWith(".ts")) {
        files.set(path, await Deno.readTextFile(`${repoRoot}/${path}`));
      }
    }
  };
  await walk(folder);
  return new Map([...files].sort(([a], [b]) => a.localeCompare(b)));
}

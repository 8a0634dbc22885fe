/**
 * docs/cli.md, the command-line contract, against the program's own --help: every flag the help lists is
 * documented, and every flag documented exists, so neither can drift without this failing.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);

async function help(command: string): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "main.ts", command, "--help"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, `netstack ${command} --help exits 0`);
  return new TextDecoder().decode(output.stdout);
}

/** The long flags the help lists: the first `--name` of each option line. */
function helpFlags(text: string): string[] {
  const flags = new Set<string>();
  for (const [, flag] of text.matchAll(/^\s+(?:-\w, )?(--[a-z][\w-]*)/gm)) flags.add(flag);
  return [...flags].sort();
}

/** The long flags of a section's table: the first `--name` of each row's first cell. */
function documentedFlags(docs: string, section: string): string[] {
  const start = docs.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `docs/cli.md has a section '## ${section}'`);
  const end = docs.indexOf("\n## ", start + 1);
  const body = docs.slice(start, end < 0 ? undefined : end);
  const flags = new Set<string>();
  for (const [, flag] of body.matchAll(/^\| `(?:-\w, )?(--[a-z][\w-]*)/gm)) flags.add(flag);
  return [...flags].sort();
}

const docs = await Deno.readTextFile(new URL("docs/cli.md", ROOT));

for (const command of ["stack", "trace"]) {
  Deno.test(`cli docs: docs/cli.md lists exactly the flags of 'netstack ${command} --help'`, async () => {
    const listed = helpFlags(await help(command));
    assert.ok(listed.length > 5, `flags found in the help: ${listed}`);
    assert.deepEqual(documentedFlags(docs, `netstack ${command}`), listed);
  });
}

Deno.test("cli docs: nothing in the repository points outside it", async () => {
  const offenders: string[] = [];
  const walk = async (dir: URL, path: string) => {
    for await (const entry of Deno.readDir(dir)) {
      if (/^(\.git.*|node_modules|netstack)$/.test(entry.name) || `${path}${entry.name}` === ".ci/tmp") {
        continue;
      }
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url, `${path}${entry.name}/`);
      else if (/\.(ts|md|json|sh|c|h)$|^run$/.test(entry.name) && !entry.name.endsWith(".generated.ts")) {
        const text = await Deno.readTextFile(url);
        if (/(?:\.\.\/|\/work\/|\b)shared\/[A-Z]/.test(text)) offenders.push(`${path}${entry.name}`);
      }
    }
  };
  await walk(ROOT, "");
  assert.deepEqual(offenders, [], "files that refer to a shared folder outside the repository");
});

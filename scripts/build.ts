/**
 * `deno task build`: compiles netstack into one executable, `./netstack` (or the path given with
 * `--output`). `deno compile` needs its `denort` runtime: it downloads it on first use, or takes the one
 * named by DENORT_BIN. Where neither works (an offline machine), this says so in one line and exits 1.
 *
 * @module
 */

import { parseArgs } from "node:util";

const root = new URL("../", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: { output: { type: "string", default: `${root}netstack` }, help: { type: "boolean", short: "h" } },
});
if (values.help) {
  console.log(
    "Usage: deno task build [--output FILE]\nCompiles netstack into one executable (honours DENORT_BIN).",
  );
  Deno.exit(0);
}

const denort = Deno.env.get("DENORT_BIN");
if (denort !== undefined) {
  try {
    if (!Deno.statSync(denort).isFile) throw new Error("not a file");
  } catch {
    console.error(`build: DENORT_BIN is set to '${denort}', which is not a file`);
    Deno.exit(1);
  }
}

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "--allow-all",
    "--config",
    `${root}deno.json`,
    // The tracer is imported on demand; name it so the compiled graph surely holds it.
    "--include",
    `${root}lib/cli/trace_cmd.ts`,
    "--output",
    values.output!,
    `${root}main.ts`,
  ],
  stdout: "inherit",
  stderr: "piped",
}).spawn();
const output = await child.output();
const stderr = new TextDecoder().decode(output.stderr);
if (output.code === 0) {
  console.error(`build: wrote ${values.output}${denort ? ` (runtime from DENORT_BIN=${denort})` : ""}`);
  Deno.exit(0);
}
if (/denort/i.test(stderr) && /error sending request|dns error|Connect|timed out|404/i.test(stderr)) {
  const url = /https:\/\/\S+denort\S+\.zip/.exec(stderr)?.[0] ?? "the denort runtime";
  console.error(
    `build: deno compile could not download ${url} (this machine cannot reach it); ` +
      `download that archive where you can, unzip it, and run again with DENORT_BIN=/path/to/denort`,
  );
  Deno.exit(1);
}
await Deno.stderr.write(output.stderr);
console.error(`build: deno compile failed (exit ${output.code})`);
Deno.exit(1);

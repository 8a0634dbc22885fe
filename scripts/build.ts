/**
 * `deno task build`: writes `./netstack` (or the path given with `--output`), always.
 *
 * First choice, a compiled executable: `deno compile` needs its `denort` runtime, which it downloads on
 * first use, or takes the one named by DENORT_BIN. Where the runtime cannot be had (an
 * offline machine, a blocked download host), one line says so and the build falls back to a single
 * self-contained script: `deno bundle` output (every module inlined, the BPF object included, the
 * tracer's on-demand import too) behind a `#!/usr/bin/env -S deno run --allow-all` line, made executable.
 * It needs only `deno` on PATH. The code uses no raw imports (`with { type: "bytes" }`), so the shebang
 * needs no `--unstable-raw-imports`. `--bundle` skips the compile attempt.
 *
 * Either way nothing is read from the source tree at run time: scripts/smoke_build.sh proves it by
 * running the result from an empty folder.
 *
 * @module
 */

import { parseArgs } from "node:util";

const root = new URL("../", import.meta.url).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: {
    output: { type: "string", default: `${root}netstack` },
    bundle: { type: "boolean", default: false },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: deno task build [--output FILE] [--bundle]\n" +
      "Compiles netstack into one executable (honours DENORT_BIN); where the denort runtime cannot be had,\n" +
      "or with --bundle, writes one self-contained script run by deno instead.",
  );
  Deno.exit(0);
}
const output = values.output!;
const SHEBANG = "#!/usr/bin/env -S deno run --allow-all\n";

/** Runs deno with `args`; resolves to its exit code and stderr. */
async function deno(args: string[]): Promise<{ code: number; stderr: string }> {
  const result = await new Deno.Command(Deno.execPath(), { args, stdout: "inherit", stderr: "piped" })
    .output();
  return { code: result.code, stderr: new TextDecoder().decode(result.stderr) };
}

/** `deno compile`; resolves to null on success, else to why not (`denort` true when the runtime is missing). */
async function compile(): Promise<{ denort: boolean; message: string } | null> {
  // Into a new file first: deno compile will not overwrite a file it did not write (an earlier bundle).
  const temporary = `${output}.compile-${Deno.pid}`;
  try {
    return await compileTo(temporary);
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
}

async function compileTo(temporary: string): Promise<{ denort: boolean; message: string } | null> {
  const result = await deno([
    "compile",
    "--allow-all",
    "--config",
    `${root}deno.json`,
    // The tracer is imported on demand; name it so the compiled graph surely holds it.
    "--include",
    `${root}lib/cli/trace_cmd.ts`,
    "--output",
    temporary,
    `${root}main.ts`,
  ]);
  if (result.code === 0) {
    await Deno.rename(temporary, output);
    return null;
  }
  if (
    /denort/i.test(result.stderr) &&
    /error sending request|dns error|Connect|timed out|404/i.test(result.stderr)
  ) {
    const url = /https:\/\/\S+denort\S+\.zip/.exec(result.stderr)?.[0] ?? "the denort runtime";
    return {
      denort: true,
      message: `deno compile could not download ${url} (unreachable from here; to get a compiled binary, ` +
        `fetch that archive elsewhere, unzip it and set DENORT_BIN=/path/to/denort)`,
    };
  }
  return { denort: false, message: `${result.stderr.trim()}\ndeno compile failed (exit ${result.code})` };
}

/** `deno bundle` into `output`, with the shebang line, mode 0755. */
async function bundle(): Promise<boolean> {
  const temporary = `${output}.bundle-${Deno.pid}.js`;
  try {
    const result = await deno([
      "bundle",
      "--quiet",
      "--platform",
      "deno",
      "--config",
      `${root}deno.json`,
      "--output",
      temporary,
      `${root}main.ts`,
    ]);
    if (result.code !== 0) {
      console.error(`${result.stderr.trim()}\nbuild: deno bundle failed (exit ${result.code})`);
      return false;
    }
    const code = await Deno.readTextFile(temporary);
    await Deno.writeTextFile(temporary, SHEBANG + code.replace(/^#!.*\n/, ""), { mode: 0o755 });
    await Deno.chmod(temporary, 0o755);
    await Deno.rename(temporary, output);
    return true;
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
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

if (!values.bundle) {
  const failure = await compile();
  if (failure === null) {
    console.error(`build: wrote ${output}${denort ? ` (runtime from DENORT_BIN=${denort})` : ""}`);
    Deno.exit(0);
  }
  if (!failure.denort) {
    console.error(failure.message);
    Deno.exit(1);
  }
  console.error(`build: ${failure.message}; writing a bundle run by deno instead`);
}
if (!(await bundle())) Deno.exit(1);
console.error(`build: wrote ${output} (a single script; needs deno on PATH)`);

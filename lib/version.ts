/** The program's version, kept equal to `version` in deno.json (a unit test checks it). */
export const VERSION = "0.1.0";
